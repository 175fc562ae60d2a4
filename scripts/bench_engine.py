"""Serving engines side by side, in one run, on the same model and machine: transformers (the 4-bit model as the
transformers engine serves it) against llama.cpp (the embedded model's GGUF). Every figure is a ratio measured in
this run.

  (a) chat      ChatService.send through the app's chat path, greedy, --max-new-tokens, alternating engines per rep:
                time to first token and decode tokens/s (tokens after the first piece / time from first to last
                piece; tokens counted with the model's tokenizer). Targets: decode >= 3x, TTFT no worse.
  (b) probes    the probe gate's work for a candidate version (LoRA adapters with random weights): Prober.run, every
                suite; fresh result store per engine; the first candidate pays for the base's results and noise
                runs too (a home's first gate), the second finds them cached (every later gate). KL and perplexity
                are forward passes on the transformers model in both runs; the generated suites run on the
                engine. Target: >= 3x faster.
  (c) rehearsal the base model's answers to train.rehearsal_count general prompts (a home's first consolidation),
                uncached. Target: >= 3x faster.
  (d) clients   --clients chat clients send one message each at the same moment, --rounds times, replies of at most
                --client-tokens: p95 time to first token per engine (one generation at a time per engine: later
                clients wait for earlier replies).

    .venv/bin/python scripts/bench_engine.py [--reps 4] [--max-new-tokens 128] [--clients 8] [--rounds 2]
                                             [--client-tokens 32]
                                             [--skip chat,probes,rehearsal,clients] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

ENGINES = ("transformers", "llamacpp")
PROMPT = "Tell me about the history of the bicycle and how it changed daily life in cities."
CLIENT_PROMPTS = ["What is a good breakfast before a long walk?", "How do plants make food from light?",
                  "Give me three tips for learning a language.", "Why is the sky blue?",
                  "What should I pack for a rainy weekend?", "How does a bicycle stay upright?",
                  "What is a healthy dinner idea?", "Explain what a budget is."]


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def send(chat, user: str, text: str) -> dict:
    from chatbot.serving.chat import Accepted, Done

    t0 = time.perf_counter()
    first = last = None
    done = accepted = None
    for ev in chat.send(user, text):
        now = time.perf_counter()
        if isinstance(ev, Accepted):
            accepted = ev
        elif isinstance(ev, Done):
            done = ev
        elif ev:
            first = first or now
            last = now
    chat.store.set_conversation_learn(accepted.conversation_id, False)  # keep it out of later recalls
    return {"ttft": first - t0, "decode": (done.n_tokens - 1) / (last - first) if last > first else 0.0,
            "tokens": done.n_tokens, "text": done.text}


def random_version(loaded_dir: str, registry, seed: int) -> str:
    """A LoRA version with small random weights (the gate's work does not depend on what it learned)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from chatbot.serving.model import load_model

    torch.manual_seed(seed)
    model = get_peft_model(load_model(loaded_dir, quantization="none").model,
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.002)
    staging = registry.staging()
    model.save_pretrained(staging)
    return registry.commit(staging).name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4, help="(a): replies per engine, alternating")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--client-tokens", type=int, default=32, help="(d): reply length cap of the clients' replies")
    ap.add_argument("--rounds", type=int, default=2, help="(d): rounds of simultaneous messages")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: chat,probes,rehearsal,clients")
    ap.add_argument("--cache-dir", default="", help="converted-model cache (model.cache_dir)")
    ap.add_argument("--json", default="", help="also write the results to this file")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from chatbot.core.config import Config
    from chatbot.core.lines import AdapterLines
    from chatbot.core.paths import Paths
    from chatbot.evaluation.results import ResultStore
    from chatbot.evaluation.runner import Prober
    from chatbot.learning.consolidate import _rehearsal
    from chatbot.memory.store import Store
    from chatbot.runtime import open_runtime
    from chatbot.serving.engine import open_engine
    from chatbot.serving.generate import Generator
    from chatbot.serving.llamacpp import default_threads
    from chatbot.serving.model import load_model

    base_cfg = {"model": {"cache_dir": args.cache_dir},
                "decoding": {"max_new_tokens": args.max_new_tokens, "do_sample": False}}
    configs = {e: Config.from_dict({**base_cfg, "serve": {"engine": e}}) for e in ENGINES}
    m = configs["transformers"].model
    loaded = load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir)
    results: dict = {"model": loaded.name, "quantization": loaded.quantization, "cpus": os.cpu_count(),
                     "llamacpp_threads": default_threads(), "loadavg_start": os.getloadavg()}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_engine.") as tmp:
        runtimes = {e: open_runtime(Path(tmp) / f"home-{e}", configs[e], loaded=loaded) for e in ENGINES}
        try:
            if "chat" not in skip:
                runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
                for e in ENGINES:
                    send(runtimes[e].chat, "warm", PROMPT)  # first-call costs
                for i in range(args.reps):
                    for e in (ENGINES if i % 2 == 0 else ENGINES[::-1]):
                        runs[e].append(send(runtimes[e].chat, "bench", PROMPT))
                row = {e: {"ttft_ms": statistics.median(r["ttft"] for r in runs[e]) * 1e3,
                           "decode_tok_s": statistics.median(r["decode"] for r in runs[e]),
                           "tokens": statistics.median(r["tokens"] for r in runs[e])} for e in ENGINES}
                t, c = row["transformers"], row["llamacpp"]
                row["decode_ratio"] = c["decode_tok_s"] / t["decode_tok_s"]
                row["ttft_ratio"] = c["ttft_ms"] / t["ttft_ms"]
                row["same_reply"] = runs["transformers"][0]["text"] == runs["llamacpp"][0]["text"]
                results["chat"] = row
                print(f"(a) chat: decode {t['decode_tok_s']:.1f} -> {c['decode_tok_s']:.1f} tok/s "
                      f"(x{row['decode_ratio']:.2f}, target >= 3); TTFT {t['ttft_ms']:.0f} -> {c['ttft_ms']:.0f} ms "
                      f"(ratio {row['ttft_ratio']:.2f}, target <= 1); replies of {t['tokens']:.0f} / "
                      f"{c['tokens']:.0f} tokens", flush=True)

            if "probes" not in skip:
                registry = AdapterLines(Paths(Path(tmp) / "probes").adapters, "me").line("me")
                first, second = random_version(loaded.path, registry, 0), random_version(loaded.path, registry, 1)
                row = {}
                for e in ENGINES:
                    db = Path(tmp) / f"probes-{e}.db"
                    store, res = Store(db), ResultStore(db)
                    # a fresh copy of the model: the candidate's LoRA layers are injected into the model probed
                    probed = load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir)
                    generator = Generator(probed, configs[e].decoding, m.max_context)
                    engine = generator if e == "transformers" else open_engine(configs[e], probed)
                    prober = Prober(store, res, registry, generator, configs[e], engine=engine)
                    t0 = time.perf_counter()
                    report = prober.run(first)  # the base's results (and noise runs) computed too: a home's first
                    t1 = time.perf_counter()
                    prober.run(second)  # the base's results cached: every later candidate
                    row[e] = {"seconds": t1 - t0, "seconds_base_cached": time.perf_counter() - t1,
                              "qa_base": report.base["general-qa"].score, "qa": report.results["general-qa"].score}
                    if engine is not generator:
                        engine.close()
                    store.close()
                    res.close()
                row["speedup"] = row["transformers"]["seconds"] / row["llamacpp"]["seconds"]
                row["speedup_base_cached"] = (row["transformers"]["seconds_base_cached"]
                                              / row["llamacpp"]["seconds_base_cached"])
                results["probes"] = row
                t, c = row["transformers"], row["llamacpp"]
                print(f"(b) probe gate: first candidate (base + noise runs too) {t['seconds']:.1f} s -> "
                      f"{c['seconds']:.1f} s (x{row['speedup']:.2f}); next candidate (base cached) "
                      f"{t['seconds_base_cached']:.1f} s -> {c['seconds_base_cached']:.1f} s "
                      f"(x{row['speedup_base_cached']:.2f}); target >= 3; general QA of the base "
                      f"{t['qa_base']:.1f} / {c['qa_base']:.1f} %", flush=True)

            if "rehearsal" not in skip:
                row = {}
                for e in ENGINES:
                    paths = Paths(Path(tmp) / f"rehearsal-{e}")
                    paths.rehearsal.mkdir(parents=True, exist_ok=True)
                    t0 = time.perf_counter()
                    examples = _rehearsal(paths, configs[e], loaded, dry_run=False)
                    row[e] = {"seconds": time.perf_counter() - t0, "answers": len(examples)}
                row["speedup"] = row["transformers"]["seconds"] / row["llamacpp"]["seconds"]
                results["rehearsal"] = row
                print(f"(c) rehearsal answers ({row['transformers']['answers']}): "
                      f"{row['transformers']['seconds']:.1f} s -> {row['llamacpp']['seconds']:.1f} s "
                      f"(x{row['speedup']:.2f}, target >= 3)", flush=True)

            if "clients" not in skip:
                row = {}
                for e in ENGINES:
                    runtimes[e].chat.generator.decoding.max_new_tokens = args.client_tokens
                    ttfts: list[float] = []
                    for _ in range(args.rounds):
                        barrier = threading.Barrier(args.clients)
                        out: list[float] = []

                        def client(k: int, chat=runtimes[e].chat, barrier=barrier, out=out) -> None:
                            barrier.wait()
                            out.append(send(chat, f"client{k}", CLIENT_PROMPTS[k % len(CLIENT_PROMPTS)])["ttft"])

                        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
                        for th in threads:
                            th.start()
                        for th in threads:
                            th.join()
                        ttfts += out
                    row[e] = {"p95_ttft_s": p95(ttfts), "median_ttft_s": statistics.median(ttfts), "n": len(ttfts)}
                results["clients"] = row
                print(f"(d) {args.clients} simultaneous clients x {args.rounds}: p95 TTFT "
                      f"{row['transformers']['p95_ttft_s']:.2f} s (transformers) / "
                      f"{row['llamacpp']['p95_ttft_s']:.2f} s (llamacpp); medians "
                      f"{row['transformers']['median_ttft_s']:.2f} / {row['llamacpp']['median_ttft_s']:.2f} s",
                      flush=True)
        finally:
            for rt in runtimes.values():
                rt.close()
    results["seconds"] = round(time.time() - started, 1)
    results["loadavg_end"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
