"""The consolidation job: move what users said into the weights without forgetting. Reads top to bottom:
lock → read new turns into the knowledge ledger → select → build the mix (rebuild: every current fact +
rehearsal, on a fresh LoRA; continue: new turns + replay + rehearsal, on the served adapter) → train → save the
candidate version → gate → promote → mark the turns and facts learned. One run at a time (a file lock); a killed
run leaves only a staging folder that the next run removes, so the served adapter is never touched by a run that did
not finish."""
from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from chatbot.core.config import Config, DecodingConfig, parse_kinds
from chatbot.core.fsio import write_json_atomic
from chatbot.core.lock import run_lock
from chatbot.core.paths import Paths
from chatbot.core.registry import BASE, Registry, Version, VersionStatus
from chatbot.core.runlog import RunLog, Stage
from chatbot.learning.distill import Distill
from chatbot.learning.ewc import EWC
from chatbot.learning.extract import make_extractor
from chatbot.learning.ledger import sync
from chatbot.learning.mix import Mix, build_ledger_mix, build_mix
from chatbot.learning.rehearsal import cache_name, rehearsal_examples
from chatbot.learning.replay import make_policy
from chatbot.learning.train import make_4bit_trainable_on_cpu, train_adapter
from chatbot.memory.buffer import open_buffer
from chatbot.memory.embed import Embedder
from chatbot.memory.facts import FactStore
from chatbot.memory.served import held_facts, held_turns, serve
from chatbot.privacy.accounts import AccountError, Accounts, users_file
from chatbot.privacy.forget import forgotten_among
from chatbot.privacy.pii import scrubber
from chatbot.serving.generate import Generator
from chatbot.serving.model import LoadedModel, load_model

log = logging.getLogger(__name__)


class Gate(Protocol):
    """Judges a candidate: (accept?, reasons). `report` receives progress dicts for the run's progress file.
    The callers hand the gate in (the CLI builds the probe gate of chatbot.evaluation.gate); None accepts."""

    def __call__(self, candidate: Version, report: Callable[[dict], None]) -> tuple[bool, list[str]]: ...


class RunStatus(StrEnum):
    NOOP = "noop"  # nothing new to learn
    DRY_RUN = "dry-run"
    PROMOTED = "promoted"
    CANDIDATE = "candidate"  # accepted by the gate, not auto-promoted
    REJECTED = "rejected"  # by the gate, or withdrawn because its data was forgotten meanwhile
    WORKER = "worker"  # a training rank > 0 under `accelerate launch`


