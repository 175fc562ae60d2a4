"""Building the training mix. Two strategies (train.strategy):

- rebuild (default): the adapter is a function of the knowledge ledger. Every current fact (chatbot.memory.facts:
  not superseded, not forgotten, from a learnable turn) becomes Q/A pairs on some of its question forms (the
  others are kept for the acquisition probes), plus rehearsal of the frozen base model's own answers to general
  prompts; a fresh LoRA is trained on the base each run, so corrections and forgets take effect exactly and
  drift from the base does not compound round after round.
- continue: the previous adapter is trained further on the new turns (as dialogue and as Q/A about what users
  stated), replayed old examples chosen by a replay policy, and rehearsal.

Two guards apply on the way in: a cap on any one user's share of the new examples (poisoning; the excess is
deferred to a later run) and PII scrubbing of every example (privacy). Pure data: no training here."""
from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

from chatbot.learning.augment import qa_pairs
from chatbot.memory.facts import LedgerFact
from chatbot.memory.store import Store, Turn

log = logging.getLogger(__name__)


Source = Literal["new", "augment", "replay", "rehearsal"]  # new: dialogue; augment: Q/A about a new statement


@dataclass(frozen=True)
class Example:
    messages: tuple[tuple[str, str], ...]  # (role, content); loss only on assistant content
    source: Source
    turn_ids: tuple[int, ...] = ()  # the buffer turns it was built from (empty for rehearsal)
    user: str = ""
    ref: str = ""  # rehearsal prompt id, or "fact:<ledger id>" for a fact's Q/A

    def as_chat(self) -> list[dict]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def text(self) -> str:
        return "\n".join(c for _, c in self.messages)


@dataclass
class Mix:
    examples: list[Example]
    new_turn_ids: list[int]  # turns this run consolidates (every example built from them is in the mix)
    replay_pool_size: int
    counts: dict[str, int] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)  # user -> new examples the share cap deferred
    deferred_turn_ids: list[int] = field(default_factory=list)  # stay new: learned by a later run
    scrubbed: dict[str, int] = field(default_factory=dict)  # PII kind -> items replaced by placeholders
    strategy: str = "continue"
    fact_ids: list[int] = field(default_factory=list)  # ledger facts this run trained (rebuild: all current ones)
    new_fact_ids: list[int] = field(default_factory=list)  # of those, the ones the served version did not hold

    @property
    def n_new(self) -> int:
        return len(self.new_turn_ids)

    def manifest(self) -> dict:
        """Which turns and samples went into the run: the data lineage of a version."""
        return {
            "new_turn_ids": self.new_turn_ids,
            "replay_turn_ids": sorted({i for e in self.examples if e.source == "replay" for i in e.turn_ids}),
            "rehearsal_prompts": sorted({e.ref for e in self.examples if e.source == "rehearsal"}),
            "counts": self.counts,
            "replay_pool_size": self.replay_pool_size,
            "user_cap_deferred": self.capped,
            "deferred_turn_ids": self.deferred_turn_ids,
            "pii_scrubbed": self.scrubbed,
            "strategy": self.strategy,
            "fact_ids": self.fact_ids,
            "new_fact_ids": self.new_fact_ids,
        }

    def preview(self, per_source: int = 2) -> list[dict]:
        seen: Counter = Counter()
        out = []
        for e in self.examples:
            if seen[e.source] < per_source:
                seen[e.source] += 1
                out.append({"source": e.source, "messages": [list(m) for m in e.messages]})
        return out


