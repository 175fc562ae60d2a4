"""Benchmark a consolidation against a plain transformers Trainer + peft run on the same data and the same base.

A temp home gets --turns new turns of one user, so the run is one training of one adapter line (user/assistant pairs
whose user side states varied first-person facts such as "My sister is called Ana." or "I live in Porto.", so
augmentation turns them into Q/A pairs) and, for replay, --prior-turns older turns imported and marked consolidated
(Store.mark_consolidated). That home is a template: every measured run copies it, so all runs see the same data.
Each run is its own subprocess (peak RSS per path):
  (a) pipeline  chatbot.learning.consolidate.consolidate(home, config, gate=..., loaded=..., show_progress=False) with
                the real config (4-bit by default), after chatbot.model.load_model. Its training metrics (real tokens,
                padded tokens, padding waste, trainer seconds, tokens/s) come from result.metrics, which train.py
                counts from the batches the Trainer processed. Stages are timed by wrapping the package's own
                functions on the live modules and classes (open_buffer, _rehearsal, build_mix, train_adapter,
                tokenize_example, attach_adapter, write_json_atomic, PeftModel.save_pretrained, Registry.commit,
                ProbeGate.__call__, Registry.promote, Store.set_consolidated); calls pass through unchanged. The wrapper
                on train_adapter keeps the exact examples the run trained on (the mix, less rehearsal answers that
                feed the distillation only: train.rehearsal_sft).
  (b) baseline  the same examples (from (a)'s train_adapter call), tokenized with learning.train.tokenize_example,
                on a freshly loaded base with the same quantization, trained by a plain transformers.Trainer on a
                peft.get_peft_model LoRA (same r / alpha / dropout / targets / lr / epochs / batch size / seed;
                prepare_model_for_kbit_training without gradient checkpointing, as the pipeline does), random
                sampling (no length grouping), DataCollatorForSeq2Seq, default logging. A small Trainer subclass
                counts real (attention_mask) vs padded tokens the same way train.py does.
With --baseline-dtype the baseline paths load the model in another compute dtype. The pipeline also distils on the
rehearsal answers and the baseline does not, so what the dtype is worth is the ratio of two runs: --compute-dtype
auto --baseline-dtype float32 over --compute-dtype float32 (same baseline, the pipeline's dtype the only change).
With --grouped-baseline a third path runs the same baseline with train_sampling_strategy="group_by_length", so
one run shows what batch order alone is worth. The Trainer settings each path actually ran with (sampling, LR
schedule, logging interval) are read from its live Trainer and printed.
tokens/s = real tokens / trainer.train() seconds. Real tokens do not depend on batching, so every path must count
the same number (checked). Every Trainer.training_step (forward + backward of one batch) is timed with its padded
shape, so a table compares the cost per padded token of batches of similar length across paths: equal costs mean
the pipeline's steps carry no hidden work, and any throughput gap comes from how the batches are composed.
Order: rep 1 runs pipeline, baseline[, baseline-group_by_length], rep 2 the reverse, and so on (the baselines need
(a)'s examples, so a pipeline run always comes first); ratios are medians over reps. Peak memory: the subprocess's
ru_maxrss, and the peak during training (VmHWM reset via /proc/self/clear_refs at its start).

With train.strategy "rebuild" (the default) the prior turns are read into the knowledge ledger like the new ones,
and the mix is the user's current facts from both sets + rehearsal; no adapter version holds the prior turns' facts,
so they are trained as new question/answer pairs, not replay (under "continue" the prior turns are the replay pool).

Target: pipeline tokens/s >= baseline tokens/s (ratio >= 1.0: the pipeline adds no hidden cost). The default
(--turns 200 with 200 prior turns, 1 epoch) is also the end-to-end wall time of consolidating 200 new turns on
CPU with the embedded model; the rehearsal stage includes generating the base model's answers, which a home
caches after its first consolidation.

    .venv/bin/python scripts/bench_consolidate.py [--turns 200] [--prior-turns N] [--epochs 1] [--reps 1]
        [--compute-dtype auto] [--baseline-dtype float32] [--grouped-baseline] [--cache-dir /tmp/cbmodels]
        [--threads 0] [--keep] [--json]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from benchutil import Timed, instrument_trainer, reset_peak, rss_status, trainer_report  # noqa: E402 (scripts/)
from synthetic_facts import build_home  # noqa: E402  (scripts/ is on sys.path when a script runs)

from chatbot.core.config import COMPUTE_DTYPES  # noqa: E402

BENCH_USER = "ana"  # every synthetic turn is this user's
MiB = 1024 * 1024
TARGET_RATIO = 1.0



# ---------------------------------------------------------------------------------------------------- children
def make_config(args: argparse.Namespace):
    """Defaults (or --config FILE) with the command-line overrides; dataclasses.replace re-runs the checks."""
    from chatbot.core.config import Config

    cfg = Config()
    if args.config:
        with open(args.config, "rb") as f:
            cfg = Config.from_dict(tomllib.load(f), origin=args.config)
    cfg.model = dataclasses.replace(cfg.model, source=args.source, quantization=args.quantization,
                                    compute_dtype=args.compute_dtype, cache_dir=args.cache_dir or cfg.model.cache_dir)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
                 "replay_ratio": args.replay_ratio, "rehearsal_count": args.rehearsal}
    cfg.train = dataclasses.replace(cfg.train, **{k: v for k, v in overrides.items() if v is not None})
    return cfg


def _load(cfg):
    from chatbot.serving.model import load_model

    m = cfg.model
    return load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir)  # "" = load_model's shared temp cache


def examples_digest(dicts: list[dict]) -> str:
    return hashlib.sha1(json.dumps(dicts, sort_keys=True).encode()).hexdigest()[:16]


def child_common(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return {"torch_threads": torch.get_num_threads(), "loadavg_start": os.getloadavg()}


def child_pipeline(args: argparse.Namespace, started: float) -> dict:
    """(a): load the base, then run consolidate() on a copy of the template home; time its stages."""
    import chatbot.learning.consolidate as cons
    import chatbot.learning.train as train
    from chatbot.learning.mix import example_to_dict

    out = child_common(args)
    cfg = make_config(args)
    home = Path(args.work) / f"home-{args.child_tag}"
    shutil.copytree(Path(args.work) / "template", home)
    out["imports_s"] = time.perf_counter() - started

    t = time.perf_counter()
    loaded = _load(cfg)
    out["load_s"] = time.perf_counter() - t
    out["model"], out["quantization"] = loaded.name, loaded.quantization

    captured: dict = {}
    mem: dict = {}

    def train_start(a, k) -> None:
        captured["trained"] = list(a[2])  # train_adapter(model, tokenizer, examples, ...): the SFT examples
        mem["rss_train_start"] = rss_status()["VmRSS"]
        mem["reset"] = reset_peak()

    def train_end(result) -> None:
        mem["hwm_train"] = rss_status()["VmHWM"]

    from peft import PeftModel

    from chatbot.core.registry import Registry
    from chatbot.evaluation.gate import ProbeGate, default_gate
    from chatbot.memory.store import Store

    w_runtime = Timed(cons, "open_buffer")
    w_rehearsal = Timed(cons, "_rehearsal")
    w_mix = Timed(cons, "build_mix")
    w_json = Timed(cons, "write_json_atomic")
    w_train = Timed(cons, "train_adapter", on_call=train_start, on_return=train_end)
    w_tok = Timed(train, "tokenize_example")
    w_attach = Timed(train, "attach_adapter")
    w_save = Timed(PeftModel, "save_pretrained")
    w_resolved = Timed(cons, "_resolved_config")
    w_commit = Timed(Registry, "commit")
    w_gate = Timed(ProbeGate, "__call__")
    w_promote = Timed(Registry, "promote")
    w_mark = Timed(Store, "set_consolidated")
    trainer_rec = instrument_trainer()

    t = time.perf_counter()
    result = cons.consolidate(home, cfg, gate=default_gate(home, cfg), loaded=loaded, show_progress=False)
    total = time.perf_counter() - t
    if result.status != "promoted":
        raise SystemExit(f"consolidation ended with status {result.status}: {result.message}")

    dicts = [example_to_dict(e) for e in captured["trained"]]  # the mix less what feeds the distillation only
    examples_file = Path(args.work) / "examples.json"
    if not examples_file.exists():
        examples_file.write_text(json.dumps(dicts), encoding="utf-8")
    m = result.metrics
    train_end_t = w_train.calls[0][1]
    progress_in_training = [(a, b) for a, b in w_json.calls if w_train.calls[0][0] <= a < train_end_t]
    json_after = sum(b - a for a, b in w_json.calls if a >= train_end_t)
    saved = w_save.seconds + w_resolved.seconds + json_after + w_commit.seconds
    stages = {
        "open buffer + select (embedder, FAISS, SQLite)": w_runtime.seconds,
        "rehearsal (base model answers)": w_rehearsal.seconds,
        "mix build (augment, replay policy)": w_mix.seconds,
        "train_adapter: tokenize": w_tok.seconds,
        "train_adapter: attach adapter": w_attach.seconds,
        "train_adapter: trainer.train()": m["seconds"],
        "train_adapter: Trainer setup, rest": w_train.seconds - w_tok.seconds - w_attach.seconds - m["seconds"],
        "save: adapter save_pretrained": w_save.seconds,
        "save: config/manifest/metrics/progress JSON + registry commit": saved - w_save.seconds,
        "probe gate (candidate probes; base + noise floor on a home's first run)": w_gate.seconds,
        "promote + mark consolidated": w_promote.seconds + w_mark.seconds,
        "after training, unaccounted (gc of the trainer, logging)": t + total - train_end_t - saved
        - w_gate.seconds - w_promote.seconds - w_mark.seconds,
    }
    stages["lock, run log, other"] = total - sum(stages.values())
    out.update(
        status=result.status, version=result.version, counts=result.counts, metrics=m, consolidate_s=total,
        stages=stages, progress_writes={"calls": len(progress_in_training),
                                        "seconds": sum(b - a for a, b in progress_in_training)},
        n_examples=len(dicts), examples_sha1=examples_digest(dicts), run_dir=result.run_dir,
        trainer=trainer_report(trainer_rec),
        rss_train_start=mem.get("rss_train_start"), peak_rss_train=mem.get("hwm_train") if mem.get("reset") else None,
    )
    return out


def child_baseline(args: argparse.Namespace, started: float) -> dict:
    """(b): the same examples on a freshly loaded base, plain Trainer + peft."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from chatbot.learning.mix import Example
    from chatbot.learning.train import IGNORE, lora_targets, run_epochs, tokenize_example, trainer_max_steps

    class CountingTrainer(Trainer):
        """Counts real (attention_mask) and padded tokens of every batch, as train.py's trainer does."""

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.real_tokens = self.padded_tokens = 0

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            mask = inputs["attention_mask"]
            self.real_tokens += int(mask.sum())
            self.padded_tokens += int(mask.numel())
            return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)

    out = child_common(args)
    cfg = make_config(args)
    tc = cfg.train
    dicts = json.loads((Path(args.work) / "examples.json").read_text(encoding="utf-8"))
    examples = [Example(tuple(tuple(m) for m in d["messages"]), d["source"], tuple(d["turn_ids"]), d["user"], d["ref"])
                for d in dicts]
    out["imports_s"] = time.perf_counter() - started

    t = time.perf_counter()
    loaded = _load(cfg)
    out["load_s"] = time.perf_counter() - t
    out["model"], out["quantization"] = loaded.name, loaded.quantization
    model, tok = loaded.model, loaded.tokenizer

    out["rss_train_start"] = rss_status()["VmRSS"]
    reset = reset_peak()
    torch.manual_seed(tc.seed)
    t = time.perf_counter()
    data = [tokenize_example(tok, e.as_chat(), tc.max_seq_len) for e in examples]
    data = [d for d in data if any(label != IGNORE for label in d["labels"])]
    tokenize_s = time.perf_counter() - t

    t = time.perf_counter()
    if cfg.model.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=tc.gradient_checkpointing)
    model = get_peft_model(model, LoraConfig(r=tc.lora_r, lora_alpha=tc.lora_alpha, lora_dropout=tc.lora_dropout,
                                             target_modules=lora_targets(model, tc.target_modules),
                                             task_type="CAUSAL_LM"))
    attach_s = time.perf_counter() - t

    t = time.perf_counter()
    on_gpu = torch.cuda.is_available()
    targs = TrainingArguments(
        output_dir=str(Path(args.work) / f"baseline-{args.child_tag}"), per_device_train_batch_size=tc.batch_size,
        num_train_epochs=run_epochs(len(data), tc), learning_rate=tc.learning_rate, weight_decay=0.0, seed=tc.seed,
        max_steps=trainer_max_steps(len(data), tc),  # the pipeline's train.max_steps cap, when it applies
        data_seed=tc.seed, report_to=[], save_strategy="no", use_cpu=not on_gpu,
        train_sampling_strategy=args.sampling,
        bf16=on_gpu and torch.cuda.is_bf16_supported(), disable_tqdm=True, remove_unused_columns=False,
    )
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE, return_tensors="pt")
    trainer = CountingTrainer(model=model, args=targs, train_dataset=data, data_collator=collator,
                              processing_class=tok)
    trainer_rec = instrument_trainer()
    setup_s = time.perf_counter() - t
    t = time.perf_counter()
    res = trainer.train()
    seconds = time.perf_counter() - t
    peak = rss_status()["VmHWM"] if reset else None
    real, padded = trainer.real_tokens, trainer.padded_tokens
    out.update(
        metrics={"train_loss": round(float(res.training_loss), 5), "steps": int(res.global_step),
                 "examples": len(data), "epochs": run_epochs(len(data), tc), "tokens": real, "padded_tokens": padded,
                 "padding_waste": round(1 - real / padded, 4) if padded else 0.0, "seconds": round(seconds, 2),
                 "tokens_per_s": round(real / seconds, 1) if seconds else None},
        stages={"tokenize": tokenize_s, "attach adapter": attach_s, "Trainer setup": setup_s,
                "trainer.train()": seconds},
        n_examples=len(examples), examples_sha1=examples_digest(dicts),
        tokenized_tokens=(sum(len(d["input_ids"]) for d in data) * run_epochs(len(data), tc)
                          if targs.max_steps < 0 else None),
        trainer=trainer_report(trainer_rec),
        peak_rss_train=peak,
    )
    return out


