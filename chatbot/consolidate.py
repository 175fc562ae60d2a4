"""The consolidation job: move what users said into the weights without forgetting. Reads top to bottom:
lock → select new data → build the mix (new + replay + rehearsal) → train → save the candidate version →
gate → promote → mark the turns consolidated. One run at a time (a file lock); a killed run leaves only a
staging folder that the next run removes, so the served adapter is never touched by a run that did not finish."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from .config import Config
from .embed import Embedder
from .forget import forgotten_among
from .generate import Generator
from .mix import Mix, build_mix
from .model import LoadedModel, load_model
from .registry import BASE, Registry, Version, write_json_atomic
from .rehearsal import cache_name, rehearsal_examples
from .replay import make_policy
from .runtime import Paths, open_runtime

log = logging.getLogger(__name__)

Gate = Callable[[Version], tuple[bool, list[str]]]  # candidate -> (accept?, reasons)


class AlreadyRunning(RuntimeError):
    """Another consolidation holds the lock."""


@dataclass
class RunResult:
    status: str  # "noop", "dry-run", "promoted", "candidate" (not auto-promoted), "rejected", "worker" (rank > 0)
    message: str
    version: str | None = None
    counts: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    run_dir: str | None = None
    preview: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _lock_paths(home: Path) -> tuple[Path, Path]:
    return home / "consolidate.lock", home / "consolidate.lock.json"


@contextlib.contextmanager
def run_lock(home: Path) -> Iterator[None]:
    """Hold the consolidation lock or raise AlreadyRunning saying who holds it. The kernel releases the lock
    when the holder dies (fcntl), so a killed run never blocks the next one."""
    lock_file, info_file = _lock_paths(home)
    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        info = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(info_file.read_text())
        since = time.strftime("%H:%M:%S", time.localtime(info["started"])) if "started" in info else "?"
        raise AlreadyRunning(
            f"a consolidation is already running (pid {info.get('pid', '?')}, started {since}); "
            "wait for it to finish (see `chatbot versions`)"
        ) from None
    try:
        write_json_atomic(info_file, {"pid": os.getpid(), "started": time.time()})
        yield
    finally:
        with contextlib.suppress(OSError):
            info_file.unlink()
        lock.release()


def is_running(home: Path) -> bool:
    lock = FileLock(str(_lock_paths(Path(home))[0]), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


class _RunLog:
    """Per-run folder (HOME/runs/<time>/) with a log file and an atomically updated progress.json."""

    def __init__(self, runs: Path):
        self.dir = runs / time.strftime("%Y%m%d-%H%M%S")
        while self.dir.exists():
            self.dir = self.dir.with_name(self.dir.name + "-1")
        self.dir.mkdir(parents=True)
        self.started = time.time()
        self.handler = logging.FileHandler(self.dir / "consolidate.log", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("chatbot").addHandler(self.handler)
        if logging.getLogger("chatbot").level == logging.NOTSET or logging.getLogger("chatbot").level > logging.INFO:
            logging.getLogger("chatbot").setLevel(logging.INFO)

    def progress(self, info: dict) -> None:
        write_json_atomic(self.dir / "progress.json",
                          {"pid": os.getpid(), "started": self.started, "updated": time.time(), **info})

    def close(self) -> None:
        logging.getLogger("chatbot").removeHandler(self.handler)
        self.handler.close()


def _is_main_process() -> bool:
    """Under `accelerate launch`, only rank 0 touches the registry and the database."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def consolidate(home: Path, config: Config, *, dry_run: bool = False, loaded: LoadedModel | None = None,
                embedder: Embedder | None = None, gate: Gate | None = None, show_progress: bool = True) -> RunResult:
    home = Path(home)
    paths = Paths(home)
    lock = run_lock(home) if _is_main_process() else contextlib.nullcontext()
    with lock:
        run = _RunLog(paths.runs)
        try:
            result = _consolidate(paths, config, run, dry_run, loaded, embedder, gate, show_progress)
        except BaseException as e:
            log.exception("consolidation failed")
            run.progress({"stage": "failed", "error": f"{type(e).__name__}: {e}"})
            raise
        finally:
            run.close()
        run.progress({"stage": "done", "status": result.status, "message": result.message, "version": result.version})
        result.run_dir = str(run.dir)
        return result


