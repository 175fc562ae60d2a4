"""Running the regression probes: what a model version still knows (retention), what it learned from its conversations
(acquisition), and whether it repeats what it was told not to learn (privacy canary). Probes run on exactly what
is served (the base + the version's unmerged LoRA adapter, through the chat's engine: serve.engine), greedy and
seeded, and every suite result is stored in SQLite with its suite version and decoding settings. The base's
results are cached per model + suite version + decoding, so "before" is computed once.

Suites (docs/probes.md):
- retention: general QA with accepted answers, instruction-following checks (chatbot/evaluation/probe_suites/*.jsonl);
  KL of the next-token distributions against the base on fixed prompt + reply pairs; perplexity of held-out text.
- acquisition/vNNNN: questions about what users stated in the turns version vNNNN consolidated, preferring the
  paraphrases its training did not use (closed book: no retrieval).
- canary: questions about "don't learn" turns and generic prompts; a leak is a distinctive string of such a turn
  in any reply of the version that the base did not produce for the same prompt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from chatbot.core.config import Config
from chatbot.core.lines import AdapterLines
from chatbot.core.paths import Paths
from chatbot.core.registry import BASE, Registry
from chatbot.evaluation.acquisition import acquisition_suite
from chatbot.evaluation.canary import Canary, canary, find_leaks
from chatbot.evaluation.metrics import (
    average_forgetting,
    backward_transfer,
    forgetting,
    kl_per_position,
    noise_floor,
    paired_changes,
    perplexity,
    sign_test,
)
from chatbot.evaluation.results import ResultStore
from chatbot.evaluation.scoring import score_item
from chatbot.evaluation.suite import LEAKS, RETENTION, Suite, shipped_suites
from chatbot.learning.train import IGNORE, tokenize_example
from chatbot.memory.store import Store
from chatbot.serving.engine import Engine, open_engine, resolve_engine
from chatbot.serving.generate import Generator
from chatbot.serving.model import load_model

log = logging.getLogger(__name__)


@dataclass
class SuiteResult:
    suite: str
    suite_version: str
    score: float | None  # % passed (generated suites), nats/token (kl), perplexity, number of leaks (canary-leaks)
    items: list[dict]  # {probe_id, prompt, output, score}
    details: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False


@dataclass
class ProbeReport:
    version: str
    model: str
    results: dict[str, SuiteResult]  # the version's
    base: dict[str, SuiteResult]  # the base's on the same suites
    noise: dict[str, float | None]  # suite -> score stdev over sampled runs of the base
    metrics: dict  # summary(): what the gate decides on
    secrets: list[str]  # for redaction only
    seconds: float


def adapter_fingerprint(path: Path | None) -> str:
    """Identifies the weights probed, so a cached result is only reused for the very same adapter."""
    if path is None:
        return BASE
    h = hashlib.sha1()
    for f in sorted(Path(path).glob("adapter_model.*")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def model_key(engine: Engine, config: Config) -> str:
    """What results are stored under: the model, its quantization and, past the reference transformers engine,
    the engine (another engine's greedy answers differ, so its base results are its own)."""
    g = engine.loaded
    key = f"{g.name}:{g.quantization}:{g.compute_dtype}"
    return key if engine.name == "transformers" else f"{key}:{engine.name}"


class Prober:
    """Runs the generated suites on the served engine and the forward-pass suites (KL, perplexity) on the
    transformers Generator of the same base (the same object when transformers serves), and stores every result
    in the ResultStore (turns are read from the Store for the acquisition questions and the canary)."""

    def __init__(self, store: Store, results: ResultStore, registry: Registry, generator: Generator,
                 config: Config, report: Callable[[dict], None] | None = None, engine: Engine | None = None):
        self.store, self.results, self.registry, self.generator = store, results, registry, generator
        self.engine = engine or generator
        self.config = config
        self.p = config.probes
        self.suites = shipped_suites(config)
        self.model = model_key(self.engine, config)
        self.report = report or (lambda info: None)
        self.decoding = {"do_sample": False, "max_new_tokens": self.p.max_new_tokens,
                         "repetition_penalty": config.decoding.repetition_penalty, "seed": config.decoding.seed}

    # -- one suite -----------------------------------------------------------------------------------------
    def _cached(self, version: str, suite: Suite, decoding: dict, run: str, fingerprint: str) -> SuiteResult | None:
        row = self.results.result(version, self.model, suite.name, suite.version, _key(decoding), run)
        if row is None or row["details"].get("adapter") != fingerprint:
            return None
        return SuiteResult(suite.name, suite.version, row["score"], self.results.items(row["id"]),
                           row["details"], row["seconds"], cached=True)

    def _save(self, version: str, result: SuiteResult, decoding: dict, run: str) -> SuiteResult:
        self.results.save_result(version, self.model, result.suite, result.suite_version, _key(decoding), run,
                                     result.score, result.details, result.seconds,
                                     [(i["probe_id"], i["prompt"], i["output"], i["score"]) for i in result.items])
        return result

    def generated(self, suite: Suite, version: str, fingerprint: str, run: str = "greedy",
                  decoding: dict | None = None) -> SuiteResult:
        decoding = decoding or self.decoding
        hit = self._cached(version, suite, decoding, run, fingerprint)
        if hit is not None:
            return hit
        self.report({"stage": "probing", "version": version, "suite": suite.name, "run": run})
        started = time.time()
        settings = {k: v for k, v in decoding.items() if k != "max_new_tokens"}
        outputs = self.engine.generate_batch([[{"role": "user", "content": p.prompt}] for p in suite.probes],
                                                decoding["max_new_tokens"], self.p.batch_size, **settings)
        items = [{"probe_id": p.id, "prompt": p.prompt, "output": o, "score": score_item(p, suite.kind, o)}
                 for p, o in zip(suite.probes, outputs)]
        score = 100.0 * sum(i["score"] for i in items) / len(items) if items and suite.kind != "canary" else None
        result = SuiteResult(suite.name, suite.version, score, items, {"adapter": fingerprint, "n": len(items)},
                             round(time.time() - started, 2))
        return self._save(version, result, decoding, run)

    def perplexity(self, version: str, fingerprint: str, window: int = 256) -> SuiteResult:
        suite = self.suites["perplexity"]
        hit = self._cached(version, suite, {}, "greedy", fingerprint)
        if hit is not None:
            return hit
        self.report({"stage": "probing", "version": version, "suite": "perplexity"})
        started = time.time()
        tok = self.generator.tokenizer
        ids = tok(suite.text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
        chunks = [ids[i:i + window] for i in range(0, len(ids), window) if len(ids[i:i + window]) > 1]
        nll, n = 0.0, 0
        for start in range(0, len(chunks), self.p.batch_size):
            input_ids, mask = _right_pad(chunks[start:start + self.p.batch_size], tok.pad_token_id)
            with self.generator.serving() as model:
                logits = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device)).logits
            logp = torch.log_softmax(logits[:, :-1].float(), -1)
            target = input_ids[:, 1:].to(logp.device)
            keep = mask[:, 1:].bool().to(logp.device)
            token_nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            nll += float(token_nll[keep].sum())
            n += int(keep.sum())
        ppl = perplexity(nll, n)
        result = SuiteResult("perplexity", suite.version, ppl,
                             [{"probe_id": "reference", "prompt": suite.text[:120], "output": "", "score": ppl}],
                             {"adapter": fingerprint, "tokens": n, "nll": nll}, round(time.time() - started, 2))
        return self._save(version, result, {}, "greedy")

    def kl(self, version: str, fingerprint: str) -> SuiteResult:
        """Mean KL(base ‖ version) per reply token of the kl suite: teacher-forced forward passes of both, on the
        same loaded weights (the base = the adapter disabled)."""
        suite = self.suites["kl"]
        hit = self._cached(version, suite, {}, "greedy", fingerprint)
        if hit is not None:
            return hit
        self.report({"stage": "probing", "version": version, "suite": "kl"})
        started = time.time()
        tok = self.generator.tokenizer
        encoded = [tokenize_example(tok, [{"role": "user", "content": p.prompt},
                                          {"role": "assistant", "content": p.response}], 512) for p in suite.probes]
        items, total, n_total = [], 0.0, 0
        bs = max(1, min(self.p.batch_size, 8))  # full-vocabulary logits of every position: keep batches small
        for start in range(0, len(encoded), bs):
            batch = encoded[start:start + bs]
            input_ids, mask = _right_pad([torch.tensor(e["input_ids"]) for e in batch], tok.pad_token_id)
            # Position t predicts token t+1: compare the distributions that predict the reply's tokens.
            predicts = torch.zeros(input_ids.shape, dtype=torch.bool)
            for r, e in enumerate(batch):
                predicts[r, :len(e["input_ids"]) - 1] = torch.tensor(e["labels"])[1:] != IGNORE
            with self.generator.serving(base=True) as model:
                base_logits = model(input_ids=input_ids.to(model.device),
                                    attention_mask=mask.to(model.device)).logits[predicts.to(model.device)]
            with self.generator.serving() as model:
                logits = model(input_ids=input_ids.to(model.device),
                               attention_mask=mask.to(model.device)).logits[predicts.to(model.device)]
            kl = kl_per_position(base_logits, logits).cpu()
            counts = predicts.sum(1).tolist()
            for p, part in zip(suite.probes[start:start + bs], torch.split(kl, counts)):
                items.append({"probe_id": p.id, "prompt": p.prompt, "output": p.response,
                              "score": round(float(part.mean()), 6) if len(part) else 0.0})
            total += float(kl.sum())
            n_total += int(kl.numel())
        result = SuiteResult("kl", suite.version, total / max(n_total, 1), items,
                             {"adapter": fingerprint, "tokens": n_total}, round(time.time() - started, 2))
        return self._save(version, result, {}, "greedy")

    def noise(self, suites: list[Suite]) -> dict[str, float | None]:
        """Score stdev of each suite over `noise_runs` sampled runs of the base (temperature/top_p as served,
        seeds decoding.seed+1…), cached like every base result."""
        d = self.config.decoding
        out: dict[str, float | None] = {}
        for suite in suites:
            scores = []
            for k in range(self.p.noise_runs):
                seed = d.seed + 1 + k
                decoding = {**self.decoding, "do_sample": True, "temperature": d.temperature, "top_p": d.top_p,
                            "seed": seed}
                scores.append(self.generated(suite, BASE, BASE, f"sample-{seed}", decoding).score)
            out[suite.name] = noise_floor(scores)
        return out

    # -- one version ---------------------------------------------------------------------------------------
    def run(self, version: str = BASE) -> ProbeReport:
        """Probe `version` (and the base, from cache when it can) on every suite; store results and return them
        with the summary metrics."""
        started = time.time()
        path = None if version == BASE else self.registry.get(version).path
        fingerprint = adapter_fingerprint(path)
        retention = [self.suites["qa"], self.suites["instruct"]]
        chain = [] if version == BASE else [*self.registry.lineage(version), version]
        acquisition = [s for s in (acquisition_suite(self.store, self.registry, v, self.p.acquisition_max)
                                   for v in chain) if s is not None]
        shipped_text = [p.prompt for s in self.suites.values() for p in s.probes] + \
                       [a for s in retention for p in s.probes for a in p.accept]
        can = canary(self.store, self.suites["canary"], exclude=shipped_text)
        generated = retention + acquisition + ([can.suite] if can.secrets else [])

        self._use(BASE, None)
        base = {s.name: self.generated(s, BASE, BASE) for s in generated}
        base["perplexity"] = self.perplexity(BASE, BASE)
        noise = self.noise(retention) if self.p.noise_runs >= 2 else {}
        if version == BASE:
            results = dict(base)
        else:
            self._use(version, str(path))
            results = {s.name: self.generated(s, version, fingerprint) for s in generated}
            results["perplexity"] = self.perplexity(version, fingerprint)
            results["kl"] = self.kl(version, fingerprint)
        results[LEAKS] = self._leaks(version, can, results, base)
        report = ProbeReport(version, self.model, results, base, noise, {}, can.secrets,
                             round(time.time() - started, 2))
        report.metrics = summary(report, self.results, self.registry, chain)
        return report

    def _use(self, version: str, path: str | None) -> None:
        self.generator.use_adapter(version, path)
        if self.engine is not self.generator:
            self.engine.use_adapter(version, path)

    def _leaks(self, version: str, can: Canary, results: dict[str, SuiteResult],
               base: dict[str, SuiteResult]) -> SuiteResult:
        def outputs(res: dict[str, SuiteResult]) -> dict:
            return {(name, i["probe_id"]): (i["prompt"], i["output"]) for name, r in res.items()
                    if name not in ("kl", "perplexity", LEAKS) for i in r.items}

        leaks = find_leaks(can.secrets, outputs(results), outputs(base)) if version != BASE else []
        items = [{"probe_id": f"{suite}/{pid}", "prompt": prompt, "output": out, "score": 1.0}
                 for suite, pid, prompt, out in leaks]
        result = SuiteResult(LEAKS, can.suite.version, float(len(leaks)), items,
                             {"secrets": len(can.secrets), "prompts": len(can.suite.probes)})
        return self._save(version, result, {}, "greedy")


