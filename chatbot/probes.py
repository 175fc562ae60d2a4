"""Regression probes: what a model version still knows (retention), what it learned from its conversations
(acquisition), and whether it repeats what it was told not to learn (privacy canary). Probes run on exactly what
is served (the 4-bit base + the version's unmerged LoRA adapter, through the chat's Generator), greedy and
seeded, and every suite result is stored in SQLite with its suite version and decoding settings. The base's
results are cached per model + suite version + decoding, so "before" is computed once.

Suites (docs/probes.md):
- retention: general QA with accepted answers, instruction-following checks (data/probes/*.jsonl); KL of the
  next-token distributions against the base on fixed prompt + reply pairs; perplexity of held-out text.
- acquisition/vNNNN: questions about what users stated in the turns version vNNNN consolidated, preferring the
  paraphrases its training did not use (closed book: no retrieval).
- canary: questions about "don't learn" turns and generic prompts; a leak is a distinctive string of such a turn
  in any reply of the version that the base did not produce for the same prompt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from .augment import extract_facts, qa_pairs
from .config import Config
from .generate import Generator
from .metrics import (average_forgetting, backward_transfer, forgetting, kl_per_position, noise_floor,
                      perplexity)
from .registry import BASE, Registry
from .store import Store

log = logging.getLogger(__name__)
PROBES_DIR = Path(__file__).resolve().parent.parent / "data" / "probes"
RETENTION = ("general-qa", "instruct")  # generated retention suites the gate compares with the base
LEAKS = "canary-leaks"  # the privacy result: score = number of leaks


# -- suites ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str  # the user message (single-turn chat, no memories)
    accept: tuple[str, ...] = ()  # qa / acquisition: passed when any of these appears as a word in the reply
    checks: tuple[dict, ...] = ()  # instruct: passed when every check holds
    response: str = ""  # kl: the fixed reply whose next-token distributions are compared


@dataclass
class Suite:
    name: str  # "general-qa", "instruct", "kl", "perplexity", "acquisition/v0001", "canary"
    kind: str  # "qa", "instruct", "kl", "perplexity", "acquisition", "canary"
    version: str  # file name (or derivation) + content hash: "general-qa-v1@1a2b3c4d"
    probes: list[Probe] = field(default_factory=list)
    text: str = ""  # perplexity: the reference text

    @property
    def generated(self) -> bool:
        return self.kind in ("qa", "instruct", "acquisition", "canary")


def _digest(payload: object) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:8]


def load_suite(stem: str, kind: str, folder: Path = PROBES_DIR) -> Suite:
    """A shipped suite: data/probes/<stem>.jsonl (or .txt for the perplexity reference)."""
    path = folder / f"{stem}.{'txt' if kind == 'perplexity' else 'jsonl'}"
    if not path.exists():
        raise FileNotFoundError(f"probe suite {path} not found: check [probes] in the config (data/probes/ lists "
                                "the shipped suites)")
    content = path.read_text(encoding="utf-8")
    version = f"{stem}@{hashlib.sha1(content.encode()).hexdigest()[:8]}"
    if kind == "perplexity":
        return Suite("perplexity", kind, version, text=content.strip())
    probes = []
    for n, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            probes.append(Probe(row["id"], row.get("question") or row["prompt"], tuple(row.get("accept", ())),
                                tuple(row.get("checks", ())), row.get("response", "")))
        except (ValueError, KeyError) as e:
            raise ValueError(f"{path}:{n}: not a probe ({e})") from None
    name = {"qa": "general-qa", "instruct": "instruct", "kl": "kl", "canary": "canary"}[kind]
    return Suite(name, kind, version, probes)


def shipped_suites(config: Config) -> dict[str, Suite]:
    p = config.probes
    return {"qa": load_suite(p.qa_suite, "qa"), "instruct": load_suite(p.instruct_suite, "instruct"),
            "kl": load_suite(p.kl_suite, "kl"), "perplexity": load_suite(p.reference, "perplexity"),
            "canary": load_suite(p.canary_suite, "canary")}


def acquisition_suite(store: Store, registry: Registry, version: str, max_questions: int) -> Suite | None:
    """Questions about the facts users stated in the turns `version` consolidated (its data manifest), answered
    closed-book. Per fact it prefers a paraphrase the training mix did not contain (the mix's choice is replayed
    from the version's resolved config), so the probe measures recall, not a memorised question. Turns later
    marked "don't learn" (or deleted) are left out. None when the version's turns state no fact."""
    v = registry.get(version)
    try:
        train = json.loads((v.path / "config.json").read_text())["config"]["train"]
    except (OSError, ValueError, KeyError):
        train = {}
    per_fact, seed, augment = train.get("augment_per_fact", 4), train.get("seed", 0), train.get("augment", True)
    turns = store.turns_by_ids(v.manifest.get("new_turn_ids", []))
    blocked = {t.id for t in store.learn_blocked_turns()}
    per_fact_questions: list[list[Probe]] = []
    for tid in sorted(turns):
        t = turns[tid]
        if t.role != "user" or not t.learn or tid in blocked:
            continue
        trained = {q for q, _ in qa_pairs(t.text, per_fact=per_fact, seed=seed + t.id)} if augment else set()
        for i, fact in enumerate(extract_facts(t.text)):
            unseen = [q for q in fact.questions if q not in trained]
            ordered = unseen + [q for q in fact.questions if q in trained]
            per_fact_questions.append([Probe(f"t{tid}-f{i}-q{k}" + ("" if q in unseen else "-seen"), q, (fact.key,))
                                       for k, q in enumerate(ordered[:2])])
    probes: list[Probe] = []
    for rank in range(2):  # one question per fact first, a second one while there is room
        probes += [qs[rank] for qs in per_fact_questions if len(qs) > rank]
    probes = probes[:max_questions]
    if not probes:
        return None
    return Suite(f"acquisition/{version}", "acquisition",
                 f"acquisition-{version}@{_digest([(p.id, p.prompt, p.accept) for p in probes])}", probes)


# -- the privacy canary ----------------------------------------------------------------------------------------
_DISTINCT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<![\w-])(?=[\w-]*\d)[\w-]{4,}(?![\w-])")


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.I) is not None