def child(args: argparse.Namespace, started: float) -> dict:
    import logging
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    logging.getLogger("chatbot").setLevel(logging.WARNING)
    out = child_pipeline(args, started) if args.child == "pipeline" else child_baseline(args, started)
    path = args.child if args.child == "pipeline" or args.sampling == "random" else f"baseline-{args.sampling}"
    out.update(path=path, tag=args.child_tag, loadavg_end=os.getloadavg(),
               peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB
    return out


def run_child(args: argparse.Namespace, which: str, tag: str) -> dict:
    """which: "pipeline", "baseline" (random order) or "baseline-group_by_length"."""
    child, _, sampling = which.partition("-")
    argv = list(args.argv)
    if child == "baseline":  # --baseline-dtype: the baseline paths load the model in their own compute dtype
        argv[argv.index("--compute-dtype") + 1] = args.baseline_dtype
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--child", child, "--child-tag", tag,
           "--work", args.work, "--sampling", sampling or "random"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:]) or "(no stderr)"
        raise SystemExit(f"{which} subprocess failed (exit {proc.returncode}):\n{tail}")
    res = json.loads(lines[-1])
    res["wall_s"] = wall
    return res


# ---------------------------------------------------------------------------------------------------- report
def mib(v: float | None) -> str:
    return "-" if v is None else f"{v / MiB:,.0f}"