def conversation_examples(user: str, turns: list[Turn], source: Source, augment: bool, per_fact: int,
                          seed: int) -> list[Example]:
    """One conversation's learnable turns → a dialogue example (if it has a reply to learn) plus, with augment,
    Q/A pairs about each user statement (answered in the second person)."""
    out: list[Example] = []
    msgs = tuple((t.role, t.text) for t in turns if t.role in ("user", "assistant"))
    if any(r == "assistant" for r, _ in msgs) and msgs[0][0] == "user":
        out.append(Example(msgs, source, tuple(t.id for t in turns), user))
    if augment:
        aug_source = "augment" if source == "new" else source
        for t in turns:
            if t.role != "user":
                continue
            for q, a in qa_pairs(t.text, per_fact=per_fact, seed=seed + t.id):
                out.append(Example((("user", q), ("assistant", a)), aug_source, (t.id,), user))
    return out


def _by_conversation(rows: Iterable[tuple[str, Turn]]) -> dict[int, tuple[str, list[Turn]]]:
    groups: dict[int, tuple[str, list[Turn]]] = {}
    for user, turn in rows:
        groups.setdefault(turn.conversation_id, (user, []))[1].append(turn)
    return groups


def _stable_key(seed: int, e: Example) -> str:
    return hashlib.sha256(repr((seed, e.turn_ids, e.messages)).encode("utf-8", "surrogatepass")).hexdigest()


def cap_user_share(examples: list[Example], max_share: float, seed: int) -> tuple[list[Example], dict[str, int]]:
    """Poisoning guard: keep at most `max_share` of `examples` from any one user this run, keeping the ones first
    in a seeded hash order (deterministic, independent of arrival order); build_mix defers the rest to a later
    run. With n contributing users a cap below 1/n cannot hold for all of them, so the cap used is
    max(max_share, 1/n); a single contributor is not capped (the probe gate is the guard there). Returns (kept
    examples in their original order, deferred per user)."""
    by_user: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_user[e.user].append(e)
    if max_share >= 1 or len(by_user) < 2:
        return examples, {}
    cap = max(max_share, 1 / len(by_user))
    keep = {u: len(v) for u, v in by_user.items()}
    while True:  # trimming one user lowers the total, which can put another over the cap: repeat until stable
        total = sum(keep.values())
        over = [u for u, n in keep.items() if n > cap * total + 1e-9]
        if not over:
            break
        user = max(over, key=lambda u: (keep[u], u))
        keep[user] = math.floor(cap / (1 - cap) * (total - keep[user]) + 1e-9) if cap < 1 else keep[user]
    kept: set[int] = set()
    dropped: dict[str, int] = {}
    for user, items in by_user.items():
        ranked = sorted(items, key=lambda e: _stable_key(seed, e))
        kept.update(id(e) for e in ranked[:keep[user]])
        if len(items) > keep[user]:
            dropped[user] = len(items) - keep[user]
            log.warning("user share cap %.2f: deferred %d of %d new examples of user %r to a later run", cap,
                        dropped[user], len(items), user)
    return [e for e in examples if id(e) in kept], dropped


def build_mix(store: Store, *, augment: bool, per_fact: int, replay_ratio: float,
              replay_select: Callable[[list[Example], list[Example], int, int], list[Example]] | None,
              rehearsal: list[Example], seed: int, max_user_share: float = 1.0,
              scrub: Callable[[Example], Example] | None = None) -> Mix:
    """Select new data (capped per user), then add replay and rehearsal. The replay count is replay_ratio × new
    examples. `scrub` (PII) is applied to every example, whatever its source, as the last step.

    A turn is consolidated by this run only if every example built from it is in the mix; a turn the share cap
    cut stays new (deferred, not dropped): it is neither marked learned nor replayed nor asked by the acquisition
    probes until a later run has trained it."""
    new_rows = store.learnable_turns(consolidated=False)
    new_examples: list[Example] = []
    for user, turns in _by_conversation(new_rows).values():
        new_examples += conversation_examples(user, turns, "new", augment, per_fact, seed)
    all_new = new_examples
    new_examples, capped = cap_user_share(new_examples, max_user_share, seed)
    kept = {id(e) for e in new_examples}
    deferred = {tid for e in all_new if id(e) not in kept for tid in e.turn_ids}
    pool: list[Example] = []
    for user, turns in _by_conversation(store.learnable_turns(consolidated=True)).values():
        pool += conversation_examples(user, turns, "replay", augment, per_fact, seed)
    n_replay = min(len(pool), round(replay_ratio * len(new_examples)))
    replay = replay_select(pool, new_examples, n_replay, seed) if (n_replay and replay_select) else []
    examples, scrubbed = _scrubbed_and_shuffled(new_examples + replay + list(rehearsal), scrub, seed)
    return Mix(examples, [t.id for _, t in new_rows if t.id not in deferred], len(pool),
               counts=dict(Counter(e.source for e in examples)), capped=capped, scrubbed=scrubbed,
               deferred_turn_ids=sorted(deferred))


