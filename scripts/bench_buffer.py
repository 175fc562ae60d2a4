"""Benchmark logging + indexing one chat turn: chatbot.buffer.Buffer.log_turn on a real Store and Embedder.

One log_turn = SQLite insert + commit (WAL, synchronous=FULL: an fsync per turn), embedding the text with
all-MiniLM-L6-v2, adding the vector to the FAISS index, and every `--save-every` turns an atomic index save.
The buffer is pre-filled with --prefill turns (real rows in SQLite, synthetic random unit vectors added straight
to buffer.index under the same ids, then saved), so index add / save run at a realistic size. The breakdown
times the package's own calls on the live objects (Store.add_turn, Embedder.encode, VectorIndex.add,
VectorIndex.save) while log_turn runs; the baseline is a bare sqlite3 insert + commit with the same pragmas in
the same folder, interleaved turn by turn, so the ratio means something on a noisy machine.

Target: log_turn p99 <= 50 ms.

Search latency (FAISS flat vs ivf at 100k and 1M 384-d vectors) comes from scripts/bench_index.py: this script
imports its make_data() and bench_kind() and runs them at --search-sizes, flat (exact) and ivf at the module's
default nprobe (skip with --search-sizes 0). The 1M run needs ~5 GB of RAM and took ~14 min on a busy 2-core
machine, nearly all of it ivf k-means training. Run bench_index.py itself for the full nprobe sweep.

    .venv/bin/python scripts/bench_buffer.py [--turns 500] [--prefill 10000] [--search-sizes 100000 1000000] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchutil import Timed  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "scripts"))  # bench_index's functions

TARGET_P99_MS = 50.0
USER = "bench"
_WORDS = (
    "the a to and of I you it is that in for on with my this we can be have not what do how about your will "
    "hike trip train code python memory model weekend dinner recipe book music plan work meeting garden dog "
    "coffee morning evening remember tell explain why because maybe really think know want need help idea"
).split()


def turn_texts(n: int, seed: int, min_words: int, max_words: int) -> list[str]:
    """n chat-like messages of min..max words (deterministic)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(min_words, max_words))]
        out.append(" ".join(words).capitalize() + rng.choice([".", "?", "!"]))
    return out


def stats_ms(times: list[float], n_turns: int) -> dict:
    a = np.asarray(times) * 1e3
    if len(a) == 0:
        return {"calls": 0}
    return {"calls": len(a), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max()), "mean": float(a.mean()), "per_turn_ms": float(a.sum() / n_turns)}


class BareSqlite:
    """Reference: one INSERT + COMMIT per row on its own database file with the Store's pragmas."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, conversation_id INTEGER, role TEXT, text TEXT,"
                        " created_at REAL)")

    def insert(self, text: str) -> float:
        t = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO t(conversation_id, role, text, created_at) VALUES (?,?,?,?)",
                        (1, "user", text, time.time()))
        self.db.execute("COMMIT")
        return time.perf_counter() - t


def prefill(store, buffer, n: int, seed: int, per_conversation: int = 100) -> None:
    """n real turns in SQLite (imported conversations) + one synthetic unit vector each in buffer.index."""
    rng = np.random.default_rng(seed)
    texts = turn_texts(n, seed + 1, 5, 30)
    for start in range(0, n, per_conversation):
        chunk = texts[start:start + per_conversation]
        roles = ["user" if i % 2 == 0 else "assistant" for i in range(len(chunk))]
        got = store.import_conversation(USER, list(zip(roles, chunk)))
        assert got is not None
        _, ids = got
        vecs = rng.standard_normal((len(ids), buffer.embedder.dim), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        buffer.index.add(ids, vecs)
    buffer.index.save(buffer.index_path)
    assert len(buffer.index) == n, (len(buffer.index), n)


# The synthetic-data knobs bench_index.py's own CLI defaults to; passed by name, so a reordered signature still
# works and a changed one fails with a message instead of silently benchmarking other data.
SEARCH_DATA = {"dim": 384, "centres": 1000, "noise": 1.0, "rank": 16, "iso": 0.1}


def run_search(sizes: list[int], queries: int, seed: int, workdir: Path) -> list[dict]:
    """bench_index.bench_kind for flat (exact reference) and ivf at the module's default nprobe, per size."""
    import inspect

    import bench_index

    from chatbot.memory import index as vindex

    known = {"n": max(sizes), "nq": queries, "seed": seed, **SEARCH_DATA}
    params = inspect.signature(bench_index.make_data).parameters
    missing = [p for p, v in params.items() if p not in known and v.default is inspect.Parameter.empty]
    if missing:
        raise RuntimeError(f"scripts/bench_index.py make_data() now needs {missing}: update SEARCH_DATA in "
                           "bench_buffer.py, or run bench_index.py directly")
    data, qs = bench_index.make_data(**{p: v for p, v in known.items() if p in params})
    # bench_kind always times the module's default nprobe for the trained nlist; older versions of chatbot.index
    # had one constant NPROBE instead, which then has to be asked for.
    nprobes = [vindex.NPROBE] if hasattr(vindex, "NPROBE") else []
    rows = []
    for n in sorted(sizes):
        truth = None
        for kind in ("flat", "ivf"):
            t = time.perf_counter()
            got, truth = bench_index.bench_kind(kind=kind, x=data[:n], queries=qs, truth=truth, nprobes=nprobes,
                                                removes=5, workdir=workdir, seed=seed)
            rows += got
            print(f"# search: {kind} @ {n:,} done in {time.perf_counter() - t:.0f} s", flush=True)
    return rows