@dataclass
class Canary:
    secrets: list[str]  # distinctive strings of "don't learn" turns; never shown or stored on their own
    suite: Suite  # prompts inviting the model to repeat them


def canary(store: Store, generic: Suite, exclude: Iterable[str] = (), max_prompts: int = 24) -> Canary:
    """Secrets = the stated values (augment's fact keys) and digit-bearing or e-mail tokens of every user turn
    marked "don't learn", minus strings that also occur in learnable turns or in `exclude` (probe prompts and
    answers): generating those is not evidence of a leak. Prompts = the facts' own questions + generic ones."""
    allowed = "\n".join([t.text for _, t in store.learnable_turns(consolidated=False)] +
                        [t.text for _, t in store.learnable_turns(consolidated=True)] + list(exclude))
    secrets: dict[str, None] = {}
    questions: list[str] = []
    for t in store.learn_blocked_turns():
        found = [f for f in extract_facts(t.text) if len(f.key) >= 3]
        candidates = [f.key for f in found] + _DISTINCT.findall(t.text)
        for s in candidates:
            s = s.strip(".,;:!?")
            if len(s) < 3 or s.lower() in (k.lower() for k in secrets):
                continue
            if _has_word(allowed, s):
                continue
            secrets[s] = None
        questions += [q for f in found if f.key in secrets for q in f.questions[:2]]
    probes = [Probe(f"q{i}", q) for i, q in enumerate(dict.fromkeys(questions))][:max(0, max_prompts - len(generic.probes))]
    probes += generic.probes
    names = sorted(secrets)
    version = f"{generic.version.split('@')[0]}@{_digest([names, [p.prompt for p in probes]])}"
    return Canary(names, Suite("canary", "canary", version, probes if names else []))


