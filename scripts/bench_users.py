"""Per-user adapters: leakage between users, the cost of switching adapters between replies, memory per loaded
adapter, and how consolidation time grows with the number of users. Every figure is a ratio or a count measured in
this run, on the product's defaults (rebuild, distillation, the default probe gate on).

  (a) leakage   two users tell the bot their facts; one `consolidate()` trains each user's adapter through the gate.
                Then every fact's questions are asked closed book through ChatService.ask, as its owner (own recall:
                is the channel live?) and as the other user (leaks: answers containing the owner's value). Target: 0
                leaks. A match whose value is in the other user's own training data (their facts and the base
                model's rehearsal answers listed in their version's manifest) is counted apart, as a coincidence:
                it cannot have come from the owner. --pair test: two personas of the held-out split
                (data/experiments/facts-v2-test.jsonl, rounds 1..--rounds, written independently of the extractor
                and never tuned on); --pair v1: ana and ben of
                the project's first scenario (data/experiments/facts-v1.jsonl, "My X is Y" forms the rules read, so
                the owner's own recall shows the channel is live).
  (b) switch    per engine (transformers, llama.cpp): time to first token of ChatService.send when consecutive
                replies go to different users (adapter switch) against the same user twice, alternating blocks;
                median ratio. Target: <= 1.05.
  (c) memory    bytes of the LoRA tensors each additional resident adapter adds to the served model (embedded
                model, counted on the live model after a generation with it; the process's RSS is printed too, but
                the allocator makes it too noisy for 20 MB steps), and the size computed from the parameter count
                for a 1B-class Llama (16 layers, hidden 2048, MLP 8192, 8 KV heads of 64), which cannot run here.
                llama.cpp (when installed): RSS growth per extra adapter resident in the engine, which holds its
                GGUF LoRA and its own chat context (KV cache of model.max_context tokens + compute buffers), and
                the KV cache's size computed for the 1B-class config.
  (d) scaling   fresh homes with N = 1, 2, 4 users, each with the same amount of new data (--scaling-facts messages
                each), rehearsal answers cached: consolidate() wall time, t(N) / (N * t(1)). Linear = 1.0.
                --scaling-model runs it on another model (a local HF folder), e.g. a tiny one to time the
                orchestration alone in seconds.

    .venv/bin/python scripts/bench_users.py [--rounds 2] [--reps 12] [--scaling 1,2,4]
                                            [--skip leak,switch,memory,scaling] [--cache-dir DIR] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from experiment import FACTS, gold_facts, import_round, load_jsonl, scenario, sha  # noqa: E402

V1 = ROOT / "data" / "experiments" / "facts-v1.jsonl"

ONE_B = {"layers": 16, "hidden": 2048, "mlp": 8192, "kv": 8 * 64}  # Llama-3.2-1B's shapes


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def config(cache_dir: str):
    from chatbot.core.config import Config

    cfg = Config()
    cfg.model.cache_dir = cache_dir
    cfg.decoding.max_new_tokens = 32
    return cfg


def leak(args, work: Path) -> dict:
    """(a): two held-out personas as two users; own recall and cross-user leaks, closed book."""
    from chatbot.evaluation.gate import default_gate
    from chatbot.learning.consolidate import consolidate
    from chatbot.runtime import open_runtime

    home, cfg = (Path(args.reuse) if args.reuse else work / f"leak-{args.pair}"), config(args.cache_dir)
    if args.pair == "v1":
        from chatbot.memory.transfer import import_jsonl
        from chatbot.runtime import open_runtime

        rows = [r for r in load_jsonl(V1) if r["user"] in ("ana", "ben")]
        facts = [{"user": r["user"], "key": r["key"], "questions": r["questions"]} for r in rows]
        src = work / "v1.jsonl"
        src.write_text("".join(json.dumps({"user": r["user"], "messages": r["messages"]}) + "\n" for r in rows))
        if not args.reuse:
            rt = open_runtime(home, cfg, with_model=False)
            import_jsonl(src, rt.store, rt.buffer, cfg.serve.default_user)
            rt.close()
    else:
        messages = scenario(load_jsonl(Path(args.facts)), args.rounds, 2)
        facts = [f for f in gold_facts(messages) if not any(g["corrects"] == f["id"] for g in gold_facts(messages))]
        for r in range(1, args.rounds + 1):
            if not args.reuse:
                import_round(home, cfg, [m for m in messages if m["round"] == r])
    users = sorted({f["user"] for f in facts})
    t0 = time.time()
    result = None if args.reuse else consolidate(home, cfg, gate=default_gate(home, cfg), show_progress=False)
    seconds = time.time() - t0
    print(result.message if result else f"reusing {home}", flush=True)
    trained = own_training_text(home, cfg, users)
    rt = open_runtime(home, cfg)
    own_hits, leaks, coincidences, asked, examples = 0, 0, 0, 0, []
    try:
        for f in facts:
            other = next(u for u in users if u != f["user"])
            for q in f["questions"]:
                mine = rt.chat.ask(q, user=f["user"], use_memory=False)["answer"]
                theirs = rt.chat.ask(q, user=other, use_memory=False)["answer"]
                hit, match = f["key"].lower() in mine.lower(), f["key"].lower() in theirs.lower()
                coincidence = match and f["key"].lower() in trained[other]
                leaked = match and not coincidence
                own_hits += hit
                leaks += leaked
                coincidences += coincidence
                asked += 1
                if match or (hit and len(examples) < 3):
                    examples.append({"question": q, "key": f["key"], "owner": mine[:100], "other": theirs[:100],
                                     "in_other_users_own_training_data": coincidence})
        served = {u: rt.chat.served_adapter(u)[0] for u in users}
    finally:
        rt.close()
    out = {"pair": args.pair, "users": users, "facts": len(facts), "questions": asked,
           "own_recall": round(own_hits / asked, 3), "leaks": leaks, "coincidences": coincidences, "served": served,
           "consolidation": result.message if result else "reused", "consolidate_s": round(seconds, 1),
           "examples": examples, "home": str(home)}
    print(f"(a) leakage: {leaks} of {asked} answers asked as the other user contain the owner's value (and "
          f"{coincidences} more where the value is in the other user's own training data); own recall "
          f"{out['own_recall']:.2f} ({own_hits}/{asked}); served {served}", flush=True)
    return out


def own_training_text(home: Path, cfg, users: list[str]) -> dict[str, str]:
    """Lower-cased text each user's served version was trained on: its facts' answers and the rehearsal answers
    (the base model's own words) its manifest lists."""
    from chatbot.core.lines import AdapterLines
    from chatbot.core.paths import Paths
    from chatbot.memory.facts import FactStore

    facts = FactStore(Paths(home).db)
    by_id = {f.id: f for f in facts.facts()}
    facts.close()
    rehearsal: dict[str, str] = {}
    for cache in (home / "rehearsal").glob("*.json"):
        rehearsal.update(json.loads(cache.read_text()))
    out = {}
    for user in users:
        path = AdapterLines(Paths(home).adapters, cfg.serve.default_user).line(user).current_path()
        manifest = json.loads((path / "manifest.json").read_text()) if path else {}
        text = [by_id[i].answer for i in manifest.get("fact_ids", []) if i in by_id]
        text += [str(rehearsal.get(r, "")) for r in manifest.get("rehearsal_prompts", [])]
        out[user] = "\n".join(text).lower()
    return out


def switch(args, home: Path, users: list[str]) -> dict:
    """(b): time to first token, alternating users vs the same user twice, on each engine that runs here."""
    from chatbot.runtime import open_runtime
    from chatbot.serving.engine import llamacpp_installed

    out = {}
    for engine in ("transformers", "llamacpp"):
        if engine == "llamacpp" and not llamacpp_installed():
            continue
        cfg = config(args.cache_dir)
        cfg.decoding.max_new_tokens = 8
        cfg.serve.engine = engine
        rt = open_runtime(home, cfg)
        a, b = users

        def ttft(user: str, rt=rt) -> float:
            start = time.perf_counter()
            first = None
            for event in rt.chat.send(user, "Tell me something about my week.", use_memory=False,
                                      conversation_learn=False):
                if isinstance(event, str) and first is None:
                    first = time.perf_counter() - start
            return first if first is not None else float("nan")

        same, switched = [], []
        try:
            for u in (a, b, a):  # warm-up: both adapters resident
                ttft(u)
            for i in range(args.reps):  # blocks alternate so drift cancels: [a a] then [a b] (or b-first)
                first, second = (a, b) if i % 2 == 0 else (b, a)
                ttft(first)
                same.append(ttft(first))
                switched.append(ttft(second))
            resident = rt.chat.generator.loaded_adapters
        finally:
            rt.close()
        ratio = statistics.median(switched) / statistics.median(same)
        row = {"reps": args.reps, "ttft_same_ms": round(1000 * statistics.median(same), 1),
               "ttft_switch_ms": round(1000 * statistics.median(switched), 1), "ratio": round(ratio, 3),
               "resident": resident}
        print(f"(b) switch, {engine}: TTFT median {row['ttft_switch_ms']} ms switching users vs {row['ttft_same_ms']} "
              f"ms same user -> ratio {row['ratio']} (target <= 1.05)", flush=True)
        out[engine] = row
    return out


def memory(args, home: Path, users: list[str], work: Path) -> dict:
    """(c): RSS growth per extra resident adapter (copies of a real one under other names), and computed sizes."""
    from safetensors import safe_open

    from chatbot.core.lines import AdapterLines
    from chatbot.core.paths import Paths
    from chatbot.serving.engine import llamacpp_installed
    from chatbot.serving.generate import Generator
    from chatbot.serving.model import load_model

    cfg = config(args.cache_dir)
    path = next(p for u in users if (p := AdapterLines(Paths(home).adapters, cfg.serve.default_user).line(u)
                                     .current_path()) is not None)
    with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
        params = sum(f.get_slice(k).get_shape()[0] * f.get_slice(k).get_shape()[1] for k in f.keys())
    m = cfg.model
    gen = Generator(load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir), cfg.decoding, m.max_context,
                    max_adapters=16)
    copies = []
    for i in range(6):
        target = work / "adapters-copy" / f"v9{i:03d}"
        shutil.copytree(path, target, dirs_exist_ok=True)
        copies.append((target.name, str(target)))
    prompt = gen.build_prompt([{"role": "user", "content": "Hello"}])

    def load_and_use(name: str, folder: str) -> None:  # a generation touches the weights (they may be mmapped)
        gen.generate(prompt, adapter=(name, folder), max_new_tokens=2)

    load_and_use(*copies[0])
    before, tensors = rss_mb(), []
    for name, p in copies[1:]:
        load_and_use(name, p)
        tensors.append(sum(t.numel() * t.element_size() for n, t in gen._peft.named_parameters() if f".{name}." in n))
    per = (rss_mb() - before) / (len(copies) - 1)
    resident = statistics.mean(tensors) / 2**20
    r = cfg.train.lora_r
    d, mlp, kv = ONE_B["hidden"], ONE_B["mlp"], ONE_B["kv"]
    one_b = ONE_B["layers"] * r * ((d + d) * 2 + (d + kv) * 2 + (d + mlp) * 3)  # q,o; k,v; gate,up,down
    out = {"adapter_params": params, "adapter_mb_fp32": round(params * 4 / 2**20, 2),
           "resident_mb_per_adapter": round(resident, 2), "rss_per_adapter_mb": round(per, 2), "one_b_params": one_b,
           "one_b_mb_fp32": round(one_b * 4 / 2**20, 1), "lora_r": r, "target_modules": cfg.train.target_modules}
    if llamacpp_installed():
        out["llamacpp"] = llamacpp_memory(cfg, gen.loaded, copies, prompt)
    print(f"(c) memory: {params:,} LoRA parameters ({out['adapter_mb_fp32']} MB fp32); each extra resident adapter "
          f"holds {resident:.1f} MB of tensors in the served model (RSS moved {per:+.1f} MB per adapter); a 1B-class "
          f"Llama with r={r} on all linear layers: {one_b:,} parameters "
          f"({out['one_b_mb_fp32']} MB fp32, half in bf16)", flush=True)
    return out


