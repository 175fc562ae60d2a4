"""Acquisition probes: closed-book questions about what users stated, for the facts a version learned.

A version rebuilt from the knowledge ledger (manifest `strategy` "rebuild", `fact_ids`) is asked about its facts,
the ones new in it first, with a question form the training did not see: a form kept back from training
(learning.mix.split_questions), put in a probe-only frame ("Quick question — …") that no training example uses.
A corrected fact's probe also fails when the reply gives the value it replaced. Versions trained by "continue"
(and older ones) are asked about the facts extracted from their new turns, preferring a paraphrase the training
mix did not contain."""
from __future__ import annotations

import json

from chatbot.core.registry import Registry
from chatbot.evaluation.suite import Probe, Suite, digest
from chatbot.learning.augment import extract_facts, qa_pairs
from chatbot.learning.mix import split_questions
from chatbot.memory.facts import FactStore, LedgerFact
from chatbot.memory.store import Store

# Probe-only frames: no training example is worded this way (tests/evaluation/test_acquisition.py checks it).
FRAMES = ("Quick question — {q}", "Can you remind me: {q}", "{q} Just the short answer, please.")


def frame(question: str, n: int) -> str:
    return FRAMES[n % len(FRAMES)].format(q=question.strip())


def acquisition_suite(store: Store, registry: Registry, version: str, max_questions: int) -> Suite | None:
    """The acquisition suite of `version`, or None when it learned no fact."""
    v = registry.get(version)
    try:
        train = json.loads((v.path / "config.json").read_text())["config"]["train"]
    except (OSError, ValueError, KeyError):
        train = {}
    if v.manifest.get("strategy") == "rebuild":
        facts = FactStore(store.path)
        try:
            probes = _ledger_probes(facts, v.manifest, train.get("augment_per_fact", 4))
        finally:
            facts.close()
    else:
        probes = _turn_probes(store, v.manifest, train)
    probes = probes[:max_questions]
    if not probes:
        return None
    return Suite(f"acquisition/{version}", "acquisition",
                 f"acquisition-{version}@{digest([(p.id, p.prompt, p.accept, p.reject) for p in probes])}", probes)


def _ledger_probes(facts: FactStore, manifest: dict, per_fact: int) -> list[Probe]:
    ids = manifest.get("fact_ids", [])
    new = set(manifest.get("new_fact_ids", ids))
    rows = [f for f in facts.facts(ids=ids) if f.current or f.status == "superseded"]
    rows = [f for f in rows if not f.forgotten and f.eligible]
    ordered = [f for f in rows if f.id in new] + [f for f in rows if f.id not in new]
    replaced = {f.id: f for f in facts.facts(ids={i for f in ordered for i in f.supersedes})}
    out = []
    for n, fact in enumerate(ordered):
        probe = _fact_probe(fact, per_fact, n, replaced)
        if probe is not None:
            out.append(probe)
    return out


def _fact_probe(fact: LedgerFact, per_fact: int, n: int, replaced: dict[int, LedgerFact]) -> Probe | None:
    trained, kept = split_questions(fact, per_fact)
    question = (kept or trained or [None])[0]
    if question is None or not fact.key:
        return None
    old = tuple(o.key for i in fact.supersedes if (o := replaced.get(i)) and o.key
                and o.key.lower() not in fact.key.lower())
    return Probe(f"fact{fact.id}" + ("-corrected" if old else ""), frame(question, n), (fact.key,), reject=old)


def _turn_probes(store: Store, manifest: dict, train: dict) -> list[Probe]:
    per_fact, seed, augment = train.get("augment_per_fact", 4), train.get("seed", 0), train.get("augment", True)
    turns = store.turns_by_ids(manifest.get("new_turn_ids", []))
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
    return probes
