"""The consolidation job: move what users said into the weights without forgetting, each user's into that
user's own adapter line (chatbot.core.lines). Reads top to bottom: lock → the users with new data → load the model
and read new turns into the knowledge ledger (once) → per user: build the mix (rebuild: every current fact +
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

from chatbot.core.config import Config, DecodingConfig, TrainConfig, parse_kinds
from chatbot.core.fsio import write_json_atomic
from chatbot.core.lines import AdapterLines
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
from chatbot.memory.served import held_facts, held_turns, remark_all, serve
from chatbot.privacy.forget import forgotten_among
from chatbot.privacy.pii import scrubber
from chatbot.serving.engine import open_engine
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
    user: str | None = None  # whose adapter line
    per_user: list[RunResult] = field(default_factory=list)  # a consolidation of several users: each one's result

    def to_dict(self) -> dict:
        return {**self.__dict__, "per_user": [r.to_dict() for r in self.per_user]}


def _is_main_process() -> bool:
    """Under `accelerate launch`, only rank 0 touches the registry and the database."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def consolidate(home: Path, config: Config, *, gate: Gate | None, dry_run: bool = False,
                loaded: LoadedModel | None = None, embedder: Embedder | None = None,
                show_progress: bool = True, user: str | None = None) -> RunResult:
    """One consolidation under the lock: `user`'s adapter line, or (None) every user with new data, one after
    another, each through its own gate. `gate` is required (None = accept every candidate) so no caller forgets
    the probes by accident. With several users the result lists each user's result in `per_user`."""
    home = Path(home)
    paths = Paths(home)
    lock = run_lock(home) if _is_main_process() else contextlib.nullcontext()
    with lock:
        job = _Job(paths, config, loaded, embedder, show_progress)
        try:
            users = job.users_with_work(user)
            if not users:
                msg = (f"nothing to consolidate: {job.n_new(user)} new learnable turn(s) "
                       f"(need {config.consolidate.min_new_turns})" + (f" for user {user!r}" if user else "")
                       + ("; no fact stated, corrected, forgotten or shared since the served versions"
                          if config.train.strategy == "rebuild" else ""))
                log.info(msg)
                return RunResult(RunStatus.NOOP, msg, user=user)
            results = [job.run(u, gate, dry_run) for u in users]
        finally:
            job.close()
        return results[0] if len(results) == 1 else _combined(results)


def _combined(results: list[RunResult]) -> RunResult:
    """Several users' runs as one result: rejected if any was (the CLI's exit status), else promoted if any was."""
    statuses = {r.status for r in results}
    status = next((s for s in (RunStatus.REJECTED, RunStatus.PROMOTED, RunStatus.CANDIDATE, RunStatus.DRY_RUN,
                               RunStatus.WORKER) if s in statuses), RunStatus.NOOP)
    message = "\n".join(f"{r.user}: {r.message}" for r in results)
    return RunResult(status, message, per_user=results)