def report_log_turn(args, embedder, total: list[float], base: list[float], parts: dict, n_vectors: int,
                    index_bytes: int, load_start, load_mid, result: dict) -> None:
    """Print the log_turn table and fill `result` (the JSON object)."""
    import faiss
    import torch

    n = args.turns
    tot = stats_ms(total, n)
    bare = stats_ms(base, n)
    breakdown = {k: stats_ms(p.times, n) for k, p in parts.items()}
    accounted = sum(b.get("per_turn_ms", 0.0) for b in breakdown.values())
    holds = tot["p99"] <= TARGET_P99_MS
    meta = {
        "embedder": embedder.name, "dim": embedder.dim, "prefill": args.prefill, "turns": n, "warmup": args.warmup,
        "save_every": args.save_every, "index_kind": args.index_kind, "vectors_at_end": n_vectors,
        "index_file_mb": index_bytes / 2**20, "words_per_turn": [args.min_words, args.max_words],
        "sqlite": sqlite3.sqlite_version, "pragmas": "journal_mode=WAL, synchronous=FULL",
        "torch_threads": torch.get_num_threads(), "faiss": faiss.__version__, "faiss_omp_threads":
        faiss.omp_get_max_threads(), "cpus": os.cpu_count(), "python": platform.python_version(), "seed": args.seed,
        "loadavg_start": load_start, "loadavg_after_log_turn": load_mid,
    }

    print()
    print(f"Buffer.log_turn latency: {n} turns ({args.min_words}-{args.max_words} words) on a buffer pre-filled with "
          f"{args.prefill:,} vectors ({meta['index_kind']} index -> {n_vectors:,} vectors, file "
          f"{meta['index_file_mb']:.1f} MB), index saved every {args.save_every} turns; {embedder.name}, torch threads "
          f"{meta['torch_threads']}, faiss omp threads {meta['faiss_omp_threads']}, SQLite {meta['sqlite']} "
          f"({meta['pragmas']}), seed {args.seed}")
    print()
    print("| step | calls | p50 ms | p99 ms | max ms | mean ms/turn | share of log_turn |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, s in [("log_turn (total)", tot), ("  Store.add_turn (sqlite commit)", breakdown["sqlite"]),
                     ("  Embedder.encode", breakdown["embed"]), ("  VectorIndex.add", breakdown["index_add"]),
                     ("  VectorIndex.save (periodic)", breakdown["index_save"]),
                     ("bare sqlite insert+commit (baseline)", bare)]:
        if not s["calls"]:
            print(f"| {label} | 0 | - | - | - | - | - |")
            continue
        share = "" if s is bare else f"{s['per_turn_ms'] / tot['per_turn_ms']:.1%}"
        print(f"| {label} | {s['calls']} | {s['p50']:.2f} | {s['p99']:.2f} | {s['max']:.2f} | {s['per_turn_ms']:.2f} | "
              f"{share} |")
    other = tot["per_turn_ms"] - accounted
    print(f"|  other (locks, wrappers, Python) | | | | | {other:.2f} | {other / tot['per_turn_ms']:.1%} |")
    print()
    ratios = {"log_turn_p50_over_bare_p50": tot["p50"] / bare["p50"],
              "log_turn_p99_over_bare_p99": tot["p99"] / bare["p99"],
              "add_turn_p50_over_bare_p50": breakdown["sqlite"]["p50"] / bare["p50"]}
    print(f"- log_turn / bare sqlite insert+commit: p50 {ratios['log_turn_p50_over_bare_p50']:.1f}x, "
          f"p99 {ratios['log_turn_p99_over_bare_p99']:.1f}x; Store.add_turn / bare p50 "
          f"{ratios['add_turn_p50_over_bare_p50']:.2f}x")
    print(f"- load average (1/5/15 min) at start {'/'.join(f'{x:.1f}' for x in load_start)}, after the log_turn runs "
          f"{'/'.join(f'{x:.1f}' for x in load_mid)} on {os.cpu_count()} CPUs (other work inflates the tails)")
    print(f"- TARGET log_turn p99 <= {TARGET_P99_MS:g} ms: {'HOLDS' if holds else 'FAILS'} "
          f"(p99 {tot['p99']:.1f} ms, max {tot['max']:.1f} ms)")

    result.update(meta=meta, log_turn_ms=tot, breakdown_ms=breakdown, bare_sqlite_ms=bare, ratios=ratios,
                  target_p99_ms=TARGET_P99_MS, target_holds=holds)