def _consolidate(paths: Paths, config: Config, run: _RunLog, dry_run: bool, loaded: LoadedModel | None,
                 embedder: Embedder | None, gate: Gate | None, show_progress: bool) -> RunResult:
    t = config.train
    run.progress({"stage": "selecting"})
    rt = open_runtime(paths.home, config, with_model=False, embedder=embedder)
    registry = Registry(paths.adapters)
    try:
        if registry.clean_staging():
            log.warning("removed the half-written output of an earlier run that did not finish")
        n_new = len(rt.store.learnable_turns(consolidated=False))
        if n_new < config.consolidate.min_new_turns:
            msg = f"nothing to consolidate: {n_new} new learnable turn(s) (need {config.consolidate.min_new_turns})"
            log.info(msg)
            return RunResult("noop", msg)

        policy = make_policy(t.replay_policy, rt.buffer.index) if t.replay_ratio > 0 else None
        if dry_run:
            rehearsal = _rehearsal(paths, config, None, dry_run=True)
            mix = _mix(rt, config, policy, rehearsal)
            return RunResult("dry-run", f"would train on {len(mix.examples)} examples from {mix.n_new} new turns"
                             + _guards_note(mix), counts=mix.counts, preview=mix.preview())

        run.progress({"stage": "loading model"})
        m = config.model
        loaded = loaded or load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
        from .train import make_4bit_trainable_on_cpu

        make_4bit_trainable_on_cpu(loaded.model)  # before rehearsal generation runs it in eval mode (see there)
        run.progress({"stage": "rehearsal"})
        rehearsal = _rehearsal(paths, config, loaded, dry_run=False)
        mix = _mix(rt, config, policy, rehearsal)
        log.info("mix: %s (replay pool %d)%s", mix.counts, mix.replay_pool_size, _guards_note(mix))

        previous = registry.current_path()
        hooks = []
        if t.ewc_lambda > 0:
            from .ewc import EWC

            hooks.append(EWC(t.ewc_lambda))
        replay_part = [e for e in mix.examples if e.source in ("replay", "rehearsal")]
        from .train import train_adapter

        run.progress({"stage": "training", "step": 0, "max_steps": None})
        result = train_adapter(loaded.model, loaded.tokenizer, mix.examples, t, run.dir, previous=previous,
                               quantized=m.quantization != "none", hooks=hooks,
                               hook_examples=replay_part or None, report=run.progress, show_progress=show_progress)
        log.info("trained: %s", result.metrics)
        if not _is_main_process():
            return RunResult("worker", "training rank done; rank 0 saves the version")

        run.progress({"stage": "saving"})
        staging = registry.staging()
        result.model.save_pretrained(str(staging))
        write_json_atomic(staging / "config.json", _resolved_config(config, loaded, previous))
        write_json_atomic(staging / "manifest.json", {**mix.manifest(), "base_model": loaded.name,
                                                      "continued_from": previous.name if previous else BASE})
        write_json_atomic(staging / "metrics.json", {**result.metrics, "run": run.dir.name})
        version = registry.commit(staging)
        log.info("candidate %s written", version.name)
        gone = forgotten_among(rt.store, version.manifest)
        if gone:  # `chatbot forget` ran while this trained: the candidate must not carry those turns
            registry.withdraw(version.name, f"{gone} turn(s) of its data were forgotten while it trained")
            return RunResult("rejected", f"{version.name} withdrawn: {gone} turn(s) of its data were forgotten "
                             "during the run; run the consolidation again", version.name, mix.counts, result.metrics)

        run.progress({"stage": "gate", "version": version.name})
        # The default gate (probes on the served stack, thresholds of [probes]); tests pass their own.
        if gate is None and config.probes.gate:
            from .gate import ProbeGate

            gate = ProbeGate(paths.home, config, report=lambda info: run.progress({"candidate": version.name, **info}))
        accepted, reasons = gate(version) if gate else (True, [])
        if not accepted:
            registry.set_status(version.name, "rejected", reasons)
            return RunResult("rejected", f"{version.name} rejected: {'; '.join(reasons)}", version.name,
                             mix.counts, result.metrics)
        if not config.consolidate.auto_promote:
            return RunResult("candidate", f"{version.name} is a candidate; promote it with `chatbot promote "
                             f"{version.name}`", version.name, mix.counts, result.metrics)
        registry.promote(version.name)
        marked = rt.store.mark_consolidated(mix.new_turn_ids, version.name)
        msg = f"{version.name} promoted: learned {marked} new turn(s) from {len(mix.examples)} examples"
        log.info(msg)
        return RunResult("promoted", msg, version.name, mix.counts, result.metrics)
    finally:
        rt.close()