class _Job:
    """What the users' runs of one consolidation share: the database, the lines, the loaded model, the ledger
    read once, the rehearsal answers."""

    def __init__(self, paths: Paths, config: Config, loaded: LoadedModel | None, embedder: Embedder | None,
                 show_progress: bool):
        self.paths, self.config, self.loaded, self.show_progress = paths, config, loaded, show_progress
        self.buffer = open_buffer(paths, config.memory.embedder, config.buffer.index_kind,
                                  config.buffer.index_save_every, embedder)
        self.store = self.buffer.store
        self.facts = FactStore(paths.db)
        # (rank > 0 of `accelerate launch` reads the lines only: rank 0 moves a legacy layout, if any)
        self.lines = AdapterLines(paths.adapters, config.serve.default_user if _is_main_process() else None)
        self.rehearsal: list | None = None
        self._synced = False
        if _is_main_process():  # under `accelerate launch`, only rank 0 writes the registry and the database
            for registry in self.lines.lines():
                if registry.clean_staging():
                    log.warning("removed the half-written output of an earlier run that did not finish")
            remark_all(self.store, self.lines)  # marks follow each user's served line (after an upgrade too)

    def close(self) -> None:
        self.buffer.close()
        self.facts.close()
        self.store.close()

    def n_new(self, user: str | None) -> int:
        return len(self.store.learnable_turns(consolidated=False, user=user))

    def users_with_work(self, user: str | None) -> list[str]:
        """`user` if it has work, else every user with work: enough new learnable turns (continue); with rebuild,
        which trains facts, enough turns no extractor has read yet, or a changed ledger (a fact stated, corrected,
        forgotten or shared since the user's served version). Turns read and found to state no fact are no work."""
        need = self.config.consolidate.min_new_turns
        if self.config.train.strategy == "rebuild":
            new = Counter(u for u, _, _ in self.facts.unread_turns())
        else:
            new = Counter(u for u, _ in self.store.learnable_turns(consolidated=False, user=user))
        candidates = [user] if user else sorted(set(self.store.user_names()) | set(self.lines.users()))
        return [u for u in candidates if new[u] >= need or (self.config.train.strategy == "rebuild" and
                                                               _ledger_changed(self.facts, self.lines.line(u)))]

    def run(self, user: str, gate: Gate | None, dry_run: bool) -> RunResult:
        """One user's run, logged in its own run folder."""
        run = RunLog(self.paths.runs)
        run.context = {"user": user}
        try:
            run.progress({"stage": Stage.SELECTING})
            result = self._run(user, run, gate, dry_run)
        except BaseException as e:
            log.exception("consolidation of user %r failed", user)
            run.progress({"stage": Stage.FAILED, "error": f"{type(e).__name__}: {e}"})
            raise
        finally:
            run.close()
        run.progress({"stage": Stage.DONE, "status": result.status, "message": result.message,
                      "version": result.version})
        result.run_dir, result.user = str(run.dir), user
        return result

    def _prepare(self, run: RunLog) -> LoadedModel:
        """Load the model, read new turns into the ledger and answer the rehearsal prompts (once per job)."""
        if self.loaded is None:
            run.progress({"stage": Stage.LOADING})
            m = self.config.model
            self.loaded = load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or self.paths.models)
        if not self._synced:
            run.progress({"stage": Stage.EXTRACTING})
            sync(self.facts, _extractor(self.config, self.loaded, self.paths))
            self._synced = True
        make_4bit_trainable_on_cpu(self.loaded.model)  # before rehearsal generation runs it in eval mode (see there)
        if self.rehearsal is None:
            run.progress({"stage": Stage.REHEARSAL})
            self.rehearsal = _rehearsal(self.paths, self.config, self.loaded, dry_run=False)
        return self.loaded

    def _run(self, user: str, run: RunLog, gate: Gate | None, dry_run: bool) -> RunResult:
        config, store, facts, t = self.config, self.store, self.facts, self.config.train
        registry = self.lines.line(user)
        rebuild = t.strategy == "rebuild"
        policy = make_policy(t.replay_policy, self.buffer.index) if t.replay_ratio > 0 and not rebuild else None
        if dry_run:
            if t.extractor != "model" and not self._synced:  # a model extractor needs the model: not loaded here
                sync(facts, make_extractor(t.extractor, None))
                self._synced = True
            rehearsal = _rehearsal(self.paths, config, None, dry_run=True)
            mix = _mix(store, facts, registry, config, policy, rehearsal)
            return RunResult(RunStatus.DRY_RUN, f"would train on {len(_trained(mix, t))} examples from "
                             f"{mix.n_new} new turns" + _distilled_note(mix, t) + _facts_note(mix)
                             + _guards_note(mix), counts=mix.counts,
                             preview=mix.preview())

        loaded = self._prepare(run)
        mix = _mix(store, facts, registry, config, policy, self.rehearsal)
        if not rebuild:  # the ledger facts of the turns it learns: what the served version holds (learned_in)
            learned = set(mix.new_turn_ids)
            mix.fact_ids = mix.new_fact_ids = [f.id for f in facts.current(user) if f.turn_id in learned]
        log.info("user %r: mix %s (replay pool %d)%s%s", user, mix.counts, mix.replay_pool_size, _facts_note(mix),
                 _guards_note(mix))
        if rebuild and not mix.fact_ids:
            return self._nothing_to_learn(registry, mix)
        trained = _trained(mix, t)
        if not trained:  # continue, with nothing trainable in the new turns (rehearsal off or distilled only)
            return RunResult(RunStatus.NOOP, "nothing to learn in the new turns", counts=mix.counts)

        served = registry.current_path()
        previous = None if rebuild else served
        # the hooks' data: rehearsal (rebuild: "replay" are the facts themselves), plus replayed turns (continue)
        replay_part = [e for e in mix.examples if e.source == "rehearsal" or (e.source == "replay" and not rebuild)]
        hooks = _hooks(t, replay_part)
        run.progress({"stage": Stage.TRAINING, "step": 0, "max_steps": None})
        m = config.model
        result = train_adapter(loaded.model, loaded.tokenizer, trained, t, run.dir, previous=previous,
                               quantized=m.quantization != "none", hooks=hooks,
                               hook_examples=replay_part, report=run.progress,
                               show_progress=self.show_progress)
        log.info("trained: %s", result.metrics)
        if not _is_main_process():
            return RunResult(RunStatus.WORKER, "training rank done; rank 0 saves the version")
        try:
            return self._save_and_judge(user, registry, run, gate, mix, result, previous, served)
        finally:
            result.model.unload()  # the LoRA layers out of the shared model: the next user's run starts clean

    def _nothing_to_learn(self, registry: Registry, mix: Mix) -> RunResult:
        """Rebuild with no current fact: the exact adapter of an empty ledger is the base itself."""
        if registry.current() != BASE:
            serve(self.store, registry, BASE)
            return RunResult(RunStatus.PROMOTED, "no fact left to learn (forgotten or corrected away): serving the "
                             "base model", BASE, mix.counts)
        return RunResult(RunStatus.NOOP, f"nothing to learn: the {mix.n_new} new turn(s) state no fact",
                         counts=mix.counts)

    def _save_and_judge(self, user: str, registry: Registry, run: RunLog, gate: Gate | None, mix: Mix, result,
                        previous: Path | None, served: Path | None) -> RunResult:
        config, store, loaded = self.config, self.store, self.loaded
        run.progress({"stage": Stage.SAVING})
        staging = registry.staging()
        result.model.save_pretrained(str(staging))
        write_json_atomic(staging / "config.json", _resolved_config(config, loaded, previous))
        manifest = {**mix.manifest(), "base_model": loaded.name,
                    "continued_from": previous.name if previous else BASE}
        if mix.strategy == "rebuild":  # every turn the served version held stays held: trained on all their facts
            held = set(held_turns(registry)) | set(mix.new_turn_ids)
            manifest["held_turn_ids"] = sorted(held & store.existing_turn_ids(held))
            manifest["rebuilt_after"] = served.name if served else BASE
        write_json_atomic(staging / "manifest.json", manifest)
        write_json_atomic(staging / "metrics.json", {**result.metrics, "run": run.dir.name})
        version = registry.commit(staging)
        log.info("candidate %s of user %r written", version.name, user)
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
        msg = (f"{version.name} promoted: learned {mix.n_new} new turn(s) from "
               f"{result.metrics['examples']} examples" + _distilled_note(mix, config.train) + _facts_note(mix))
        log.info(msg)
        return RunResult(RunStatus.PROMOTED, msg, version.name, mix.counts, result.metrics)