def _scrubbed_and_shuffled(examples: list[Example], scrub: Callable[[Example], Example] | None,
                           seed: int) -> tuple[list[Example], dict[str, int]]:
    """The last steps of every mix: PII scrub of each example (whatever its source), then a seeded shuffle."""
    scrubbed: dict[str, int] = {}
    if scrub is not None:
        examples = [scrub(e) for e in examples]
        scrubbed = {k: v for k, v in getattr(scrub, "counts", {}).items() if v}
    random.Random(seed).shuffle(examples)
    return examples, scrubbed


def split_questions(fact: LedgerFact, per_fact: int) -> tuple[list[str], list[str]]:
    """(questions trained on, questions kept for the acquisition probes): the first forms are trained, at least
    one is kept back whenever the fact has two or more, so a probe never asks a question the training saw."""
    qs = list(fact.questions)
    n = min(per_fact, len(qs) - 1) if len(qs) > 1 else len(qs)
    return qs[:n], qs[n:]


def fact_examples(fact: LedgerFact, per_fact: int, source: Source) -> list[Example]:
    trained, _ = split_questions(fact, per_fact)
    return [Example((("user", q), ("assistant", fact.answer)), source, (fact.turn_id,) if fact.turn_id else (),
                    fact.owner, f"fact:{fact.id}") for q in trained]


def build_ledger_mix(store: Store, facts: list[LedgerFact], held: set[int], *, per_fact: int,
                     rehearsal: list[Example], seed: int, max_user_share: float = 1.0,
                     scrub: Callable[[Example], Example] | None = None) -> Mix:
    """The rebuild strategy's mix: every current fact (those the served version already holds count as "replay",
    the others as new "augment" examples, and only those are capped per user) + rehearsal. The turns consolidated
    are the new learnable ones, except turns whose facts the share cap deferred."""
    new_rows = store.learnable_turns(consolidated=False)
    new_examples = [e for f in facts if f.id not in held for e in fact_examples(f, per_fact, "augment")]
    old_examples = [e for f in facts if f.id in held for e in fact_examples(f, per_fact, "replay")]
    kept_new, capped = cap_user_share(new_examples, max_user_share, seed)
    kept = {id(e) for e in kept_new}
    deferred_facts = {e.ref for e in new_examples if id(e) not in kept}
    deferred = {tid for e in new_examples if e.ref in deferred_facts for tid in e.turn_ids}
    kept_new = [e for e in kept_new if e.ref not in deferred_facts]  # a fact is trained whole or not at all
    examples, scrubbed = _scrubbed_and_shuffled(kept_new + old_examples + list(rehearsal), scrub, seed)
    fact_ids = sorted(f.id for f in facts if f"fact:{f.id}" not in deferred_facts)
    return Mix(examples, [t.id for _, t in new_rows if t.id not in deferred], len(old_examples),
               counts=dict(Counter(e.source for e in examples)), capped=capped, scrubbed=scrubbed,
               deferred_turn_ids=sorted(deferred), strategy="rebuild", fact_ids=fact_ids,
               new_fact_ids=[i for i in fact_ids if i not in held])


def example_to_dict(e: Example) -> dict:
    return asdict(e)
