"""Acquisition probes: closed-book questions about what users stated in the turns a version consolidated."""
from __future__ import annotations

import json

from chatbot.core.registry import Registry
from chatbot.evaluation.suite import Probe, Suite, digest
from chatbot.learning.augment import extract_facts, qa_pairs
from chatbot.memory.store import Store


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
                 f"acquisition-{version}@{digest([(p.id, p.prompt, p.accept) for p in probes])}", probes)