def llamacpp_memory(cfg, loaded, copies: list[tuple[str, str]], prompt) -> dict:
    """RSS growth per extra adapter resident in the llama.cpp engine (its GGUF LoRA and its chat context)."""
    from chatbot.serving.llamacpp import LlamaCppEngine, base_gguf

    engine = LlamaCppEngine(base_gguf(cfg), loaded, cfg.decoding, cfg.model.max_context, max_adapters=16)
    try:
        for name, folder in copies:  # converted once (GGUF LoRA written next to each copy) before measuring
            engine.use_adapter(name, folder)
        engine.generate(prompt, adapter=copies[0], max_new_tokens=2)
        before = rss_mb()
        for name, folder in copies[1:]:
            engine.generate(prompt, adapter=(name, folder), max_new_tokens=2)
        per = (rss_mb() - before) / (len(copies) - 1)
    finally:
        engine.close()
    c = loaded.model.config
    kv_per_token = lambda layers, kv: layers * 2 * kv * 2  # keys and values, f16  # noqa: E731
    tokens = cfg.model.max_context
    kv = kv_per_token(c.num_hidden_layers, c.num_key_value_heads * (c.hidden_size // c.num_attention_heads))
    one_b = kv_per_token(ONE_B["layers"], ONE_B["kv"])
    out = {"rss_per_adapter_mb": round(per, 1), "kv_cache_mb": round(kv * tokens / 2**20, 1),
           "one_b_kv_cache_mb": round(one_b * tokens / 2**20, 1), "context_tokens": tokens}
    print(f"(c) memory, llama.cpp: RSS {per:+.1f} MB per extra resident adapter (GGUF LoRA + its chat context, "
          f"whose KV cache of {tokens} tokens is {out['kv_cache_mb']} MB; {out['one_b_kv_cache_mb']} MB for the "
          f"1B-class config)", flush=True)
    return out


def scaling(args, work: Path, rehearsal_from: Path | None) -> dict:
    """(d): consolidate() wall time for N users with the same new data each."""
    from chatbot.evaluation.gate import default_gate
    from chatbot.learning.consolidate import consolidate

    rows = load_jsonl(Path(args.facts))
    counts = [int(n) for n in args.scaling.split(",")]
    personas = sorted({r["persona"] for r in rows if r["facts"]})
    per_user = {p: [r for r in rows if r["persona"] == p and r["facts"] and not any(f.get("corrects") for f in
                                                                                     r["facts"])]
                for p in personas}
    chosen = [p for p in personas if len(per_user[p]) >= args.scaling_facts][:max(counts)]
    cfg = config(args.cache_dir)
    if args.scaling_model:
        cfg.model.source, cfg.model.quantization = args.scaling_model, "none"
    out = {"model": cfg.model.source}
    for n in ["warm-up", *counts]:  # the warm-up pays the one-time costs (imports, the model's first load)
        home = work / f"scale-{n}"
        n_users = 1 if n == "warm-up" else n
        source = work / "scale-warm-up" if n != "warm-up" else rehearsal_from
        if source is not None and (source / "rehearsal").exists():  # rehearsal answers cached, as after a first run
            shutil.copytree(source / "rehearsal", home / "rehearsal")
        import_round(home, cfg, [m for p in chosen[:n_users] for m in per_user[p][:args.scaling_facts]])
        t0 = time.time()
        result = consolidate(home, cfg, gate=default_gate(home, cfg), show_progress=False)
        out[n] = {"seconds": round(time.time() - t0, 1), "status": str(result.status),
                  "versions": [r.version for r in result.per_user] or [result.version]}
        print(f"(d) scaling: N={n}: {out[n]['seconds']} s ({result.status})", flush=True)
    out.pop("warm-up")
    t1 = out[counts[0]]["seconds"] / counts[0]
    for n in counts:
        out[n]["per_user_vs_n1"] = round(out[n]["seconds"] / (n * t1), 3)
    print("(d) scaling: t(N) / (N x t(1)) = " + ", ".join(f"N={n}: {out[n]['per_user_vs_n1']}" for n in counts),
          flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--facts", default=str(FACTS))
    p.add_argument("--pair", choices=("test", "v1"), default="test", help="(a): whose facts (see above)")
    p.add_argument("--rounds", type=int, default=2, help="(a) --pair test: the personas' facts of rounds 1..R")
    p.add_argument("--reps", type=int, default=12, help="(b): measured pairs")
    p.add_argument("--scaling", default="1,2,4")
    p.add_argument("--scaling-facts", type=int, default=2, help="(d): messages with facts per user")
    p.add_argument("--scaling-model", default="", help="(d): a local model folder instead of the configured one")
    p.add_argument("--reuse", default="", metavar="HOME", help="(a): ask again in a home an earlier run consolidated")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: leak,switch,memory,scaling")
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "chatbot-models"))
    p.add_argument("--json", default="", help="also write the results to this file")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="bench-users-"))
    import torch

    results: dict = {"facts_file": Path(args.facts).name, "facts_sha": sha(Path(args.facts)),
                     "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    started = time.time()
    home = None
    if "leak" not in skip or args.reuse:
        if "leak" not in skip:
            results["leak"] = leak(args, work)
            home, users = Path(results["leak"]["home"]), results["leak"]["users"]
        else:  # switch/memory on the adapters an earlier run left in --reuse
            from chatbot.core.lines import AdapterLines
            from chatbot.core.paths import Paths

            home = Path(args.reuse)
            users = AdapterLines(Paths(home).adapters).users()[:2]
        if "switch" not in skip:
            results["switch"] = switch(args, home, users)
        if "memory" not in skip:
            results["memory"] = memory(args, home, users, work)
    if "scaling" not in skip:
        results["scaling"] = scaling(args, work, home)
    results["seconds"] = round(time.time() - started, 1)
    print(json.dumps(results, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
