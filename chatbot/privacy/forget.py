"""Forgetting: remove conversations from every place they live — SQLite (rows deleted with secure_delete, then
the WAL checkpointed and the file vacuumed), the FAISS index and its saved file, and so every future training
mix — and name the adapter versions that were trained on them, from the data lineage in their manifests.

Weights cannot unlearn a turn, so `withdraw_tainted` (run by chatbot.learning.retrain) withdraws every tainted
version (its adapter weights are deleted; the folder stays as a record with status "withdrawn"), serves the newest
version not trained on the forgotten turns (or the base) and marks the remaining turns those versions had learned
as new again; the retrain then consolidates them into a fresh version. Turn ids are never reused (AUTOINCREMENT),
so "listed in a manifest but not in the database" means forgotten, and `retrain` can run any time after the forget.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chatbot.core.lock import run_lock
from chatbot.core.paths import Paths
from chatbot.core.registry import BASE, Registry, VersionStatus
from chatbot.memory.buffer import Buffer
from chatbot.memory.facts import FactStore
from chatbot.memory.served import serve
from chatbot.memory.store import Store

log = logging.getLogger(__name__)
REASON = "trained on forgotten turns"


@dataclass
class Forgotten:
    conversations: int
    turns: int
    vectors: int  # removed from the FAISS index (the file is saved at once)
    # WAL checkpointed and database vacuumed (False: another process kept it busy; rows are gone anyway)
    compacted: bool
    versions: list[str] = field(default_factory=list)  # manifests list some of the turns
    inherited: list[str] = field(default_factory=list)  # continued from one of those, so their weights carry it too

    def to_dict(self) -> dict:
        return asdict(self)

    def message(self) -> str:
        s = (f"forgot {self.conversations} conversation(s): {self.turns} turn(s) deleted from the database, "
             f"{self.vectors} vector(s) from the index")
        if not self.compacted:
            s += " (the database was busy: rows are deleted and zeroed, the file will be vacuumed by the next forget)"
        tainted = self.versions + self.inherited
        if tainted:
            s += (f".\nAdapter versions trained on them: {', '.join(self.versions)}"
                  + (f" (and {', '.join(self.inherited)}, continued from them)" if self.inherited else "")
                  + ". Their weights may still reflect what was said; retrain without it: `chatbot forget --retrain`")
        else:
            s += ". No adapter version was trained on them."
        return s


def _lineage_ids(manifest: dict) -> set[int]:
    """The turns a version was trained on (a rebuilt version: every turn whose facts it holds)."""
    return (set(manifest.get("new_turn_ids", [])) | set(manifest.get("replay_turn_ids", []))
            | set(manifest.get("held_turn_ids", [])))


def tainted_versions(registry: Registry, turn_ids: set[int]) -> tuple[list[str], list[str]]:
    """(versions whose manifest lists any of `turn_ids`, versions continued from a tainted one), oldest first."""
    direct: list[str] = []
    inherited: list[str] = []
    tainted: set[str] = set()
    for v in registry.versions():
        if _lineage_ids(v.manifest) & turn_ids:
            direct.append(v.name)
            tainted.add(v.name)
        elif v.manifest.get("continued_from") in tainted:
            inherited.append(v.name)
            tainted.add(v.name)
    return direct, inherited


def forgotten_turn_ids(registry: Registry, store: Store) -> set[int]:
    """Turn ids some version was trained on that the database no longer has."""
    listed: set[int] = set()
    for v in registry.versions():
        listed |= _lineage_ids(v.manifest)
    return listed - store.existing_turn_ids(listed)


def forgotten_among(store: Store, manifest: dict) -> int:
    """How many turns of a just-trained mix were forgotten while it trained."""
    ids = _lineage_ids(manifest)
    return len(ids - store.existing_turn_ids(ids))


def forget_conversations(store: Store, buffer: Buffer, registry: Registry | None, conversation_ids: list[int],
                         user: str | None = None) -> Forgotten:
    """Delete the conversations (and the user row when forgetting a whole user) everywhere; report lineage."""
    turn_ids = store.turn_ids_in(conversation_ids)
    direct, inherited = tainted_versions(registry, set(turn_ids)) if registry is not None else ([], [])
    n_turns = store.delete_conversations(conversation_ids, user=user)  # their ledger facts go with the turns
    if user is not None:  # and the facts the user typed in as corrections (no turn of their own)
        facts = FactStore(store.path)
        try:
            facts.forget_user(user)
        finally:
            facts.close()
    vectors = buffer.remove(turn_ids)  # also saves the index file without them
    compacted = store.compact()
    log.info("forgot %d conversation(s), %d turn(s); tainted versions: %s", len(conversation_ids), n_turns,
             ", ".join(direct + inherited) or "none")
    return Forgotten(len(conversation_ids), n_turns, vectors, compacted, direct, inherited)


@dataclass
class Withdrawal:
    withdrawn: list[str]  # versions whose weights were deleted
    serving: str  # what is served afterwards
    relearn_turns: int  # turns made new again (learned by withdrawn versions, not forgotten)

    def message(self) -> str:
        if not self.withdrawn and not self.relearn_turns:
            return "no adapter version was trained on forgotten turns: nothing to retrain"
        return (f"withdrew {', '.join(self.withdrawn)} (adapter weights deleted); serving {self.serving}; "
                f"{self.relearn_turns} remaining turn(s) they had learned will be consolidated again")


def withdraw_tainted(home: Path, store: Store) -> Withdrawal:
    """Under the consolidation lock: serve the newest untainted ancestor of the served version, delete the weights
    of every version trained (directly or by inheritance) on forgotten turns, and make their other turns new."""
    registry = Registry(Paths(home).adapters)
    with run_lock(Path(home)):
        direct, inherited = tainted_versions(registry, forgotten_turn_ids(registry, store))
        bad = set(direct + inherited)
        if not bad:
            return Withdrawal([], registry.current(), 0)
        tainted = [n for n in direct + inherited if registry.get(n).status != VersionStatus.WITHDRAWN]
        serving = registry.current()
        while serving in bad:
            serving = registry.get(serving).manifest.get("continued_from", BASE)
        relearn = store.count_learned_by(sorted(bad))
        serve(store, registry, serving)  # their turns are new again: the marks follow the served lineage
        for name in tainted:
            registry.withdraw(name, REASON)
        log.info("withdrew %s; serving %s; %d turn(s) to relearn", ", ".join(tainted) or "none", serving, relearn)
        return Withdrawal(tainted, serving, relearn)