def report_search(search_rows: list[dict]) -> None:
    print()
    print(f"FAISS single-query search, k=10, via scripts/bench_index.py (synthetic clustered vectors, {SEARCH_DATA}; "
          f"recall of ivf against exact flat):")
    print()
    print("| size | kind | nlist | nprobe | p50 ms | p99 ms | recall@10 | build s (ivf: incl. k-means) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in search_rows:
        print(f"| {r['size']:,} | {r['kind']} | {r.get('nlist') or '-'} | "
              f"{r['nprobe'] if r['nprobe'] is not None else '-'} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall10']:.3f} | {r['build_s']:.1f} |")
    for size in sorted({r["size"] for r in search_rows}):
        f = next(r for r in search_rows if r["size"] == size and r["kind"] == "flat")
        v = next(r for r in search_rows if r["size"] == size and r["kind"] == "ivf")
        print(f"- {size:,}: ivf/flat p99 = {v['p99_ms'] / f['p99_ms']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=500, help="log_turn calls timed")
    ap.add_argument("--warmup", type=int, default=10, help="untimed log_turn calls first")
    ap.add_argument("--prefill", type=int, default=10_000, help="turns + vectors in the buffer before timing")
    ap.add_argument("--save-every", type=int, default=200,
                    help="buffer.index_save_every (default 200, the product default)")
    ap.add_argument("--index-kind", default="auto", choices=["auto", "flat", "ivf"], help="buffer.index_kind")
    ap.add_argument("--min-words", type=int, default=5)
    ap.add_argument("--max-words", type=int, default=80)
    ap.add_argument("--search-sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                    help="FAISS search sizes via scripts/bench_index.py; 0 skips")
    ap.add_argument("--search-queries", type=int, default=200, help="single-query searches per size and kind")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for the embedder (0 = torch's default)")
    ap.add_argument("--dir", type=Path, default=None, help="parent of the temp folder (default: system temp)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = ap.parse_args()
    search_sizes = [s for s in args.search_sizes if s > 0]

    import torch

    from chatbot.memory.buffer import Buffer
    from chatbot.memory.embed import Embedder
    from chatbot.memory.store import Store

    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict = {}
    load_start = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="bench_buffer.", dir=args.dir))
    try:
        store = Store(workdir / "chatbot.sqlite3")
        t = time.perf_counter()
        embedder = Embedder("embedded")
        print(f"# embedder {embedder.name} ({embedder.dim}-d) loaded in {time.perf_counter() - t:.1f} s", flush=True)
        buffer = Buffer(store, embedder, workdir / "index.faiss", args.index_kind, args.save_every)
        t = time.perf_counter()
        prefill(store, buffer, args.prefill, args.seed)
        print(f"# pre-filled {len(buffer):,} turns/vectors in {time.perf_counter() - t:.1f} s "
              f"(index kind now {buffer.index.kind})", flush=True)
        conv = store.new_conversation(USER)
        texts = turn_texts(args.warmup + args.turns, args.seed + 2, args.min_words, args.max_words)
        for text in texts[:args.warmup]:
            buffer.log_turn(conv, "user", text)
        buffer.flush()

        parts = {"sqlite": Timed(store, "add_turn"), "embed": Timed(embedder, "encode"),
                 "index_add": Timed(buffer.index, "add"), "index_save": Timed(buffer.index, "save")}
        bare_db = BareSqlite(workdir / "bare.sqlite3")
        for text in texts[:args.warmup]:
            bare_db.insert(text)
        total, logged, base = [], [], []
        for i, text in enumerate(texts[args.warmup:]):  # interleaved with the baseline, to share any drift
            t = time.perf_counter()
            buffer.log_turn(conv, "user" if i % 2 == 0 else "assistant", text)
            t_logged = time.perf_counter()
            buffer.wait_indexed()  # indexing runs on the buffer's worker thread; log+index = until searchable
            total.append(time.perf_counter() - t)
            logged.append(t_logged - t)
            base.append(bare_db.insert(text))
        for p in parts.values():
            p.restore()
        bare_db.db.close()
        buffer.close()
        n_vectors = len(buffer)
        index_bytes = buffer.index_path.stat().st_size
        store.close()
        load_mid = os.getloadavg()
        report_log_turn(args, embedder, total, base, parts, n_vectors, index_bytes, load_start, load_mid, result)
        chat_path = stats_ms(logged, len(logged))
        result["log_turn_chat_path"] = chat_path
        print(f"\nchat path only (log_turn returns once SQLite committed; indexing is queued): "
              f"p50 {chat_path['p50']:.2f} ms, p99 {chat_path['p99']:.2f} ms")
        if search_sizes:
            try:
                result["search"] = run_search(search_sizes, args.search_queries, args.seed, workdir)
                report_search(result["search"])
            except Exception as e:  # the log_turn results above stay valid
                result["search_error"] = f"{type(e).__name__}: {e}"
                print(f"\nsearch benchmark failed: {result['search_error']}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