@dataclass
class RunResult:
    status: RunStatus
    message: str
    version: str | None = None
    counts: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    run_dir: str | None = None
    preview: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _is_main_process() -> bool:
    """Under `accelerate launch`, only rank 0 touches the registry and the database."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def consolidate(home: Path, config: Config, *, gate: Gate | None, dry_run: bool = False,
                loaded: LoadedModel | None = None, embedder: Embedder | None = None,
                show_progress: bool = True) -> RunResult:
    """One consolidation run under the lock. `gate` is required (None = accept every candidate) so no caller
    forgets the probes by accident."""
    home = Path(home)
    paths = Paths(home)
    lock = run_lock(home) if _is_main_process() else contextlib.nullcontext()
    with lock:
        run = RunLog(paths.runs)
        try:
            result = _consolidate(paths, config, run, dry_run, loaded, embedder, gate, show_progress)
        except BaseException as e:
            log.exception("consolidation failed")
            run.progress({"stage": Stage.FAILED, "error": f"{type(e).__name__}: {e}"})
            raise
        finally:
            run.close()
        run.progress({"stage": Stage.DONE, "status": result.status, "message": result.message,
                      "version": result.version})
        result.run_dir = str(run.dir)
        return result


def _consolidate(paths: Paths, config: Config, run: RunLog, dry_run: bool, loaded: LoadedModel | None,
                 embedder: Embedder | None, gate: Gate | None, show_progress: bool) -> RunResult:
    t = config.train
    run.progress({"stage": Stage.SELECTING})
    buffer = open_buffer(paths, config.memory.embedder, config.buffer.index_kind, config.buffer.index_save_every,
                         embedder)
    store = buffer.store
    facts = FactStore(paths.db)
    registry = Registry(paths.adapters)
    rebuild = t.strategy == "rebuild"
    try:
        if registry.clean_staging():
            log.warning("removed the half-written output of an earlier run that did not finish")
        n_new = len(store.learnable_turns(consolidated=False))
        changed = rebuild and _ledger_changed(facts, registry)
        if n_new < config.consolidate.min_new_turns and not changed:
            msg = f"nothing to consolidate: {n_new} new learnable turn(s) (need {config.consolidate.min_new_turns})"
            log.info(msg)
            return RunResult(RunStatus.NOOP, msg)

        policy = make_policy(t.replay_policy, buffer.index) if t.replay_ratio > 0 and not rebuild else None
        if dry_run:
            if t.extractor != "model":  # a model extractor needs the model: a dry run does not load it
                sync(facts, make_extractor(t.extractor, None))
            rehearsal = _rehearsal(paths, config, None, dry_run=True)
            mix = _mix(store, paths, config, policy, rehearsal)
            return RunResult(RunStatus.DRY_RUN, f"would train on {len(mix.examples)} examples from "
                             f"{mix.n_new} new turns" + _facts_note(mix) + _guards_note(mix), counts=mix.counts,
                             preview=mix.preview())

        run.progress({"stage": Stage.LOADING})
        m = config.model
        loaded = loaded or load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
        run.progress({"stage": Stage.EXTRACTING})
        sync(facts, _extractor(config, loaded, paths))
        make_4bit_trainable_on_cpu(loaded.model)  # before rehearsal generation runs it in eval mode (see there)
        run.progress({"stage": Stage.REHEARSAL})
        rehearsal = _rehearsal(paths, config, loaded, dry_run=False)
        mix = _mix(store, paths, config, policy, rehearsal)
        if not rebuild:  # the ledger facts of the turns it learns: what the served version holds (learned_in)
            learned = set(mix.new_turn_ids)
            mix.fact_ids = mix.new_fact_ids = [f.id for f in facts.current() if f.turn_id in learned]
        log.info("mix: %s (replay pool %d)%s%s", mix.counts, mix.replay_pool_size, _facts_note(mix),
                 _guards_note(mix))
        if not mix.examples:  # rebuild, no fact stated yet and rehearsal off
            return RunResult(RunStatus.NOOP, f"nothing to learn: the {mix.n_new} new turn(s) state no fact",
                             counts=mix.counts)

        served = registry.current_path()
        previous = None if rebuild else served
        hooks = []
        if t.ewc_lambda > 0:
            hooks.append(EWC(t.ewc_lambda))
        if t.distill_weight > 0:
            hooks.append(Distill(t.distill_weight))
        # the hooks' data: rehearsal (rebuild: "replay" are the facts themselves), plus replayed turns (continue)
        replay_part = [e for e in mix.examples if e.source == "rehearsal" or (e.source == "replay" and not rebuild)]
        run.progress({"stage": Stage.TRAINING, "step": 0, "max_steps": None})
        result = train_adapter(loaded.model, loaded.tokenizer, mix.examples, t, run.dir, previous=previous,
                               quantized=m.quantization != "none", hooks=hooks,
                               hook_examples=replay_part or None, report=run.progress, show_progress=show_progress)
        log.info("trained: %s", result.metrics)
        if not _is_main_process():
            return RunResult(RunStatus.WORKER, "training rank done; rank 0 saves the version")

        run.progress({"stage": Stage.SAVING})
        staging = registry.staging()
        result.model.save_pretrained(str(staging))
        write_json_atomic(staging / "config.json", _resolved_config(config, loaded, previous))
        manifest = {**mix.manifest(), "base_model": loaded.name,
                    "continued_from": previous.name if previous else BASE}
        if rebuild:  # every turn the served version held stays held: this version was trained on all their facts
            held = set(held_turns(registry)) | set(mix.new_turn_ids)
            manifest["held_turn_ids"] = sorted(held & store.existing_turn_ids(held))
            manifest["rebuilt_after"] = served.name if served else BASE
        write_json_atomic(staging / "manifest.json", manifest)
        write_json_atomic(staging / "metrics.json", {**result.metrics, "run": run.dir.name})
        version = registry.commit(staging)
        log.info("candidate %s written", version.name)
        gone = forgotten_among(store, version.manifest)
        if gone:  # `chatbot forget` ran while this trained: the candidate must not carry those turns
            registry.withdraw(version.name, f"{gone} turn(s) of its data were forgotten while it trained")
            return RunResult(RunStatus.REJECTED, f"{version.name} withdrawn: {gone} turn(s) of its data were forgotten "
                             "during the run; run the consolidation again", version.name, mix.counts, result.metrics)

        run.progress({"stage": Stage.GATE, "version": version.name})
        accepted, reasons = (True, []) if gate is None else gate(
            version, lambda info: run.progress({"candidate": version.name, **info}))
        if not accepted:
            registry.set_status(version.name, VersionStatus.REJECTED, reasons)
            return RunResult(RunStatus.REJECTED, f"{version.name} rejected: {'; '.join(reasons)}", version.name,
                             mix.counts, result.metrics)
        if not config.consolidate.auto_promote:
            return RunResult(RunStatus.CANDIDATE, f"{version.name} is a candidate; promote it with `chatbot promote "
                             f"{version.name}`", version.name, mix.counts, result.metrics)
        serve(store, registry, version.name)
        msg = (f"{version.name} promoted: learned {mix.n_new} new turn(s) from {len(mix.examples)} examples"
               + _facts_note(mix))
        log.info(msg)
        return RunResult(RunStatus.PROMOTED, msg, version.name, mix.counts, result.metrics)
    finally:
        buffer.close()
        facts.close()
        store.close()


def _ledger_changed(facts: FactStore, registry: Registry) -> bool:
    """A rebuild has work without new turns when a fact was corrected or forgotten since the served version."""
    return {f.id for f in facts.current()} != set(held_facts(registry))


def _extractor(config: Config, loaded: LoadedModel, paths: Paths):
    """train.extractor with its model: train.extractor_model (a teacher), or the served model."""
    t, m = config.train, config.model
    if t.extractor != "rules" and t.extractor_model:
        loaded = load_model(t.extractor_model, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
    return make_extractor(t.extractor, loaded)


def _mix(store, paths: Paths, config: Config, policy, rehearsal) -> Mix:
    """The run's training mix by train.strategy (rebuild reads the ledger as it is: sync it first)."""
    t = config.train
    scrub = None
    if config.privacy.scrub_pii:
        scrub = scrubber(parse_kinds(config.privacy.scrub_kinds), Counter())
    cap = _user_share_cap(paths, config)
    if t.strategy == "rebuild":
        facts = FactStore(paths.db)
        try:
            return build_ledger_mix(store, facts.current(), set(held_facts(Registry(paths.adapters))),
                                    per_fact=t.augment_per_fact, rehearsal=rehearsal, seed=t.seed,
                                    max_user_share=cap, scrub=scrub)
        finally:
            facts.close()
    return build_mix(store, augment=t.augment, per_fact=t.augment_per_fact, replay_ratio=t.replay_ratio,
                     replay_select=policy, rehearsal=rehearsal, seed=t.seed, max_user_share=cap, scrub=scrub)