def _ledger_changed(facts: FactStore, registry: Registry) -> bool:
    """A rebuild has work without new turns when one of the user's facts (or a shared one) was corrected,
    forgotten or shared since the user's served version."""
    return {f.id for f in facts.current_for(registry.owner)} != set(held_facts(registry))


def _extractor(config: Config, loaded: LoadedModel, paths: Paths):
    """train.extractor with its model: train.extractor_model (a teacher), or the served model."""
    t, m = config.train, config.model
    if t.extractor != "rules" and t.extractor_model:
        loaded = load_model(t.extractor_model, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
    return make_extractor(t.extractor, loaded)


def _mix(store, facts: FactStore, registry: Registry, config: Config, policy, rehearsal) -> Mix:
    """`registry.owner`'s training mix by train.strategy (rebuild reads the ledger as it is: sync it first)."""
    t = config.train
    scrub = None
    if config.privacy.scrub_pii:
        scrub = scrubber(parse_kinds(config.privacy.scrub_kinds), Counter())
    if t.strategy == "rebuild":
        return build_ledger_mix(store, facts.current_for(registry.owner), set(held_facts(registry)),
                                per_fact=t.augment_per_fact, rehearsal=rehearsal, seed=t.seed, user=registry.owner,
                                scrub=scrub)
    return build_mix(store, augment=t.augment, per_fact=t.augment_per_fact, replay_ratio=t.replay_ratio,
                     replay_select=policy, rehearsal=rehearsal, seed=t.seed, user=registry.owner, scrub=scrub)


def _trained(mix: Mix, t: TrainConfig) -> list:
    """The examples trained as SFT targets: the mix, less the rehearsal when it feeds the distillation only."""
    if t.distill_weight > 0 and not t.rehearsal_sft:
        return [e for e in mix.examples if e.source != "rehearsal"]
    return mix.examples


def _hooks(t: TrainConfig, anchors: list) -> list:
    """The forgetting mitigations that train beside the SFT loss: EWC and distillation to the base, both anchored
    on what the model already knew (rehearsal answers, replayed turns). Without anchors (train.rehearsal_count = 0
    and nothing replayed) they are off: distilling towards the base on the new facts themselves would pull every
    step back from learning them (measured: a training loss 3x higher, and twice the compute)."""
    hooks = []
    if t.ewc_lambda > 0:
        hooks.append(EWC(t.ewc_lambda))
    if t.distill_weight > 0:
        hooks.append(Distill(t.distill_weight, t.distill_batch_size, in_batch=t.distill_in_batch))
    if hooks and not anchors:
        names = " and ".join(h.name for h in hooks)
        log.info("%s off for this run: no rehearsal or replayed examples to anchor on", names)
        return []
    return hooks


def _distilled_note(mix: Mix, t: TrainConfig) -> str:
    n = mix.counts.get("rehearsal", 0) if t.distill_weight > 0 else 0
    return f" (+ distillation to the base on {n} rehearsal answers)" if n else ""


def _facts_note(mix: Mix) -> str:
    if mix.strategy != "rebuild":
        return ""
    return f"; {len(mix.fact_ids)} fact(s) in the ledger, {len(mix.new_fact_ids)} of them new"


def _guards_note(mix: Mix) -> str:
    """What the PII scrubber changed, for the dry-run and the run log."""
    parts = []
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
                                  lambda prompts: ["(the base model's answer, generated when training)"] * len(prompts))
    # The base's answers through the served engine (what people are served is what is rehearsed), in batches
    engine = open_engine(config, loaded, decoding=DecodingConfig(**decoding), home=paths.home)

    def answer_all(prompts: list[str]) -> list[str]:
        return engine.generate_batch([[{"role": "user", "content": p}] for p in prompts], decoding["max_new_tokens"],
                                     config.probes.batch_size)

    name = loaded.name if engine.name == "transformers" else f"{loaded.name}-{engine.name}"
    try:
        return rehearsal_examples(t.rehearsal_count, t.seed, paths.rehearsal / cache_name(name, decoding), answer_all)
    finally:
        engine.close()


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