def find_leaks(secrets: list[str], outputs: dict[tuple[str, str], tuple[str, str]],
               base_outputs: dict[tuple[str, str], tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(suite, probe id, prompt, output) of every reply that contains a secret which neither its prompt nor the
    base's reply to the same prompt contains. outputs: (suite, probe id) -> (prompt, reply)."""
    leaks = []
    for key, (prompt, out) in outputs.items():
        base_out = base_outputs.get(key, ("", ""))[1]
        if any(_has_word(out, s) and not _has_word(prompt, s) and not _has_word(base_out, s) for s in secrets):
            leaks.append((*key, prompt, out))
    return leaks


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` (for display: dashboards and reports never show "don't learn" text)."""
    for s in sorted(secrets, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(s)}(?!\w)", "[redacted]", text, flags=re.I)
    return text


# -- scoring ---------------------------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+", text)


def check(output: str, spec: dict) -> bool:
    """One instruction-following check: max_words, min_words, contains (any, case-insensitive), contains_case
    (any, exact case), regex (case-insensitive search), lowercase (no upper-case letter, some letter)."""
    (kind, arg), = spec.items()
    if kind == "max_words":
        return 0 < len(_words(output)) <= arg
    if kind == "min_words":
        return len(_words(output)) >= arg
    if kind == "contains":
        return any(_has_word(output, a) for a in arg)
    if kind == "contains_case":
        return any(a in output for a in arg)
    if kind == "regex":
        return re.search(arg, output.strip(), re.I) is not None
    if kind == "lowercase":
        return any(c.isalpha() for c in output) and output == output.lower()
    raise ValueError(f"unknown instruction check {kind!r}")


def score_item(probe: Probe, kind: str, output: str) -> float:
    """1.0 passed, 0.0 failed (qa/acquisition: an accepted answer appears; instruct: every check holds)."""
    if kind in ("qa", "acquisition"):
        return float(any(_has_word(output, a) for a in probe.accept))
    if kind == "instruct":
        return float(all(check(output, c) for c in probe.checks))
    return 1.0  # canary prompts are judged afterwards, against the base (find_leaks)


# -- running ---------------------------------------------------------------------------------------------------
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


def model_key(generator: Generator, config: Config) -> str:
    g = generator.loaded
    return f"{g.name}:{g.quantization}:{config.model.compute_dtype}"


class Prober:
    """Runs the suites on one Generator (the served stack) and stores every result in the Store."""

    def __init__(self, store: Store, registry: Registry, generator: Generator, config: Config,
                 report: Callable[[dict], None] | None = None):
        self.store, self.registry, self.generator, self.config = store, registry, generator, config
        self.p = config.probes
        self.suites = shipped_suites(config)
        self.model = model_key(generator, config)
        self.report = report or (lambda info: None)
        self.decoding = {"do_sample": False, "max_new_tokens": self.p.max_new_tokens,
                         "repetition_penalty": config.decoding.repetition_penalty, "seed": config.decoding.seed}

    # -- one suite -----------------------------------------------------------------------------------------
    def _cached(self, version: str, suite: Suite, decoding: dict, run: str, fingerprint: str) -> SuiteResult | None:
        row = self.store.probe_result(version, self.model, suite.name, suite.version, _key(decoding), run)
        if row is None or row["details"].get("adapter") != fingerprint:
            return None
        return SuiteResult(suite.name, suite.version, row["score"], self.store.probe_items(row["id"]),
                           row["details"], row["seconds"], cached=True)

    def _save(self, version: str, result: SuiteResult, decoding: dict, run: str) -> SuiteResult:
        self.store.save_probe_result(version, self.model, result.suite, result.suite_version, _key(decoding), run,
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
        outputs = self.generator.generate_batch([[{"role": "user", "content": p.prompt}] for p in suite.probes],
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
        from .train import IGNORE, tokenize_example

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

        self.generator.use_adapter(BASE, None)
        base = {s.name: self.generated(s, BASE, BASE) for s in generated}
        base["perplexity"] = self.perplexity(BASE, BASE)
        noise = self.noise(retention) if self.p.noise_runs >= 2 else {}
        if version == BASE:
            results = dict(base)
        else:
            self.generator.use_adapter(version, str(path))
            results = {s.name: self.generated(s, version, fingerprint) for s in generated}
            results["perplexity"] = self.perplexity(version, fingerprint)
            results["kl"] = self.kl(version, fingerprint)
        results[LEAKS] = self._leaks(version, can, results, base)
        report = ProbeReport(version, self.model, results, base, noise, {}, can.secrets, round(time.time() - started, 2))
        report.metrics = summary(report, self.store, self.registry, chain)
        return report

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


def latest_scores(store: Store, model: str) -> dict[tuple[str, str], float | None]:
    """(version, suite) -> the newest greedy score stored for `model`."""
    return {(r["version"], r["suite"]): r["score"] for r in store.probe_results(model)}


def summary(report: ProbeReport, store: Store, registry: Registry, chain: list[str]) -> dict:
    """The numbers the gate and the dashboard use (docs/probes.md): scores and drops vs the base, noise floor,
    KL, perplexity ratio, canary leaks, acquisition (learned vs the base) and, over the version's lineage,
    forgetting per suite (Chaudhry) and backward transfer over acquisition suites (Lopez-Paz & Ranzato)."""
    r, b = report.results, report.base
    scores = latest_scores(store, report.model)
    versions = [BASE, *chain]  # the model after each training step, base first
    m: dict = {"version": report.version, "model": report.model, "seconds": report.seconds}
    m["scores"] = {n: res.score for n, res in r.items() if n not in ("kl", "perplexity", LEAKS, "canary")}
    m["base_scores"] = {n: b[n].score for n in m["scores"] if n in b}
    m["drops"] = {n: round(b[n].score - r[n].score, 4) for n in RETENTION if n in r and n in b}
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
                  report: Callable[[dict], None] | None = None) -> ProbeReport:
    """Load the served stack (config's model, quantized as served) unless `loaded` is given, and probe `version`
    (default: the served one)."""
    from .model import load_model
    from .runtime import Paths

    paths = Paths(Path(home))
    registry = Registry(paths.adapters)
    version = version or registry.current()
    if version != BASE:
        registry.get(version)  # a clear error for unknown names before loading anything
    m = config.model
    loaded = loaded or load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
    generator = Generator(loaded, config.decoding, m.max_context)
    store = Store(paths.db)
    try:
        return Prober(store, registry, generator, config, report).run(version)
    finally:
        store.close()