def _facts_note(mix: Mix) -> str:
    if mix.strategy != "rebuild":
        return ""
    return f"; {len(mix.fact_ids)} fact(s) in the ledger, {len(mix.new_fact_ids)} of them new"


def _user_share_cap(paths: Paths, config: Config) -> float:
    """The poisoning guard protects users from each other, so it applies when accounts exist; in single-user mode
    every turn comes from the one operator (imports included) and nothing is capped."""
    try:
        multi_user = Accounts(users_file(paths.home, config.serve.users_file)).enabled
    except AccountError:
        multi_user = True  # an unreadable users file: keep the guard on
    return config.train.max_user_share if multi_user else 1.0


def _guards_note(mix: Mix) -> str:
    """What the poisoning cap and the PII scrubber changed, for the dry-run and the run log."""
    parts = []
    if mix.capped:
        parts.append("user share cap deferred " + ", ".join(f"{n} example(s) of {u!r}" for u, n in
                                                            sorted(mix.capped.items()))
                     + f" ({len(mix.deferred_turn_ids)} turn(s) stay new for a later run)")
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
    generator = Generator(loaded, DecodingConfig(**decoding), config.model.max_context)

    def answer(prompt: str) -> str:
        return generator.generate(generator.build_prompt([{"role": "user", "content": prompt}]))

    cache = paths.rehearsal / cache_name(loaded.name, decoding)
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
