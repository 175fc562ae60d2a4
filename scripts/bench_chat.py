"""Benchmark the chat path's overhead over a bare `model.generate`.

Compares, on the same prompt and the same greedy decoding:
  (a) bare   model.generate(...) with a TextIteratorStreamer in a thread (what any HF app would do);
  (b) chat   ChatService.send(user, text): validate, log the user turn to SQLite (WAL, synchronous=FULL), embed +
             index it, recall memories from a buffer pre-filled with --prefill-turns imported turns of the same
             user, build the prompt, stream the reply, log + index the assistant turn.
(a) gets exactly the prompt (b) builds: Generator.build_prompt on [memory system message from the memories (b)
reported in its Accepted event, user message], on the same served module (the base model: a fresh home has no
adapter). ChatService.send takes no decoding overrides, so the reply length cannot be forced to
max_new_tokens (min_new_tokens); instead the script checks that both paths produce the same greedy reply, so
both decode the same tokens. The two paths alternate (a,b then b,a, ...) to cancel drift; medians are reported
as ratios measured in this run. The time (b) spends in its own calls (SQLite commits, embeddings, index add,
search, adapter check, tokenizer calls) is broken down by timing the package's methods on the live objects.

Target: the chat path adds <= 5 % to time-to-first-token and costs <= 5 % of decode tokens/s.

    .venv/bin/python scripts/bench_chat.py [--quantization 4bit] [--reps 3] [--cache-dir /tmp/cbmodels] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchutil import Timed  # scripts/ is on sys.path when a script runs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from chatbot.core.config import COMPUTE_DTYPES  # noqa: E402

TARGET_OVERHEAD = 0.05
USER = "bench"
DEFAULT_PROMPT = (
    "I am planning a three-day hiking trip in the Alps next month. Given what you know about me, "
    "what should I pack and which route would suit me?"
)

# Past turns for the pre-filled buffer: a few topics, some close to the prompt so retrieval finds memories.
_FACTS = [
    "I love hiking in the mountains, especially long ridge walks above the tree line.",
    "My knees hurt on steep descents, so I prefer trails with gentle slopes.",
    "Last summer I hiked the Tour du Mont Blanc and got caught in a thunderstorm.",
    "I always carry a lightweight rain jacket and trekking poles when I hike.",
    "I am vegetarian, so I need to plan food carefully on multi-day trips.",
    "I sleep badly in crowded mountain huts and prefer camping.",
    "I work as a software engineer and mostly write Python.",
    "My sister lives in Munich and we often meet in Bavaria.",
    "I am learning to cook Thai curries at home.",
    "I have a dog called Pixel who loves long walks.",
    "I am training for a half marathon in the autumn.",
    "I get altitude headaches above 3000 metres.",
    "I prefer reading science fiction novels in the evening.",
    "My budget for holidays this year is fairly tight.",
    "I usually travel by train rather than by car.",
]
_REPLIES = [
    "Thanks for telling me, I will keep that in mind.",
    "That sounds great. Let me know if you want suggestions.",
    "Good to know! That will help me give better advice.",
    "Noted. Is there anything specific you would like help with?",
]


def prefill_jsonl(path: Path, n_turns: int, seed: int) -> int:
    """Write n_turns past turns (user fact + assistant reply pairs) of USER as JSONL; returns turns written."""
    rng = random.Random(seed)
    lines, written = [], 0
    for i in range(0, n_turns, 2):
        fact = rng.choice(_FACTS)
        msgs = [{"role": "user", "content": f"{fact} (note {i // 2})"}]
        if written + 1 < n_turns:
            msgs.append({"role": "assistant", "content": rng.choice(_REPLIES)})
        written += len(msgs)
        lines.append(json.dumps({"user": USER, "messages": msgs}))
    path.write_text("\n".join(lines) + "\n")
    return written


def run_bare(generator, prompt, settings: dict) -> dict:
    """(a) model.generate + TextIteratorStreamer in a thread, the same kwargs Generator.stream uses (minus its stop
    criteria). Times from just before the thread starts."""
    import torch
    from transformers import TextIteratorStreamer

    model, tok = generator.model, generator.tokenizer
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=None)
    kwargs = dict(
        input_ids=prompt.input_ids.to(model.device),
        attention_mask=torch.ones_like(prompt.input_ids).to(model.device),
        max_new_tokens=settings["max_new_tokens"], do_sample=settings["do_sample"],
        repetition_penalty=settings["repetition_penalty"], pad_token_id=tok.pad_token_id, streamer=streamer,
    )
    out: dict = {}

    def work() -> None:
        torch.manual_seed(settings["seed"])
        with torch.inference_mode():
            out["seq"] = model.generate(**kwargs)

    t0 = time.perf_counter()
    th = threading.Thread(target=work, daemon=True)
    th.start()
    pieces, t_first, t_last = [], None, None
    for piece in streamer:
        if piece:
            t_last = time.perf_counter()
            t_first = t_first or t_last
            pieces.append(piece)
    th.join()
    t_end = time.perf_counter()
    if t_first is None:
        raise SystemExit("bare generate produced no text for this prompt: try another --prompt")
    n_new = int(out["seq"].shape[1] - prompt.n_tokens)
    return {"ttft": t_first - t0, "t_last": t_last - t0, "total": t_end - t0, "n_new": n_new,
            "text": "".join(pieces).strip()}


def run_chat(chat, text: str) -> dict:
    """(b) ChatService.send end to end; times from just before the first next() (validation included)."""
    from chatbot.serving.chat import Accepted, Done

    t0 = time.perf_counter()
    t_acc = t_first = t_last = None
    accepted = done = None
    for ev in chat.send(USER, text):
        now = time.perf_counter()
        if isinstance(ev, Accepted):
            t_acc, accepted = now, ev
        elif isinstance(ev, Done):
            done = ev
        elif ev:
            t_first = t_first or now
            t_last = now
    t_end = time.perf_counter()
    if t_first is None:
        raise SystemExit("the chat path produced no text for this prompt: try another --prompt")
    # Keep the bench conversation out of later recalls, so every rep builds the same prompt.
    chat.store.set_conversation_learn(accepted.conversation_id, False)
    return {"accepted": t_acc - t0, "ttft": t_first - t0, "t_last": t_last - t0, "total": t_end - t0,
            "post": t_end - t_last, "text": done.text, "n_tokens_retokenized": done.n_tokens,
            "memory_ids": [m.turn_id for m in accepted.memories], "notices": accepted.notices,
            "adapter": accepted.adapter}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantization", default="4bit", choices=["4bit", "8bit", "none"])
    ap.add_argument("--compute-dtype", default="auto", choices=COMPUTE_DTYPES,
                    help="as model.compute_dtype (auto: bfloat16 on a CPU with bf16 instructions, else float32)")
    ap.add_argument("--source", default="embedded", help="model.source (default: the embedded SmolLM2-135M)")
    ap.add_argument("--cache-dir", default="", help="converted-model cache (model.cache_dir); '' = the package default")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions of each path, interleaved")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--prefill-turns", type=int, default=200, help="past turns of the same user imported first")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave torch's default)")
    ap.add_argument("--seed", type=int, default=0, help="decoding seed (greedy: unused) and prefill text seed")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    if args.max_new_tokens < 2:
        ap.error("--max-new-tokens must be >= 2 (decode speed is measured between the first and last piece)")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    from chatbot.core.config import Config, DecodingConfig, ModelConfig, ServeConfig
    from chatbot.memory.recall import memory_prompt, recall
    from chatbot.memory.store import clean_text
    from chatbot.memory.transfer import import_jsonl
    from chatbot.runtime import open_runtime
    from chatbot.serving.model import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config(
        model=ModelConfig(source=args.source, quantization=args.quantization, compute_dtype=args.compute_dtype,
                          cache_dir=args.cache_dir),
        decoding=DecodingConfig(max_new_tokens=args.max_new_tokens, do_sample=False, seed=args.seed),
        serve=ServeConfig(engine="transformers"),  # (a) is transformers' generate; bench_engine.py compares engines
    )
    load_start = os.getloadavg()
    t = time.perf_counter()
    loaded = load_model(cfg.model.source, cfg.model.quantization, cfg.model.compute_dtype, cfg.model.cache_dir)
    load_s = time.perf_counter() - t
    print(f"# loaded {loaded.name} ({loaded.quantization}) in {load_s:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_chat.") as home:
        rt = open_runtime(Path(home), cfg, loaded=loaded)
        try:
            jsonl = Path(home) / "prefill.jsonl"
            n_prefill = prefill_jsonl(jsonl, args.prefill_turns, args.seed)
            rep = import_jsonl(jsonl, rt.store, rt.buffer, USER)
            assert not rep.errors, rep.errors
            print(f"# buffer pre-filled: {rep.summary()}; {len(rt.buffer)} vectors", flush=True)
            chat, gen = rt.chat, rt.chat.generator
            text = clean_text(args.prompt)

            # Warm-up (first-call costs of both paths) and the prompt (a) will get: what (b) built.
            warm = run_chat(chat, text)
            if warm["adapter"] != "base":
                raise SystemExit(f"the chat path serves adapter {warm['adapter']!r}; "
                                 "the bare path needs the base model")
            mem_ids = warm["memory_ids"]
            messages = [{"role": "user", "content": text}]
            if mem_ids:
                # The same Memory objects (b) used: recall again through the package and check the ids match.
                mems = recall(rt.buffer, text, USER, cfg.memory.top_k, cfg.memory.token_budget, cfg.memory.min_score,
                              gen.count_tokens)
                assert [m.turn_id for m in mems] == mem_ids, "recall returned other memories than the chat path"
                messages.insert(0, {"role": "system", "content": memory_prompt(mems)})
            prompt = gen.build_prompt(messages)
            settings = dict(cfg.decoding.__dict__)
            warm_a = run_bare(gen, prompt, settings)
            print(f"# prompt: {prompt.n_tokens} tokens, {len(mem_ids)} memories; warm-up done "
                  f"(same reply: {warm_a['text'] == warm['text']})", flush=True)

            # Where (b)'s extra time goes: the package's own calls, timed on the live objects during (b) only.
            parts = {"ChatService.served_adapter": Timed(chat, "served_adapter"),
                     "Store.add_turn (sqlite commit)": Timed(rt.store, "add_turn"),
                     "Embedder.encode": Timed(rt.buffer.embedder, "encode"),
                     "VectorIndex.add": Timed(rt.buffer.index, "add"),
                     "VectorIndex.save": Timed(rt.buffer.index, "save"),
                     "Buffer.search (incl. its encode)": Timed(rt.buffer, "search"),
                     "Generator.count_tokens": Timed(gen, "count_tokens"),
                     "Generator.build_prompt": Timed(gen, "build_prompt")}
            a_runs, b_runs = [], []
            for i in range(args.reps):
                order = ("a", "b") if i % 2 == 0 else ("b", "a")
                for which in order:
                    if which == "a":
                        a_runs.append(run_bare(gen, prompt, settings))
                    else:
                        b_runs.append(run_chat(chat, text))
                print(f"# rep {i + 1}/{args.reps} done ({'/'.join(order)})", flush=True)
            for p in parts.values():
                p.restore()
        finally:
            rt.close()
    load_end = os.getloadavg()

    same_reply = all(a["text"] == b["text"] for a, b in zip(a_runs, b_runs))
    same_prompt = all(b["memory_ids"] == mem_ids for b in b_runs)
    n_new = a_runs[0]["n_new"]
    assert all(a["n_new"] == n_new for a in a_runs)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def decode_tps(r: dict) -> float:  # tokens after the first piece / time between first and last piece
        return (n_new - 1) / (r["t_last"] - r["ttft"])

    rows = {}
    for name, runs in (("a", a_runs), ("b", b_runs)):
        rows[name] = {
            "ttft_ms": med(runs, "ttft") * 1e3,
            "total_s": med(runs, "total"),
            "decode_tok_s": statistics.median(decode_tps(r) for r in runs),
            "e2e_tok_s": statistics.median(n_new / r["total"] for r in runs),
        }
    rows["b"]["pre_generation_ms"] = med(b_runs, "accepted") * 1e3
    rows["b"]["ttft_after_accepted_ms"] = statistics.median(r["ttft"] - r["accepted"] for r in b_runs) * 1e3
    rows["b"]["post_generation_ms"] = med(b_runs, "post") * 1e3
    a, b = rows["a"], rows["b"]
    ttft_over_ms = b["ttft_ms"] - a["ttft_ms"]
    ttft_over = ttft_over_ms / a["ttft_ms"]
    decode_ratio = b["decode_tok_s"] / a["decode_tok_s"]
    e2e_ratio = b["e2e_tok_s"] / a["e2e_tok_s"]
    holds_ttft = ttft_over <= TARGET_OVERHEAD
    holds_decode = decode_ratio >= 1 - TARGET_OVERHEAD
    holds = holds_ttft and holds_decode and same_reply and same_prompt

    meta = {
        "model": loaded.name, "model_path": loaded.path, "quantization": loaded.quantization,
        "compute_dtype": loaded.compute_dtype, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "seed": args.seed, "decoding": settings, "prompt_tokens": prompt.n_tokens, "new_tokens": n_new,
        "memories": len(mem_ids), "memory": cfg.memory.__dict__, "prefill_turns": n_prefill,
        "buffer_vectors_at_start": rep.turns, "index_save_every": cfg.buffer.index_save_every, "reps": args.reps,
        "load_s": load_s, "loadavg_start": load_start, "loadavg_end": load_end,
    }
    breakdown = {name: {"calls_per_send": len(p.times) / args.reps, "ms_per_send": sum(p.times) * 1e3 / args.reps,
                        "max_ms": max(p.times, default=0.0) * 1e3} for name, p in parts.items()}
    print()
    print(f"Chat path overhead: {meta['model']} {meta['quantization']} ({meta['compute_dtype']}), torch threads "
          f"{meta['torch_threads']}, greedy, max_new_tokens={args.max_new_tokens} (decoded {n_new}), "
          f"repetition_penalty={settings['repetition_penalty']}, seed {args.seed}; prompt {prompt.n_tokens} tokens "
          f"incl. {len(mem_ids)} memories from {n_prefill} pre-filled turns; medians of {args.reps} interleaved reps")
    print()
    print("| path | TTFT ms | decode tok/s | end-to-end tok/s | total s | before generate ms | generate start → first "
          "piece ms | after last piece ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| (a) bare model.generate + streamer | {a['ttft_ms']:.0f} | {a['decode_tok_s']:.2f} | "
          f"{a['e2e_tok_s']:.2f} | {a['total_s']:.2f} | - | {a['ttft_ms']:.0f} | - |")
    print(f"| (b) ChatService.send | {b['ttft_ms']:.0f} | {b['decode_tok_s']:.2f} | {b['e2e_tok_s']:.2f} | "
          f"{b['total_s']:.2f} | {b['pre_generation_ms']:.0f} | {b['ttft_after_accepted_ms']:.0f} | "
          f"{b['post_generation_ms']:.0f} |")
    print(f"| (b)/(a) | {b['ttft_ms'] / a['ttft_ms']:.3f} | {decode_ratio:.3f} | {e2e_ratio:.3f} | "
          f"{b['total_s'] / a['total_s']:.3f} | | {b['ttft_after_accepted_ms'] / a['ttft_ms']:.3f} | |")
    print()
    print(f"- TTFT overhead: {ttft_over_ms:+.0f} ms ({ttft_over:+.1%}) -> {'holds' if holds_ttft else 'MISSES'} the "
          f"<= {TARGET_OVERHEAD:.0%} target")
    print(f"- decode tokens/s ratio (b)/(a): {decode_ratio:.3f} -> {'holds' if holds_decode else 'MISSES'} the "
          f">= {1 - TARGET_OVERHEAD:.2f} target; end-to-end tokens/s ratio {e2e_ratio:.3f}")
    print()
    print("Chat-path calls inside (b), per send (Buffer.search includes one Embedder.encode; the assistant turn is "
          "logged after the last piece):")
    print()
    print("| call | calls/send | ms/send | max ms |")
    print("|---|---:|---:|---:|")
    for name, d in breakdown.items():
        print(f"| {name} | {d['calls_per_send']:.1f} | {d['ms_per_send']:.1f} | {d['max_ms']:.1f} |")
    print()
    print(f"- load average (1/5/15 min) at start {'/'.join(f'{x:.1f}' for x in load_start)}, at end "
          f"{'/'.join(f'{x:.1f}' for x in load_end)} on {os.cpu_count()} CPUs")
    print(f"- same reply text on both paths in every rep: {same_reply}; same memories in every rep: {same_prompt}")
    print(f"- TARGET (overhead <= {TARGET_OVERHEAD:.0%}): {'HOLDS' if holds else 'FAILS'}")
    if args.json:
        print(json.dumps({
            "meta": meta, "bare": a, "chat": b,
            "ttft_overhead_ms": ttft_over_ms, "ttft_overhead_frac": ttft_over, "decode_tok_s_ratio": decode_ratio,
            "e2e_tok_s_ratio": e2e_ratio, "chat_breakdown_ms": breakdown, "same_reply": same_reply,
            "same_memories": same_prompt, "target_overhead": TARGET_OVERHEAD, "target_holds": holds,
            "runs": {"bare": [{k: v for k, v in r.items() if k != "text"} for r in a_runs],
                     "chat": [{k: v for k, v in r.items() if k != "text"} for r in b_runs]},
            "reply": a_runs[0]["text"],
        }))


if __name__ == "__main__":
    main()
