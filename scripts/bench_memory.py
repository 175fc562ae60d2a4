"""Benchmark the resident memory of the served chat model per quantization (4bit NF4, 8bit, none).

Each configuration runs in a fresh subprocess (this script with --child): it imports torch, transformers and
chatbot.model, loads the model with chatbot.model.load_model, then generates --gen-tokens greedy tokens so the
model is "served" (activations, KV cache and lazily built kernels exist). A baseline subprocess does the same
imports (plus bitsandbytes, which quantized loads import anyway) but loads no model. Reported per configuration:
  - RSS after load and after the short generation, minus the baseline subprocess's RSS (the model's cost);
  - peak RSS of the process (ru_maxrss) minus the baseline's (what loading needs transiently);
  - the same split into anonymous memory (heap, tensors) and file-backed pages (the mmapped safetensors file),
    and anonymous memory after glibc malloc_trim (what is left once freed heap is returned to the OS);
  - model.get_memory_footprint() (parameter + buffer bytes as transformers counts them).
The ratio 4bit/none is printed from numbers measured in this run. A configuration that fails to load on this
machine (8bit needs bitsandbytes' CPU int8 path) is reported with its error instead of a number.

    .venv/bin/python scripts/bench_memory.py [--quantizations none 8bit 4bit] [--cache-dir /tmp/cbmodels] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from chatbot.core.config import COMPUTE_DTYPES  # noqa: E402

MiB = 2**20


def rss_parts() -> dict[str, int]:
    """Resident set of this process (Linux /proc): total, anonymous (heap, tensors) and file-backed (mmapped
    files such as safetensors weights, shared libraries; the kernel can drop these under pressure)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[{"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}[key]] = int(line.split()[1]) * 1024
    if "rss" not in out:
        raise RuntimeError("VmRSS not found in /proc/self/status (Linux only)")
    return out


def mapped_rss_bytes(suffix: str) -> int:
    """Resident bytes of this process's mappings of files whose path ends with `suffix` (/proc/self/smaps)."""
    total, current = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if not head[0].endswith(":"):  # a mapping header: start-end perms offset dev inode [path]
                current = len(head) >= 6 and head[-1].endswith(suffix)
            elif current and head[0] == "Rss:":
                total += int(head[1]) * 1024
    return total


def rss_bytes() -> int:
    return rss_parts()["rss"]


def malloc_trim() -> bool:
    """Ask glibc to return freed heap pages to the OS (shows how much RSS is allocator retention)."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(args: argparse.Namespace) -> dict:
    """Runs inside the fresh subprocess; returns the measurements as a dict (printed as the last stdout line)."""
    import gc

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    from chatbot.serving import model as cbmodel

    if args.threads:
        torch.set_num_threads(args.threads)
    import bitsandbytes  # noqa: F401  (quantized loads import it; count it in the baseline, not the model)

    gc.collect()
    out = {"quantization": args.child, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
           "transformers": transformers.__version__, "rss_imports": rss_bytes(), "parts_imports": rss_parts()}
    if args.child == "baseline":
        out.update(rss_after_load=out["rss_imports"], rss_after_generate=out["rss_imports"], peak_rss=peak_rss_bytes())
        return out
    t = time.perf_counter()
    loaded = cbmodel.load_model(args.source, args.child, args.compute_dtype, args.cache_dir)
    out["load_s"] = time.perf_counter() - t
    gc.collect()
    out.update(model=loaded.name, model_path=loaded.path, rss_after_load=rss_bytes(), parts_after_load=rss_parts(),
               footprint=int(loaded.model.get_memory_footprint()),
               params=int(sum(p.numel() for p in loaded.model.parameters())),
               weight_dtypes=sorted({str(p.dtype) for p in loaded.model.parameters()}))
    tok = loaded.tokenizer
    ids = tok.apply_chat_template([{"role": "user", "content": "Say something about memory."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(args.seed)
    with torch.inference_mode():
        seq = loaded.model.generate(**ids, max_new_tokens=args.gen_tokens, min_new_tokens=args.gen_tokens,
                                    do_sample=False, pad_token_id=tok.pad_token_id)
    gc.collect()
    out.update(rss_after_generate=rss_bytes(), parts_after_generate=rss_parts(), peak_rss=peak_rss_bytes(),
               safetensors_mmap_rss=mapped_rss_bytes(".safetensors"),
               generated=int(seq.shape[1] - ids["input_ids"].shape[1]))
    out["malloc_trim"] = malloc_trim()
    out["parts_after_trim"] = rss_parts()
    return out


def run_child(args: argparse.Namespace, which: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", which, "--source", args.source,
           "--compute-dtype", args.compute_dtype, "--cache-dir", args.cache_dir, "--gen-tokens", str(args.gen_tokens),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return {"quantization": which, "error": f"exit {proc.returncode}: {err[:300]}", "wall_s": wall}
    res = json.loads(lines[-1])
    res["wall_s"] = wall
    return res


def mib(v: float | None) -> str:
    return "-" if v is None else f"{v / MiB:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quantizations", nargs="+", default=["none", "8bit", "4bit"], choices=["none", "8bit", "4bit"])
    ap.add_argument("--source", default="embedded", help="model.source (default: the embedded SmolLM2-135M)")
    ap.add_argument("--compute-dtype", default="auto", choices=COMPUTE_DTYPES,
                    help="as model.compute_dtype (auto: bfloat16 on a CPU with bf16 instructions, else float32)")
    ap.add_argument("--cache-dir", default="", help="converted-model cache (model.cache_dir); '' = the package default")
    ap.add_argument("--gen-tokens", type=int, default=16, help="greedy tokens generated after load (>= 1)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the children (0 = torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per subprocess")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.child:  # every child runs with, and the report names, the dtype "auto" means on this machine
        from chatbot.serving.model import resolve_compute_dtype
        args.compute_dtype = resolve_compute_dtype(args.compute_dtype)

    if args.gen_tokens < 1:
        ap.error("--gen-tokens must be >= 1")
    if args.child:
        print(json.dumps(child(args)))
        return

    base = run_child(args, "baseline")
    if "error" in base:
        sys.exit(f"baseline subprocess failed: {base['error']}")
    print(f"# baseline (imports only): RSS {mib(base['rss_imports'])} MiB", flush=True)
    rows = []
    for q in args.quantizations:
        r = run_child(args, q)
        if "error" not in r:
            for k in ("rss_after_load", "rss_after_generate", "peak_rss"):
                r[f"{k}_minus_baseline"] = r[k] - base["rss_imports"]
            r["import_rss_drift"] = r["rss_imports"] - base["rss_imports"]
        rows.append(r)
        print(f"# {q}: {'error: ' + r['error'] if 'error' in r else 'done'} ({r['wall_s']:.0f} s)", flush=True)

    ok = {r["quantization"]: r for r in rows if "error" not in r}
    name = next((r["model"] for r in ok.values()), args.source)
    threads = next((r["torch_threads"] for r in ok.values()), base["torch_threads"])
    print()
    print(f"Resident memory of the served model: {name}, compute dtype {args.compute_dtype}, torch threads {threads}, "
          f"{args.gen_tokens} greedy tokens generated after load, seed {args.seed}; torch {base['torch']}, "
          f"transformers {base['transformers']}; baseline subprocess RSS {mib(base['rss_imports'])} MiB")
    print()
    print("| quantization | RSS after load − baseline MiB | RSS after generate − baseline MiB "
          "| of which anon / file MiB | of which *.safetensors mmap MiB | anon after malloc_trim MiB "
          "| peak RSS − baseline MiB | get_memory_footprint MiB | weight dtypes | load s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    ba, bf = base["parts_imports"]["anon"], base["parts_imports"]["file"]
    for r in rows:
        if "error" in r:
            print(f"| {r['quantization']} | failed: {r['error']} | | | | | | | | |")
            continue
        g, tr = r["parts_after_generate"], r["parts_after_trim"]
        print(f"| {r['quantization']} | {mib(r['rss_after_load_minus_baseline'])} | "
              f"{mib(r['rss_after_generate_minus_baseline'])} | {mib(g['anon'] - ba)} / {mib(g['file'] - bf)} | "
              f"{mib(r['safetensors_mmap_rss'])} | {mib(tr['anon'] - ba)} | {mib(r['peak_rss_minus_baseline'])} | "
              f"{mib(r['footprint'])} | {', '.join(r['weight_dtypes'])} | {r['load_s']:.1f} |")
    print()
    print("(anon = heap/tensors; file = mmapped files: the *.safetensors column is the part that is the model file, "
          "clean pages the kernel may drop under pressure and re-read if still used; malloc_trim returns freed heap "
          "to the OS, so anon minus anon-after-trim is allocator retention)")
    ratios = {}
    if "4bit" in ok and "none" in ok:
        for key in ("rss_after_load_minus_baseline", "rss_after_generate_minus_baseline", "peak_rss_minus_baseline",
                    "footprint"):
            ratios[f"4bit_over_none_{key}"] = ok["4bit"][key] / ok["none"][key]
        ratios["4bit_over_none_anon_after_trim"] = ((ok["4bit"]["parts_after_trim"]["anon"] - ba)
                                                    / (ok["none"]["parts_after_trim"]["anon"] - ba))
        print()
        print(f"- 4bit/none: RSS after load {ratios['4bit_over_none_rss_after_load_minus_baseline']:.3f}, after "
              f"generate {ratios['4bit_over_none_rss_after_generate_minus_baseline']:.3f}, peak "
              f"{ratios['4bit_over_none_peak_rss_minus_baseline']:.3f}, anon after malloc_trim "
              f"{ratios['4bit_over_none_anon_after_trim']:.3f}, get_memory_footprint "
              f"{ratios['4bit_over_none_footprint']:.3f}")
    if args.json:
        meta = {"source": args.source, "model": name, "compute_dtype": args.compute_dtype, "torch_threads": threads,
                "gen_tokens": args.gen_tokens, "seed": args.seed, "cpus": os.cpu_count(),
                "python": platform.python_version(), "torch": base["torch"], "transformers": base["transformers"]}
        print(json.dumps({"meta": meta, "baseline": base, "rows": rows, "ratios": ratios}))


if __name__ == "__main__":
    main()