def _mix(rt, config: Config, policy, rehearsal) -> Mix:
    t = config.train
    scrub = None
    if config.privacy.scrub_pii:
        from collections import Counter

        from .pii import parse_kinds, scrubber

        scrub = scrubber(parse_kinds(config.privacy.scrub_kinds), Counter())
    return build_mix(rt.store, augment=t.augment, per_fact=t.augment_per_fact, replay_ratio=t.replay_ratio,
                     replay_select=policy, rehearsal=rehearsal, seed=t.seed, max_user_share=_user_share_cap(rt, config),
                     scrub=scrub)


def _user_share_cap(rt, config: Config) -> float:
    """The poisoning guard protects users from each other, so it applies when accounts exist; in single-user mode
    every turn comes from the one operator (imports included) and nothing is capped."""
    from .accounts import AccountError, Accounts, users_file

    try:
        multi_user = Accounts(users_file(rt.paths.home, config.serve.users_file)).enabled
    except AccountError:
        multi_user = True  # an unreadable users file: keep the guard on
    return config.train.max_user_share if multi_user else 1.0


def _guards_note(mix: Mix) -> str:
    """What the poisoning cap and the PII scrubber changed, for the dry-run and the run log."""
    parts = []
    if mix.capped:
        parts.append("user share cap dropped " + ", ".join(f"{n} of {u!r}" for u, n in sorted(mix.capped.items())))
    if mix.scrubbed:
        parts.append("PII scrubbed: " + ", ".join(f"{n} {k}" for k, n in sorted(mix.scrubbed.items())))
    return "; " + "; ".join(parts) if parts else ""


def _rehearsal(paths: Paths, config: Config, loaded: LoadedModel | None, dry_run: bool):
    t = config.train
    if t.rehearsal_count <= 0:
        return []
    decoding = {**config.decoding.__dict__, "max_new_tokens": min(config.decoding.max_new_tokens, 128)}
    if dry_run:
        return rehearsal_examples(t.rehearsal_count, t.seed, None,
                                  lambda prompt: "(the base model's answer, generated when training)")
    from .config import DecodingConfig

    generator = Generator(loaded, DecodingConfig(**decoding), config.model.max_context)

    def answer(prompt: str) -> str:
        return generator.generate(generator.build_prompt([{"role": "user", "content": prompt}]))

    cache = paths.home / "rehearsal" / cache_name(loaded.name, decoding)
    return rehearsal_examples(t.rehearsal_count, t.seed, cache, answer)


def _resolved_config(config: Config, loaded: LoadedModel, previous: Path | None) -> dict:
    import bitsandbytes
    import peft
    import torch
    import transformers

    return {
        "config": config.to_dict(),
        "base_model": {"name": loaded.name, "path": loaded.path, "quantization": loaded.quantization},
        "continued_from": previous.name if previous else BASE,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "bitsandbytes": bitsandbytes.__version__},
    }
