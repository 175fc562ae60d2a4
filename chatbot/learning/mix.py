"""Building the training mix. Two strategies (train.strategy):

- rebuild (default): the adapter is a function of the knowledge ledger. Every current fact (chatbot.memory.facts:
  not superseded, not forgotten, from a learnable turn) becomes Q/A pairs on some of its question forms (the
  others are kept for the acquisition probes), plus rehearsal of the frozen base model's own answers to general
  prompts; a fresh LoRA is trained on the base each run, so corrections and forgets take effect exactly and
  drift from the base does not compound round after round.
- continue: the previous adapter is trained further on the new turns (as dialogue and as Q/A about what users
  stated), replayed old examples chosen by a replay policy, and rehearsal.

A mix is built for one user's adapter line: that user's turns and facts (plus, with rebuild, the facts an admin
shared), never another user's, so one user cannot change what another user's model says (this replaced the share
cap that guarded a single shared adapter against poisoning). PII scrubbing applies to every example. Pure data: no
training here."""
from __future__ import annotations

import logging
import random
from collections import Counter
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
    scrubbed: dict[str, int] = field(default_factory=dict)  # PII kind -> items replaced by placeholders
    strategy: str = "continue"
    fact_ids: list[int] = field(default_factory=list)  # ledger facts this run trained (rebuild: all current ones)
    new_fact_ids: list[int] = field(default_factory=list)  # of those, the ones the served version did not hold
    owner: str | None = None  # the user whose line it trains (None: every user's turns, as in unit tests)
    shared_turn_ids: list[int] = field(default_factory=list)  # other users' turns of the shared facts it trains

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
            "owner": self.owner,
            "shared_turn_ids": self.shared_turn_ids,
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


def build_mix(store: Store, *, augment: bool, per_fact: int, replay_ratio: float,
              replay_select: Callable[[list[Example], list[Example], int, int], list[Example]] | None,
              rehearsal: list[Example], seed: int, user: str | None = None,
              scrub: Callable[[Example], Example] | None = None) -> Mix:
    """The continue strategy's mix for `user`'s line: the user's new turns, then replay of the user's learned
    turns and rehearsal. The replay count is replay_ratio × new examples. `scrub` (PII) is applied to every
    example, whatever its source, as the last step. (Shared facts are learned by the rebuild strategy only.)"""
    new_rows = store.learnable_turns(consolidated=False, user=user)
    new_examples: list[Example] = []
    for owner, turns in _by_conversation(new_rows).values():
        new_examples += conversation_examples(owner, turns, "new", augment, per_fact, seed)
    pool: list[Example] = []
    for owner, turns in _by_conversation(store.learnable_turns(consolidated=True, user=user)).values():
        pool += conversation_examples(owner, turns, "replay", augment, per_fact, seed)
    n_replay = min(len(pool), round(replay_ratio * len(new_examples)))
    replay = replay_select(pool, new_examples, n_replay, seed) if (n_replay and replay_select) else []
    examples, scrubbed = _scrubbed_and_shuffled(new_examples + replay + list(rehearsal), scrub, seed)
    return Mix(examples, [t.id for _, t in new_rows], len(pool), counts=dict(Counter(e.source for e in examples)),
               scrubbed=scrubbed, owner=user)


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
                     rehearsal: list[Example], seed: int, user: str | None = None,
                     scrub: Callable[[Example], Example] | None = None) -> Mix:
    """The rebuild strategy's mix for `user`'s line: every current fact of `facts` (FactStore.current_for: the
    user's own and the shared ones; those the served version already holds count as "replay", the others as new
    "augment" examples) + rehearsal. The turns consolidated are the user's new learnable ones."""
    new_rows = store.learnable_turns(consolidated=False, user=user)
    new_examples = [e for f in facts if f.id not in held for e in fact_examples(f, per_fact, "augment")]
    old_examples = [e for f in facts if f.id in held for e in fact_examples(f, per_fact, "replay")]
    examples, scrubbed = _scrubbed_and_shuffled(new_examples + old_examples + list(rehearsal), scrub, seed)
    fact_ids = sorted(f.id for f in facts)
    shared_turns = sorted({f.turn_id for f in facts if user is not None and f.owner != user and f.turn_id})
    return Mix(examples, [t.id for _, t in new_rows], len(old_examples),
               counts=dict(Counter(e.source for e in examples)), scrubbed=scrubbed, strategy="rebuild",
               fact_ids=fact_ids, new_fact_ids=[i for i in fact_ids if i not in held], owner=user,
               shared_turn_ids=shared_turns)


def example_to_dict(e: Example) -> dict:
    return asdict(e)
