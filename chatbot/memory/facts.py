"""The knowledge ledger: one row per fact a user stated — who said it (owner), the statement as said, a
second-person answer, the key a correct answer must contain, the question forms, the source turn, when, and
what became of it (pending, learned in vN, superseded by a later fact, forgotten). Same SQLite file as the turns.

The turns stay the truth; the ledger is derived from them (chatbot.learning.ledger extracts the facts of every
learnable user turn once, off the chat path) and consolidation trains from it. A fact's effective status is read,
not stored twice:
  - forgotten: `chatbot facts forget` erased its text; it is never trained again;
  - superseded: a later fact of the same owner replaced it (a correction) and that fact is still current;
  - ineligible: its turn was marked "don't learn" (or regenerated) after extraction: not trained, not listed;
  - learned: the served adapter version holds it (`learned_in`, kept by chatbot.memory.served);
  - pending: current, not in the served weights yet.
Deleting a conversation deletes its facts (ON DELETE CASCADE).

Facts are private to their owner: consolidation trains each user's facts into that user's adapter line. An admin
can share a conversation (every fact read from it) or one fact; shared facts are trained into every user's
adapter (`current_for`). Nothing is shared unless marked."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from chatbot.memory.db import Database, chunks

FactStatus = Literal["pending", "learned", "superseded", "forgotten", "ineligible"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,                       -- the user who stated it
    turn_id INTEGER REFERENCES turns(id) ON DELETE CASCADE,  -- NULL: entered with `chatbot facts correct`
    statement TEXT NOT NULL,                   -- as said
    answer TEXT NOT NULL,                      -- second person: "Your dog is called Rex."
    key TEXT NOT NULL,                         -- what a correct answer must contain: "Rex"
    questions TEXT NOT NULL,                   -- JSON list of first-person question forms
    extractor TEXT NOT NULL,                   -- "rules", "model:<name>", "user" (a correction typed in)
    created_at REAL NOT NULL,
    supersedes TEXT NOT NULL DEFAULT '[]',     -- JSON list of fact ids this one replaced
    superseded_by INTEGER REFERENCES facts(id) ON DELETE SET NULL,
    forgotten INTEGER NOT NULL DEFAULT 0,      -- 1: text erased, never trained again
    learned_in TEXT                            -- the served version that holds it; NULL = not in the weights
);
CREATE INDEX IF NOT EXISTS facts_by_owner ON facts(owner, id);
CREATE INDEX IF NOT EXISTS facts_by_turn ON facts(turn_id);
CREATE TABLE IF NOT EXISTS shared_conversations (  -- an admin shared it: its facts are learned by every user
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shared_facts (
    fact_id INTEGER PRIMARY KEY REFERENCES facts(id) ON DELETE CASCADE,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS extracted_turns (
    turn_id INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,
    extractor TEXT NOT NULL,
    at REAL NOT NULL
);
"""

# A turn's facts count while the turn may be learned: the same condition as Store.learnable_turns.
_ELIGIBLE = ("(f.turn_id IS NULL OR EXISTS (SELECT 1 FROM turns t JOIN conversations c ON c.id = t.conversation_id"
             " WHERE t.id = f.turn_id AND t.learn = 1 AND c.learn = 1 AND t.status = 'complete'))")
_SHARED = ("(EXISTS (SELECT 1 FROM shared_facts s WHERE s.fact_id = f.id) OR EXISTS (SELECT 1 FROM turns t"
           " JOIN shared_conversations s ON s.conversation_id = t.conversation_id WHERE t.id = f.turn_id))")


@dataclass(frozen=True)
class LedgerFact:
    id: int
    owner: str
    turn_id: int | None
    statement: str
    answer: str
    key: str
    questions: tuple[str, ...]
    extractor: str
    created_at: float
    supersedes: tuple[int, ...]
    superseded_by: int | None
    forgotten: bool
    learned_in: str | None
    eligible: bool
    status: FactStatus
    shared: bool = False  # learned by every user's adapter (an admin shared it or its conversation)

    @property
    def current(self) -> bool:
        """Trained from: neither forgotten, nor superseded, nor from a turn that may not be learned."""
        return self.status in ("pending", "learned")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["questions"], d["supersedes"] = list(self.questions), list(self.supersedes)
        return d