def med(values: list[float]) -> float:
    return statistics.median(values)


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=200, help="new turns to consolidate (even: user/assistant pairs)")
    ap.add_argument("--prior-turns", type=int, default=None,
                    help="older turns imported and marked consolidated: continue's replay pool; with rebuild their "
                         "current facts are trained like the new ones (default: = --turns; 0 = none)")
    ap.add_argument("--epochs", type=int, default=1, help="train.epochs (the package default is 4)")
    ap.add_argument("--batch-size", type=int, default=None, help="train.batch_size (default: the config's)")
    ap.add_argument("--replay-ratio", type=float, default=None, help="train.replay_ratio (default: the config's)")
    ap.add_argument("--rehearsal", type=int, default=None, help="train.rehearsal_count (default: the config's)")
    ap.add_argument("--quantization", default="4bit", choices=["4bit", "8bit", "none"])
    ap.add_argument("--compute-dtype", default="auto", choices=COMPUTE_DTYPES,
                    help="as model.compute_dtype (auto: bfloat16 on a CPU with bf16 instructions, else float32)")
    ap.add_argument("--baseline-dtype", default=None, choices=COMPUTE_DTYPES,
                    help="compute dtype of the baseline paths only (default: --compute-dtype; see above)")
    ap.add_argument("--source", default="embedded", help="model.source (default: the embedded SmolLM2-135M)")
    ap.add_argument("--cache-dir", default="",
                    help="converted + pre-quantized model cache (model.cache_dir); '' = load_model's temp-dir cache")
    ap.add_argument("--config", default=None, help="a config.toml applied before the flags above")
    ap.add_argument("--reps", type=int, default=1, help="runs of each path, alternating order (ABBA)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the subprocesses (0 = torch's default)")
    ap.add_argument("--seed", type=int, default=0, help="synthetic data seed and train.seed")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per subprocess")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (homes, run logs) and print its path")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    ap.add_argument("--grouped-baseline", action="store_true",
                    help="also run the baseline with train_sampling_strategy='group_by_length' (same data, seed, args)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sampling", default="random", help=argparse.SUPPRESS)
    ap.add_argument("--child-tag", default="", help=argparse.SUPPRESS)
    ap.add_argument("--work", default="", help=argparse.SUPPRESS)
    started = time.perf_counter()
    args = ap.parse_args()

    if args.child:
        print(json.dumps(child(args, started)))
        return
    from chatbot.serving.model import resolve_compute_dtype  # the children and the report get what "auto" means here
    args.compute_dtype = resolve_compute_dtype(args.compute_dtype)
    args.baseline_dtype = resolve_compute_dtype(args.baseline_dtype or args.compute_dtype)
    if args.turns < 2 or args.turns % 2:
        ap.error("--turns must be an even number >= 2 (user/assistant pairs)")
    prior = args.turns if args.prior_turns is None else args.prior_turns
    if prior < 0 or prior % 2:
        ap.error("--prior-turns must be an even number >= 0")
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Flags the children get (the parent's, minus --json/--keep/--reps); --prior-turns is unused there.
    args.argv = ["--epochs", str(args.epochs), "--quantization", args.quantization, "--compute-dtype",
                 args.compute_dtype, "--source", args.source, "--cache-dir", args.cache_dir, "--threads",
                 str(args.threads), "--seed", str(args.seed)]
    for flag, v in (("--batch-size", args.batch_size), ("--replay-ratio", args.replay_ratio),
                    ("--rehearsal", args.rehearsal), ("--config", args.config)):
        if v is not None:
            args.argv += [flag, str(v)]

    cfg = make_config(args)
    loadavg_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-consolidate-"))
    args.work = str(work)
    try:
        # One user: a consolidation trains each user's line on its own, and the baseline retrains one run's examples
        data = build_home(work / "template", cfg, args.turns, prior, args.seed, users=(BENCH_USER,))
        print(f"# home: {data['new']['turns']} new turns in {data['new']['conversations']} conversations, "
              f"{data['prior']['turns']} prior (consolidated) turns; built in {data['build_s']:.1f} s", flush=True)
        runs: list[dict] = []
        for rep in range(args.reps):
            order = ["pipeline", "baseline"] + (["baseline-group_by_length"] if args.grouped_baseline else [])
            for which in (order if rep % 2 == 0 else order[::-1]):
                r = run_child(args, which, f"{which}-{rep}")
                r["rep"] = rep
                runs.append(r)
                m = r["metrics"]
                print(f"# rep {rep + 1} {which}: {m['tokens_per_s']} tok/s, {m['steps']} steps, "
                      f"train {m['seconds']:.1f} s, subprocess {r['wall_s']:.0f} s, "
                      f"load avg {r['loadavg_end'][0]:.2f}", flush=True)
    finally:
        if args.keep:
            print(f"# kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    loadavg_end = os.getloadavg()
    report(args, cfg, prior, data, runs, loadavg_start, loadavg_end)


BINS = (0, 64, 128, 192, 256, 384, 1 << 30)  # padded sequence length of a batch


def print_shape_table(groups: list[tuple[str, list[dict]]]) -> None:
    """Forward+backward cost per padded token for batches of similar padded length: same shape, same cost means
    the pipeline's steps carry no hidden work; a throughput gap then comes from batch composition alone."""
    def per_bin(runs: list[dict]) -> dict:
        out: dict = {}
        for r in runs:
            for padded, _, sec, n in r["trainer"]["steps"]:
                i = next(k for k in range(len(BINS) - 1) if BINS[k] < n <= BINS[k + 1])
                out.setdefault(i, []).append(sec / padded * 1e3)
        return out

    bins = [(name, per_bin(rs)) for name, rs in groups]
    print()
    print("| batch padded length | " + " | ".join(f"{n} steps | {n} ms / padded token" for n, _ in bins) + " |")
    print("|---|" + "---:|---:|" * len(bins))
    for i in sorted(set().union(*(set(b) for _, b in bins))):
        lo, hi = BINS[i] + 1, BINS[i + 1]
        cells = []
        for _, b in bins:
            cells += [str(len(b.get(i, []))), f"{med(b[i]):.2f}" if i in b else "-"]
        print(f"| {lo}–{hi if hi < 1 << 30 else '…'} | " + " | ".join(cells) + " |")
    print()


def derived(r: dict) -> dict:
    """Throughputs of one run: real tokens per wall / CPU second of trainer.train, padded tokens per second of
    trainer.train and of the forward+backward steps alone."""
    x, tr = r["metrics"], r["trainer"]
    return {
        "tokens_per_s": x["tokens"] / x["seconds"],
        "tokens_per_cpu_s": x["tokens"] / tr["train_cpu_s"],
        "padded_tokens_per_s": x["padded_tokens"] / x["seconds"],
        "steps_s": tr["steps_s"],
        "padded_tokens_per_step_s": x["padded_tokens"] / tr["steps_s"],
        "loop_ms_per_step": (tr["train_wall_s"] - tr["steps_s"]) / max(1, len(tr["steps"])) * 1e3,
    }


def ratios(num: list[dict], den: list[dict], reps: int) -> dict:
    """Median over reps of num/den for each throughput (> 1: num is faster)."""
    per_rep = []
    for rep in range(reps):
        a = next(r for r in num if r["rep"] == rep)["derived"]
        b = next(r for r in den if r["rep"] == rep)["derived"]
        per_rep.append({k: a[k] / b[k] for k in ("tokens_per_s", "tokens_per_cpu_s", "padded_tokens_per_s",
                                                 "padded_tokens_per_step_s")})
    out = {k: med([x[k] for x in per_rep]) for k in per_rep[0]}
    out["per_rep"] = per_rep
    return out


def report(args, cfg, prior: int, data: dict, runs: list[dict], loadavg_start, loadavg_end) -> None:
    paths = list(dict.fromkeys(r["path"] for r in sorted(runs, key=lambda r: r["path"] != "pipeline")))
    by = {p: [r for r in runs if r["path"] == p] for p in paths}
    pipe, base = by["pipeline"], by["baseline"]
    others = [p for p in paths if p != "pipeline"]
    t, m = cfg.train, cfg.model
    ver = versions()
    checks = {
        "same_examples": len({r["examples_sha1"] for r in runs}) == 1,
        # real tokens do not depend on batching: epochs × Σ tokenized lengths on every path
        "same_real_tokens": len({r["metrics"]["tokens"] for r in runs}
                                | {r["tokenized_tokens"] for r in runs
                                   if r["path"] != "pipeline" and r["tokenized_tokens"] is not None}) == 1,
    }
    for r in runs:
        r["derived"] = derived(r)
    summary = {"pipeline_over_baseline": ratios(pipe, base, args.reps)}
    for p in others[1:]:
        summary[f"pipeline_over_{p}"] = ratios(pipe, by[p], args.reps)
        summary[f"{p}_over_baseline"] = ratios(by[p], base, args.reps)
    head = summary["pipeline_over_baseline"]
    summary["peak_rss_pipeline_over_baseline"] = med([r["peak_rss"] for r in pipe]) / med([r["peak_rss"] for r in base])
    summary["meets_target"] = head["tokens_per_s"] >= TARGET_RATIO
    p0 = pipe[0]
    settings = {p: by[p][0]["trainer"]["settings"] for p in paths}

    print()
    print(f"Consolidation vs plain Trainer + peft: {p0['model']} ({m.source}), quantization {m.quantization}, compute "
          f"dtype {m.compute_dtype} (baseline {args.baseline_dtype}), torch threads {p0['torch_threads']}, "
          f"seed {t.seed}; LoRA r={t.lora_r} "
          f"alpha={t.lora_alpha} dropout={t.lora_dropout} targets={t.target_modules}, lr {t.learning_rate}, "
          f"epochs {t.epochs}, batch {t.batch_size}, max_seq_len {t.max_seq_len}; replay {t.replay_policy} ratio "
          f"{t.replay_ratio}, rehearsal {t.rehearsal_count}, augment {t.augment} ×{t.augment_per_fact}; "
          f"{args.turns} new turns ({data['new']['conversations']} conversations) + {prior} prior turns; mix "
          f"{p0['counts']} = {p0['n_examples']} examples; reps {args.reps} (order per rep: {', '.join(paths)}; "
          f"then reversed); {os.cpu_count()} CPUs; load avg {loadavg_start[0]:.2f} at start, {loadavg_end[0]:.2f} at "
          f"end; " + ", ".join(f"{k} {v}" for k, v in ver.items()))
    print()
    print("Trainer settings as run: " + "; ".join(
        f"{p}: sampling {s['train_sampling_strategy']}, lr schedule {s['lr_scheduler_type']}, logging every "
        f"{s['logging_steps']} step(s)" for p, s in settings.items()))
    print()
    print("| rep | path | real tokens | padded tokens | padding waste | steps | trainer.train s | real tokens/s | "
          "real tokens/CPU-s | padded tokens/s | Σ fwd+bwd s | padded tokens/fwd+bwd-s | "
          "loop around steps ms/step | train loss | load avg start→end |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        x, d = r["metrics"], r["derived"]
        print(f"| {r['rep'] + 1} | {r['path']} | {x['tokens']:,} | {x['padded_tokens']:,} | {x['padding_waste']:.1%} "
              f"| {x['steps']} | {x['seconds']:.1f} | {d['tokens_per_s']:.1f} | {d['tokens_per_cpu_s']:.1f} | "
              f"{d['padded_tokens_per_s']:.1f} | {d['steps_s']:.1f} | {d['padded_tokens_per_step_s']:.1f} | "
              f"{d['loop_ms_per_step']:.0f} | {x['train_loss']:.4f} | "
              f"{r['loadavg_start'][0]:.2f}→{r['loadavg_end'][0]:.2f} |")
    print()
    for name, r in summary.items():
        if not isinstance(r, dict):
            continue
        label = name.replace("_over_", " / ")
        bold = "**" if name == "pipeline_over_baseline" else ""
        target = (f"; target >= {TARGET_RATIO}: {'met' if summary['meets_target'] else 'NOT met'}"
                  if name == "pipeline_over_baseline" else "")
        print(f"- {bold}{label} real tokens/s: {r['tokens_per_s']:.3f}{bold} (median of {args.reps}{target}); per "
              f"CPU-second {r['tokens_per_cpu_s']:.3f}; padded tokens/s {r['padded_tokens_per_s']:.3f}; padded tokens "
              f"per forward+backward second {r['padded_tokens_per_step_s']:.3f}")
    print("  (per CPU-second is less sensitive to other jobs on the machine; the padded-token rates count padding as "
          "work, but the cost per token still grows with batch length: see the table by padded length)")
    print(f"- checks: same examples on every path {checks['same_examples']}; same real-token count on every path and "
          f"= epochs × tokenized lengths {checks['same_real_tokens']}")
    print("- train loss is not comparable between paths whose sampling or LR schedule differ (length-grouped "
          "batches weight short Q/A examples differently from random ones)")
    print(f"- progress.json writes during the pipeline's training (fsync each, one per logged step): "
          f"{p0['progress_writes']['calls']} calls, {p0['progress_writes']['seconds']:.2f} s")
    print()
    print("Forward+backward cost of batches of similar padded length (Trainer.training_step, all reps, median):")
    print_shape_table([(p, by[p]) for p in paths])
    print("End-to-end wall time of the pipeline (consolidating the new turns + replay), by stage, per rep:")
    print()
    print("| stage | " + " | ".join(f"rep {r['rep'] + 1} s" for r in pipe) + " | median share |")
    print("|---|" + "---:|" * len(pipe) + "---:|")
    totals = [r["load_s"] + r["consolidate_s"] for r in pipe]
    rows = [("model load (load_model, pre-quantized cache)", [r["load_s"] for r in pipe])]
    rows += [(name, [r["stages"][name] for r in pipe]) for name in p0["stages"]]
    for name, values in rows:
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values)
              + f" | {med([v / tot for v, tot in zip(values, totals)]):.1%} |")
    print("| **total: model load + consolidate()** | " + " | ".join(f"**{v:.1f}**" for v in totals) + " | 100% |")
    print("| (subprocess wall incl. interpreter + imports + home copy) | "
          + " | ".join(f"{r['wall_s']:.1f}" for r in pipe) + " | |")
    print("| (load avg, 1 min, at start → end) | "
          + " | ".join(f"{r['loadavg_start'][0]:.2f}→{r['loadavg_end'][0]:.2f}" for r in pipe) + " | |")
    print()
    print("(rehearsal generates the base model's answers to the rehearsal prompts on every run here, as in a home's "
          "first consolidation; a home caches them, so later consolidations skip most of that stage)")
    print()
    rest = [r for p in others for r in by[p]]
    print("Baselines, by stage, per run:")
    print()
    print("| stage | " + " | ".join(f"{r['path']} rep {r['rep'] + 1} s" for r in rest) + " |")
    print("|---|" + "---:|" * len(rest))
    print("| model load | " + " | ".join(f"{r['load_s']:.1f}" for r in rest) + " |")
    for name in base[0]["stages"]:
        print(f"| {name} | " + " | ".join(f"{r['stages'][name]:.1f}" for r in rest) + " |")
    print("| (subprocess wall) | " + " | ".join(f"{r['wall_s']:.1f}" for r in rest) + " |")
    print()
    print("Peak memory (each path in its own subprocess; median over reps):")
    print()
    print("| path | peak RSS of the process MiB | RSS at training start MiB | peak RSS during training MiB | "
          "training peak − start MiB |")
    print("|---|---:|---:|---:|---:|")
    for name in paths:
        rs = by[name]
        start = med([r["rss_train_start"] for r in rs])
        peak_t = [r["peak_rss_train"] for r in rs if r["peak_rss_train"] is not None]
        pt = med(peak_t) if peak_t else None
        print(f"| {name} | {mib(med([r['peak_rss'] for r in rs]))} | {mib(start)} | {mib(pt)} | "
              f"{mib(pt - start) if pt is not None else '-'} |")
    print()
    print("(the pipeline process also holds the embedder, the FAISS index and SQLite; \"training\" is train_adapter "
          "for the pipeline and tokenize → attach → Trainer.train for a baseline; peak during training is VmHWM "
          "after resetting it at the start via /proc/self/clear_refs)")
    if args.json:
        meta = {"model": p0["model"], "source": m.source, "quantization": m.quantization,
                "compute_dtype": m.compute_dtype, "baseline_dtype": args.baseline_dtype,
                "torch_threads": p0["torch_threads"], "seed": t.seed,
                "train": dataclasses.asdict(t), "trainer_settings": settings, "turns": args.turns,
                "prior_turns": prior, "data": data, "reps": args.reps, "order": paths, "cpus": os.cpu_count(),
                "loadavg_start": loadavg_start, "loadavg_end": loadavg_end, "versions": ver,
                "target_ratio": TARGET_RATIO}
        print(json.dumps({"meta": meta, "runs": runs, "summary": summary, "checks": checks}))


if __name__ == "__main__":
    main()