def _right_pad(seqs: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id sequences → (input_ids, attention_mask), right-padded to the longest."""
    width = max(len(x) for x in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, x in enumerate(seqs):
        input_ids[r, :len(x)], mask[r, :len(x)] = x, 1
    return input_ids, mask


def _key(decoding: dict) -> str:
    return json.dumps(decoding, sort_keys=True)


def latest_scores(results: ResultStore, model: str) -> dict[tuple[str, str], float | None]:
    """(version, suite) -> the newest greedy score stored for `model`."""
    return {(r["version"], r["suite"]): r["score"] for r in results.results(model)}


def summary(report: ProbeReport, results: ResultStore, registry: Registry, chain: list[str]) -> dict:
    """The numbers the gate and the dashboard use (docs/probes.md): scores and drops vs the base, noise floor,
    KL, perplexity ratio, canary leaks, acquisition (learned vs the base) and, over the version's lineage,
    forgetting per suite (Chaudhry) and backward transfer over acquisition suites (Lopez-Paz & Ranzato)."""
    r, b = report.results, report.base
    scores = latest_scores(results, report.model)
    versions = [BASE, *chain]  # the model after each training step, base first
    m: dict = {"version": report.version, "model": report.model, "seconds": report.seconds}
    m["scores"] = {n: res.score for n, res in r.items() if n not in ("kl", "perplexity", LEAKS, "canary")}
    m["base_scores"] = {n: b[n].score for n in m["scores"] if n in b}
    m["drops"] = {n: round(b[n].score - r[n].score, 4) for n in RETENTION if n in r and n in b}
    m["changes"] = {}  # per retention suite: items lost and gained against the base, and the sign test's p
    for n in RETENTION:
        if n in r and n in b:
            losses, gains = paired_changes({i["probe_id"]: i["score"] for i in b[n].items},
                                           {i["probe_id"]: i["score"] for i in r[n].items})
            m["changes"][n] = {"losses": losses, "gains": gains, "p": round(sign_test(losses, gains), 4)}
    m["noise_sd"] = report.noise
    m["kl"] = r["kl"].score if "kl" in r else 0.0
    m["perplexity"] = r["perplexity"].score
    m["base_perplexity"] = b["perplexity"].score
    m["ppl_ratio"] = m["perplexity"] / m["base_perplexity"] if m["base_perplexity"] else None
    m["canary_leaks"] = int(r[LEAKS].score or 0)
    m["canary_secrets"] = r[LEAKS].details.get("secrets", 0)
    m["forgetting"] = {}
    for name in RETENTION:
        m["forgetting"][name] = forgetting([scores.get((v, name)) for v in versions[:-1]] + [r[name].score]) \
            if report.version != BASE else None
    acq = [v for v in chain if f"acquisition/{v}" in r]
    if report.version != BASE and f"acquisition/{report.version}" in r:
        own = f"acquisition/{report.version}"
        m["acquisition"] = {"suite": own, "score": r[own].score, "base": b[own].score if own in b else None}
    # R[i][j]: version chain[i] on the facts of chain[j]; the current row comes from this run.
    R = [[(r[f"acquisition/{vj}"].score if vi == report.version else scores.get((vi, f"acquisition/{vj}")))
          if j <= i else None for j, vj in enumerate(acq)] for i, vi in enumerate(acq)]
    for j, vj in enumerate(acq[:-1]):
        m["forgetting"][f"acquisition/{vj}"] = forgetting([row[j] for row in R[j:]])
    m["average_forgetting"] = average_forgetting(R) if len(R) >= 2 else None
    m["bwt"] = backward_transfer(R) if len(R) >= 2 else None
    return m


def probe_version(home: Path, config: Config, version: str | None = None, loaded=None,
                  report: Callable[[dict], None] | None = None, user: str | None = None) -> ProbeReport:
    """Load the served stack (config's model, quantized as served) unless `loaded` is given, and probe `version`
    (default: the one served to `user`, by default serve.default_user) on the line of the user who owns it: its
    acquisition probes and BWT come from that user's facts and versions."""
    paths = Paths(Path(home))
    lines = AdapterLines(paths.adapters, config.serve.default_user)
    if version and version != BASE:
        registry = lines.find(version)  # a clear error for unknown names before loading anything
    else:
        registry = lines.line(user)
        version = version or registry.current()
    m = config.model
    loaded = loaded or load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
    generator = Generator(loaded, config.decoding, m.max_context)
    engine = generator if resolve_engine(config) == "transformers" else open_engine(config, loaded, home=paths.home)
    store, results = Store(paths.db), ResultStore(paths.db)
    try:
        return Prober(store, results, registry, generator, config, report, engine).run(version)
    finally:
        store.close()
        results.close()
        if engine is not generator:
            engine.close()