@dataclass(frozen=True)
class NewFact:
    """A fact to add: what an extractor found (chatbot.learning.ledger turns augment.Fact into this)."""
    statement: str
    answer: str
    key: str
    questions: tuple[str, ...]


class FactStore(Database):
    """The facts table and the record of which turns were read by an extractor."""

    SCHEMA = _SCHEMA
    TABLES = ("facts", "extracted_turns", "shared_conversations", "shared_facts")

    def __init__(self, path: str | Path, timeout: float = 10.0):
        super().__init__(path, timeout)

    # -- reading ---------------------------------------------------------------------------------------------
    def facts(self, user: str | None = None, ids: Iterable[int] | None = None) -> list[LedgerFact]:
        """Every fact (of `user`, or with these ids), oldest first, with its effective status."""
        where, args = [], []
        if user is not None:
            where.append("f.owner = ?")
            args.append(user)
        rows = []
        if ids is not None:
            for chunk, marks in chunks(list(ids)):
                rows += self._select(" AND ".join([*where, f"f.id IN ({marks})"]), (*args, *chunk))
        else:
            rows = self._select(" AND ".join(where), tuple(args))
        rows.sort(key=lambda r: r["id"])
        eligible = {r["id"]: bool(r["eligible"]) for r in rows}
        by = {r["superseded_by"] for r in rows if r["superseded_by"] is not None}
        replacing = self._eligible_of(by - set(eligible))
        eligible_all = {**replacing, **eligible}
        return [_fact(r, eligible_all) for r in rows]

    def get(self, fact_id: int) -> LedgerFact | None:
        found = self.facts(ids=[fact_id])
        return found[0] if found else None

    def current(self, user: str | None = None) -> list[LedgerFact]:
        """The facts to train: not forgotten, not superseded, from a learnable turn (or typed in)."""
        return [f for f in self.facts(user) if f.current]

    def current_for(self, user: str) -> list[LedgerFact]:
        """What `user`'s adapter is trained on: the user's own current facts and every shared current fact."""
        return [f for f in self.facts() if f.current and (f.owner == user or f.shared)]

    def owners(self) -> list[str]:
        return [r["owner"] for r in self._query("SELECT DISTINCT owner FROM facts ORDER BY owner")]

    def unread_turns(self) -> list[tuple[str, int, str]]:
        """(user, turn id, text) of learnable user turns no extractor has read yet, oldest first."""
        rows = self._query(
            "SELECT t.id, t.text, u.name AS user FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " JOIN users u ON u.id = c.user_id LEFT JOIN extracted_turns e ON e.turn_id = t.id"
            " WHERE e.turn_id IS NULL AND t.role = 'user' AND t.learn = 1 AND c.learn = 1"
            " AND t.status = 'complete' ORDER BY t.id")
        return [(r["user"], r["id"], r["text"]) for r in rows]

    # -- writing ---------------------------------------------------------------------------------------------
    def record(self, owner: str, turn_id: int | None, found: list[tuple[NewFact, list[int]]],
               extractor: str) -> list[int]:
        """Add the facts read from one turn (each with the ids of earlier facts it supersedes) and mark the turn
        read, in one transaction: a crash leaves the turn unread, never half of its facts. Returns the new ids."""
        now = time.time()
        ids: list[int] = []
        with self._tx() as db:
            if turn_id is not None:
                if db.execute("SELECT 1 FROM extracted_turns WHERE turn_id = ?", (turn_id,)).fetchone():
                    return []  # read meanwhile by another process
                if not db.execute("SELECT 1 FROM turns WHERE id = ?", (turn_id,)).fetchone():
                    return []  # forgotten meanwhile
            for fact, replaces in found:
                cur = db.execute(
                    "INSERT INTO facts(owner, turn_id, statement, answer, key, questions, extractor, created_at,"
                    " supersedes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (owner, turn_id, fact.statement, fact.answer, fact.key, json.dumps(list(fact.questions)),
                     extractor, now, json.dumps(sorted(replaces))))
                ids.append(cur.lastrowid)
                for old in replaces:
                    db.execute("UPDATE facts SET superseded_by = ? WHERE id = ? AND owner = ?",
                               (cur.lastrowid, old, owner))
            if turn_id is not None:
                db.execute("INSERT INTO extracted_turns(turn_id, extractor, at) VALUES (?, ?, ?)",
                           (turn_id, extractor, now))
        return ids

    def forget(self, fact_id: int) -> bool:
        """Erase a fact's text (the row stays as a tombstone with status "forgotten"); False if there is none."""
        with self._tx() as db:
            n = db.execute("UPDATE facts SET forgotten = 1, statement = '', answer = '', key = '', questions = '[]'"
                           " WHERE id = ?", (fact_id,)).rowcount
        return bool(n)

    def forget_user(self, user: str) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM facts WHERE owner = ?", (user,)).rowcount

    def share_conversation(self, conversation_id: int, shared: bool = True) -> None:
        with self._tx() as db:
            if shared:
                db.execute("INSERT OR IGNORE INTO shared_conversations(conversation_id, at) VALUES (?, ?)",
                           (conversation_id, time.time()))
            else:
                db.execute("DELETE FROM shared_conversations WHERE conversation_id = ?", (conversation_id,))

    def share_fact(self, fact_id: int, shared: bool = True) -> None:
        with self._tx() as db:
            if shared:
                db.execute("INSERT OR IGNORE INTO shared_facts(fact_id, at) VALUES (?, ?)", (fact_id, time.time()))
            else:
                db.execute("DELETE FROM shared_facts WHERE fact_id = ?", (fact_id,))

    def shared_conversations(self) -> list[int]:
        return [r["conversation_id"] for r in self._query("SELECT conversation_id FROM shared_conversations")]

    def set_learned(self, held: dict[int, str], owner: str | None = None) -> int:
        """Make every fact's (of `owner`, or all) learned_in equal `held` (fact id → version; absent = not in the
        owner's served weights)."""
        mine = ("SELECT id, learned_in FROM facts WHERE owner = ?", (owner,)) if owner is not None else \
            ("SELECT id, learned_in FROM facts", ())
        with self._tx() as db:
            before = {r["id"]: r["learned_in"] for r in db.execute(*mine)}
            n = 0
            for fid, version in before.items():
                if held.get(fid) != version:
                    n += db.execute("UPDATE facts SET learned_in = ? WHERE id = ?", (held.get(fid), fid)).rowcount
        return n

    # -- helpers ---------------------------------------------------------------------------------------------
    def _select(self, where: str, args: tuple) -> list:
        return self._query(f"SELECT f.*, {_ELIGIBLE} AS eligible, {_SHARED} AS shared FROM facts f"
                           + (f" WHERE {where}" if where else ""), args)

    def _eligible_of(self, ids: set[int]) -> dict[int, bool]:
        out: dict[int, bool] = {}
        for chunk, marks in chunks(sorted(ids)):
            for r in self._query(f"SELECT f.id, {_ELIGIBLE} AS eligible FROM facts f WHERE f.id IN ({marks})",
                                 tuple(chunk)):
                out[r["id"]] = bool(r["eligible"])
        return out


def _fact(r, eligible: dict[int, bool]) -> LedgerFact:
    by = r["superseded_by"]
    if r["forgotten"]:
        status: FactStatus = "forgotten"
    elif by is not None and eligible.get(by, False):
        # while the fact that replaced it may be learned (a forgotten correction still says the old value was wrong)
        status = "superseded"
    elif not r["eligible"]:
        status = "ineligible"
    else:
        status = "learned" if r["learned_in"] else "pending"
    return LedgerFact(r["id"], r["owner"], r["turn_id"], r["statement"], r["answer"], r["key"],
                      tuple(json.loads(r["questions"])), r["extractor"], r["created_at"],
                      tuple(json.loads(r["supersedes"])), by, bool(r["forgotten"]), r["learned_in"],
                      bool(r["eligible"]), status, bool(r["shared"]))
