"""Forgetting: remove conversations from every place they live — SQLite (rows deleted with secure_delete, then
the WAL checkpointed and the file vacuumed), the FAISS index and its saved file, and so every future training
mix — and name the adapter versions that were trained on them, from the data lineage in their manifests.

Weights cannot unlearn a turn, so `withdraw_tainted` (run by chatbot.learning.retrain) withdraws every tainted
version (its adapter weights are deleted; the folder stays as a record with status "withdrawn"), serves the newest
version not trained on the forgotten turns (or the base) and marks the remaining turns those versions had learned
as new again; the retrain then consolidates them into a fresh version. Turn ids are never reused (AUTOINCREMENT),
so "listed in a manifest but not in the database" means forgotten, and `retrain` can run any time after the forget.

Each user's knowledge lives in that user's adapter line (chatbot.core.lines), so forgetting a whole user deletes
that line, and no other user's adapter needs retraining unless an admin had shared some of the user's facts.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chatbot.core.lines import AdapterLines
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
    user: str | None = None  # a whole user was forgotten
    deleted_versions: list[str] = field(default_factory=list)  # that user's adapter line, deleted with the user

    def to_dict(self) -> dict:
        return asdict(self)

    def message(self) -> str:
        s = (f"forgot {self.conversations} conversation(s): {self.turns} turn(s) deleted from the database, "
             f"{self.vectors} vector(s) from the index")
        if not self.compacted:
            s += " (the database was busy: rows are deleted and zeroed, the file will be vacuumed by the next forget)"
        if self.user is not None:
            s += (f".\nUser {self.user!r}'s adapters were deleted ({', '.join(self.deleted_versions)})"
                  if self.deleted_versions else f".\nUser {self.user!r} had no adapter")
        tainted = self.versions + self.inherited
        if tainted:
            s += (f".\n{'Other users' if self.user else 'Adapter'} versions trained on them"
                  f"{' (facts an admin had shared)' if self.user else ''}: {', '.join(self.versions)}"
                  + (f" (and {', '.join(self.inherited)}, continued from them)" if self.inherited else "")
                  + ". Their weights may still reflect what was said; retrain without it: `chatbot forget --retrain`")
        elif self.user is not None:
            s += "; no other user's adapter was trained on their data: nobody else needs retraining."
        else:
            s += ". No adapter version was trained on them."
        return s


def _lineage_ids(manifest: dict) -> set[int]:
    """The turns a version was trained on (a rebuilt version: every turn whose facts it holds)."""
    return (set(manifest.get("new_turn_ids", [])) | set(manifest.get("replay_turn_ids", []))
            | set(manifest.get("held_turn_ids", [])) | set(manifest.get("shared_turn_ids", [])))


def tainted_versions(lines: AdapterLines, turn_ids: set[int]) -> tuple[list[str], list[str]]:
    """(versions of any line whose manifest lists any of `turn_ids`, versions continued from a tainted one),
    oldest first."""
    direct: list[str] = []
    inherited: list[str] = []
    for registry in lines.lines():
        d, i = _tainted_in(registry, turn_ids)
        direct += d
        inherited += i
    number = lambda name: int(name[1:])  # noqa: E731
    return sorted(direct, key=number), sorted(inherited, key=number)


def forgotten_turn_ids(registry: Registry, store: Store) -> set[int]:
    """Turn ids some version of this line was trained on that the database no longer has."""
    listed: set[int] = set()
    for v in registry.versions():
        listed |= _lineage_ids(v.manifest)
    return listed - store.existing_turn_ids(listed)


def forgotten_among(store: Store, manifest: dict) -> int:
    """How many turns of a just-trained mix were forgotten while it trained."""
    ids = _lineage_ids(manifest)
    return len(ids - store.existing_turn_ids(ids))


def forget_conversations(store: Store, buffer: Buffer, lines: AdapterLines | None, conversation_ids: list[int],
                         user: str | None = None) -> Forgotten:
    """Delete the conversations everywhere; report lineage. Forgetting a whole `user` also deletes the user row,
    the user's ledger rows and the user's adapter line (a run of that user still training when this happens finds
    its turns gone and withdraws its candidate)."""
    turn_ids = store.turn_ids_in(conversation_ids)
    deleted: list[str] = []
    if user is not None and lines is not None:
        deleted = lines.remove(user)
    direct, inherited = tainted_versions(lines, set(turn_ids)) if lines is not None else ([], [])
    n_turns = store.delete_conversations(conversation_ids, user=user)  # their ledger facts go with the turns
    if user is not None:  # and the facts the user typed in as corrections (no turn of their own)
        facts = FactStore(store.path)
        try:
            facts.forget_user(user)
        finally:
            facts.close()
    vectors = buffer.remove(turn_ids)  # also saves the index file without them
    compacted = store.compact()
    log.info("forgot %d conversation(s), %d turn(s); adapters deleted: %s; tainted versions: %s",
             len(conversation_ids), n_turns, ", ".join(deleted) or "none", ", ".join(direct + inherited) or "none")
    return Forgotten(len(conversation_ids), n_turns, vectors, compacted, direct, inherited, user, deleted)


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


def withdraw_tainted(home: Path, store: Store, default_user: str = "me") -> Withdrawal:
    """Under the consolidation lock, in every user's line: serve the newest untainted ancestor of the served
    version, delete the weights of every version trained (directly or by inheritance) on forgotten turns, and make
    their other turns new."""
    lines = AdapterLines(Paths(home).adapters, default_user)
    withdrawn: list[str] = []
    serving: list[str] = []
    relearn = 0
    with run_lock(Path(home)):
        for registry in lines.lines():
            one = _withdraw_line(store, registry)
            withdrawn += one.withdrawn
            relearn += one.relearn_turns
            if one.withdrawn:
                serving.append(f"{one.serving} to {registry.owner}")
    return Withdrawal(withdrawn, ", ".join(serving) or "unchanged", relearn)


def _withdraw_line(store: Store, registry: Registry) -> Withdrawal:
    direct, inherited = _tainted_in(registry, forgotten_turn_ids(registry, store))
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
    log.info("user %r: withdrew %s; serving %s; %d turn(s) to relearn", registry.owner, ", ".join(tainted) or "none",
             serving, relearn)
    return Withdrawal(tainted, serving, relearn)


def _tainted_in(registry: Registry, turn_ids: set[int]) -> tuple[list[str], list[str]]:
    direct: list[str] = []
    inherited: list[str] = []
    for v in registry.versions():
        if _lineage_ids(v.manifest) & turn_ids:
            direct.append(v.name)
        elif v.manifest.get("continued_from") in direct + inherited:
            inherited.append(v.name)
    return direct, inherited

