"""SQLite (WAL) conversation store: the source of truth for users, conversations and turns.

Every write is its own committed transaction, so a turn acknowledged to the UI survives a crash (kill -9).
Connections are per thread (sqlite3 objects must not cross threads); WAL lets readers run beside the writer.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chatbot.memory.db import Database, StoreError, chunks

__all__ = ["Conversation", "Role", "Store", "StoreError", "Turn", "TurnStatus", "clean_text", "conversation_hash"]

Role = Literal["system", "user", "assistant"]  # the turns table's CHECK constraint
TurnStatus = Literal["complete", "stopped", "superseded"]  # stopped: the user pressed Stop; superseded: regenerated
ConversationSource = Literal["chat", "import"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: AUTOINCREMENT ids, so a forgotten turn's id is never reused by a new turn

_CONVERSATIONS = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    title TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    learn INTEGER NOT NULL DEFAULT 1,          -- 0: nothing of this conversation is learned
    source TEXT NOT NULL DEFAULT 'chat',       -- 'chat' or 'import'
    content_hash TEXT UNIQUE                   -- set for imports, so re-importing does not duplicate
);"""
_TURNS = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,      -- never reused: manifests and the FAISS index refer to turn ids
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    text TEXT NOT NULL,
    created_at REAL NOT NULL,                  -- received (user) / generation started (assistant)
    completed_at REAL NOT NULL,                -- committed
    learn INTEGER NOT NULL DEFAULT 1,          -- per-message "don't learn from this" sets 0
    status TEXT NOT NULL DEFAULT 'complete',   -- 'complete', 'stopped' (user pressed stop), 'superseded' (regenerated)
    consolidated_in TEXT                       -- adapter version that consolidated this turn, NULL = not yet
);"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations(user_id, updated_at);
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
{_CONVERSATIONS}
{_TURNS}
{_INDEXES}
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""


@dataclass(frozen=True)
class Turn:
    id: int
    conversation_id: int
    role: Role
    text: str
    created_at: float
    completed_at: float
    learn: bool
    status: TurnStatus
    consolidated_in: str | None


@dataclass(frozen=True)
class Conversation:
    id: int
    user: str
    title: str
    created_at: float
    updated_at: float
    learn: bool
    source: ConversationSource


def clean_text(text: str) -> str:
    """Make any input storable: drop NUL and other C0 control characters except tab/newline, and replace
    lone surrogates (what invalid UTF-8 decodes to with surrogateescape) so SQLite and tokenizers accept it."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    return "".join(ch for ch in text if ch in "\t\n" or not (ord(ch) < 32 or ord(ch) == 127))


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def conversation_hash(user: str, messages: Iterable[tuple[str, str]]) -> str:
    """Stable identity of an imported conversation (user + ordered role/text pairs)."""
    payload = json.dumps([user, [list(m) for m in messages]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Store(Database):
    """Thin, typed access to the conversations and turns in the SQLite database at `path`."""

    SCHEMA = _SCHEMA
    TABLES = ("meta", "users", "conversations", "turns")

    def __init__(self, path: str | Path, timeout: float = 10.0):
        super().__init__(path, timeout)
        self._migrate()

    def _migrate(self) -> None:
        """Schema 1 → 2: rebuild conversations/turns with AUTOINCREMENT ids (same rows, same ids), so ids of
        forgotten turns are never handed out again."""
        db = self._connect()
        try:
            rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN "
                              "('conversations', 'turns')").fetchall()
            old = {r["name"] for r in rows if "AUTOINCREMENT" not in r["sql"].upper()}
            if not old:
                return
            log.info("upgrading database %s to schema %d (%s)", self.path, SCHEMA_VERSION, ", ".join(sorted(old)))
            db.execute("PRAGMA foreign_keys=OFF")  # tables are dropped and renamed; cannot change inside a transaction
            db.execute("BEGIN IMMEDIATE")
            try:
                for table, create in (("conversations", _CONVERSATIONS), ("turns", _TURNS)):
                    if table in old:
                        db.execute(create.replace(f"IF NOT EXISTS {table} (", f"{table}_v2 ("))
                        db.execute(f"INSERT INTO {table}_v2 SELECT * FROM {table}")
                        db.execute(f"DROP TABLE {table}")
                        db.execute(f"ALTER TABLE {table}_v2 RENAME TO {table}")
                for stmt in filter(str.strip, _INDEXES.split(";")):
                    db.execute(stmt)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            raise self._explain(e) from None

    # -- users ---------------------------------------------------------------------------------------------
    def user_id(self, name: str, create: bool = True) -> int | None:
        rows = self._query("SELECT id FROM users WHERE name = ?", (name,))
        if rows:
            return rows[0]["id"]
        if not create:
            return None
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO users(name, created_at) VALUES (?, ?)", (name, time.time()))
            return db.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()["id"]

    # -- conversations -------------------------------------------------------------------------------------
    def user_names(self) -> list[str]:
        return [r["name"] for r in self._query("SELECT name FROM users ORDER BY name")]

    def new_conversation(self, user: str, title: str = "", learn: bool = True,
                         source: ConversationSource = "chat") -> int:
        uid = self.user_id(user)
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO conversations(user_id, title, created_at, updated_at, learn, source) VALUES (?,?,?,?,?,?)",
                (uid, clean_text(title)[:200], now, now, int(learn), source),
            )
            return int(cur.lastrowid)

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._query(
            "SELECT c.*, u.name AS user FROM conversations c JOIN users u ON u.id = c.user_id WHERE c.id = ?",
            (conversation_id,),
        )
        return _conversation(rows[0]) if rows else None

    def conversations(self, user: str | None = None, limit: int | None = None) -> list[Conversation]:
        sql = "SELECT c.*, u.name AS user FROM conversations c JOIN users u ON u.id = c.user_id"
        args: tuple = ()
        if user is not None:
            sql += " WHERE u.name = ?"
            args = (user,)
        sql += " ORDER BY c.updated_at DESC, c.id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_conversation(r) for r in self._query(sql, args)]

    def turn_counts(self, user: str | None = None) -> dict[int, int]:
        """conversation id -> its visible turns (superseded ones are not counted), of `user` or everyone;
        conversations without turns are absent."""
        sql = ("SELECT t.conversation_id AS id, COUNT(*) AS n FROM turns t"
               " JOIN conversations c ON c.id = t.conversation_id JOIN users u ON u.id = c.user_id"
               " WHERE t.status != 'superseded'")
        args: tuple = ()
        if user is not None:
            sql += " AND u.name = ?"
            args = (user,)
        sql += " GROUP BY t.conversation_id"
        return {r["id"]: r["n"] for r in self._query(sql, args)}

    def set_conversation_learn(self, conversation_id: int, learn: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE conversations SET learn = ? WHERE id = ?", (int(learn), conversation_id))
            _bump(db, "learn_seq")

    def import_conversation(
        self, user: str, messages: list[tuple[str, str]], learn: bool = True, title: str = "",
        turn_learn: Sequence[bool] | None = None,
    ) -> tuple[int, list[int]] | None:
        """Insert a whole conversation in one transaction, the user row and every learn flag included (a
        message's "don't learn" is never committed learnable, not even for a moment); None if the same one was
        imported before. `turn_learn`: one flag per message (default all true); a conversation with learn=False
        learns none of its turns. The flags are not part of the conversation's identity (conversation_hash)."""
        messages = [(role, clean_text(text)) for role, text in messages]
        flags = [True] * len(messages) if turn_learn is None else [bool(f) for f in turn_learn]
        if len(flags) != len(messages):
            raise ValueError(f"import_conversation: one learn flag per message ({len(flags)} for {len(messages)})")
        digest = conversation_hash(user, messages)
        now = time.time()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM conversations WHERE content_hash = ?", (digest,)).fetchone():
                return None
            db.execute("INSERT OR IGNORE INTO users(name, created_at) VALUES (?, ?)", (user, now))
            uid = db.execute("SELECT id FROM users WHERE name = ?", (user,)).fetchone()["id"]
            title = title or _title_from(messages)
            cid = db.execute(
                "INSERT INTO conversations(user_id, title, created_at, updated_at, learn, source, content_hash)"
                " VALUES (?,?,?,?,?, 'import', ?)",
                (uid, title, now, now, int(learn), digest),
            ).lastrowid
            ids = [
                int(db.execute(
                    "INSERT INTO turns(conversation_id, role, text, created_at, completed_at, learn)"
                    " VALUES (?,?,?,?,?,?)",
                    (cid, role, text, now, now, int(learn and m_learn)),
                ).lastrowid)
                for (role, text), m_learn in zip(messages, flags)
            ]
        return int(cid), ids

    # -- turns ---------------------------------------------------------------------------------------------
    def add_turn(
        self, conversation_id: int, role: Role, text: str, learn: bool = True, status: TurnStatus = "complete",
        created_at: float | None = None,
    ) -> int:
        """Commit one turn (durable when this returns) and touch the conversation."""
        now = time.time()
        text = clean_text(text)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO turns(conversation_id, role, text, created_at, completed_at, learn, status)"
                " VALUES (?,?,?,?,?,?,?)",
                (conversation_id, role, text, created_at or now, now, int(learn), status),
            )
            if role == "user":
                db.execute(
                    "UPDATE conversations SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END"
                    " WHERE id = ?",
                    (now, _title_from([(role, text)]), conversation_id),
                )
            else:
                db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            return int(cur.lastrowid)

    def turn(self, turn_id: int) -> Turn | None:
        rows = self._query("SELECT * FROM turns WHERE id = ?", (turn_id,))
        return _turn(rows[0]) if rows else None

    def turns(self, conversation_id: int, include_superseded: bool = False) -> list[Turn]:
        sql = "SELECT * FROM turns WHERE conversation_id = ?"
        if not include_superseded:
            sql += " AND status != 'superseded'"
        return [_turn(r) for r in self._query(sql + " ORDER BY id", (conversation_id,))]

    def turns_by_ids(self, ids: Iterable[int]) -> dict[int, Turn]:
        ids = list(ids)
        out: dict[int, Turn] = {}
        for chunk, marks in chunks(ids):
            rows = self._query(f"SELECT * FROM turns WHERE id IN ({marks})", tuple(chunk))
            out.update({r["id"]: _turn(r) for r in rows})
        return out

    def set_turn_learn(self, turn_id: int, learn: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE turns SET learn = ? WHERE id = ?", (int(learn), turn_id))
            _bump(db, "learn_seq")

    def supersede(self, turn_id: int) -> None:
        """Mark a reply as replaced by a regenerated one: kept for the record, never shown, indexed or learned."""
        with self._tx() as db:
            db.execute("UPDATE turns SET status = 'superseded', learn = 0 WHERE id = ?", (turn_id,))
            _bump(db, "learn_seq")

    def indexable_turns(self) -> Iterator[tuple[int, str]]:
        """(id, text) of every turn that belongs in the vector index, in id order."""
        db = self._connect()
        try:
            for row in db.execute("SELECT id, text FROM turns WHERE status != 'superseded' AND role != 'system'"
                                  " ORDER BY id"):
                yield row["id"], row["text"]
        except sqlite3.Error as e:
            raise self._explain(e) from None

    def indexable_ids(self) -> set[int]:
        return {r["id"] for r in self._query("SELECT id FROM turns WHERE status != 'superseded' AND role != 'system'")}

    def owners(self, turn_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
        """turn id -> (user name, conversation id), for filtering retrieved memories by user."""
        ids = list(turn_ids)
        out: dict[int, tuple[str, int]] = {}
        for chunk, marks in chunks(ids):
            for r in self._query(
                "SELECT t.id, u.name, t.conversation_id FROM turns t JOIN conversations c ON c.id = t.conversation_id"
                f" JOIN users u ON u.id = c.user_id WHERE t.id IN ({marks})",
                tuple(chunk),
            ):
                out[r["id"]] = (r["name"], r["conversation_id"])
        return out

    def learnable_turns(self, consolidated: bool, user: str | None = None) -> list[tuple[str, Turn]]:
        """(user, turn) of every turn (of `user`, or of everyone) that may be trained on: learn flag on turn and
        conversation, complete. consolidated=False: not yet in the user's adapter (new data); True: already
        consolidated (the replay pool)."""
        cond = "IS NOT NULL" if consolidated else "IS NULL"
        rows = self._query(
            "SELECT t.*, u.name AS user FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " JOIN users u ON u.id = c.user_id"
            f" WHERE t.learn = 1 AND c.learn = 1 AND t.status = 'complete' AND t.consolidated_in {cond}"
            + (" AND u.name = ?" if user is not None else "") + " ORDER BY t.conversation_id, t.id",
            (user,) if user is not None else ()
        )
        return [(r["user"], _turn(r)) for r in rows]

    def mark_consolidated(self, turn_ids: Iterable[int], version: str) -> int:
        """Record which adapter version learned these turns (only turns not consolidated before)."""
        ids = list(turn_ids)
        n = 0
        with self._tx() as db:
            for chunk, marks in chunks(ids):
                n += db.execute(
                    f"UPDATE turns SET consolidated_in = ? WHERE consolidated_in IS NULL AND id IN ({marks})",
                    (version, *chunk),
                ).rowcount
        return n

    def set_consolidated(self, held: dict[int, str], user: str | None = None) -> int:
        """Make every turn's consolidated_in (of `user`'s conversations, or of all) equal `held` (turn id →
        version; absent = not learned), in one transaction; returns how many turns changed
        (chatbot.memory.served keeps it equal to each user's served lineage)."""
        mine = ("SELECT t.id, t.consolidated_in FROM turns t JOIN conversations c ON c.id = t.conversation_id"
                " JOIN users u ON u.id = c.user_id WHERE u.name = ?", (user,)) if user is not None else \
            ("SELECT id, consolidated_in FROM turns", ())
        with self._tx() as db:
            rows = {r["id"]: r["consolidated_in"] for r in db.execute(*mine)}
            before = {tid: v for tid, v in rows.items() if v is not None}
            changed = [tid for tid, v in before.items() if held.get(tid) != v]
            changed += [tid for tid, v in held.items() if tid not in before and tid in rows]
            by_version: dict[str | None, list[int]] = {}
            for tid in changed:
                by_version.setdefault(held.get(tid), []).append(tid)
            n = 0
            for version, ids in by_version.items():
                for chunk, marks in chunks(ids):
                    n += db.execute(f"UPDATE turns SET consolidated_in = ? WHERE id IN ({marks})",
                                    (version, *chunk)).rowcount
        return n

    # -- forgetting ----------------------------------------------------------------------------------------
    def turn_ids_in(self, conversation_ids: Iterable[int]) -> list[int]:
        """Every turn of these conversations (system and superseded ones too)."""
        ids = list(conversation_ids)
        out: list[int] = []
        for chunk, marks in chunks(ids):
            out += [r["id"] for r in self._query(
                f"SELECT id FROM turns WHERE conversation_id IN ({marks}) ORDER BY id", tuple(chunk))]
        return out

    def existing_turn_ids(self, turn_ids: Iterable[int]) -> set[int]:
        """The subset of `turn_ids` still in the database (ids are never reused, so a missing id was forgotten)."""
        return set(self.turns_by_ids(turn_ids))

    def delete_conversations(self, conversation_ids: Iterable[int], user: str | None = None) -> int:
        """Delete conversations and all their turns (and the user row, if `user` is given) in one transaction,
        with secure_delete on (freed pages are zeroed). Bumps the forget counter that running buffers watch.
        Returns the number of turns deleted. Call compact() afterwards to purge the WAL and free pages."""
        ids = list(conversation_ids)
        n = 0
        with self._tx() as db:
            for chunk, marks in chunks(ids):
                n += db.execute(f"DELETE FROM turns WHERE conversation_id IN ({marks})", tuple(chunk)).rowcount
                db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", tuple(chunk))
            if user is not None:
                db.execute("DELETE FROM users WHERE name = ?", (user,))
            _bump(db, "forget_seq")
        return n

    def forget_seq(self) -> int:
        """How many forget operations ever ran (a running process re-checks its index when this changes)."""
        rows = self._query("SELECT value FROM meta WHERE key = 'forget_seq'")
        return int(rows[0]["value"]) if rows else 0

    def learn_stamp(self) -> tuple[int, int, int]:
        """Changes whenever the learnable and "don't learn" text may have changed: a turn was added (the highest
        turn id), forgotten (forget_seq), or a turn's or conversation's learn flag or a turn's status changed
        (learn_seq, bumped by set_turn_learn, set_conversation_learn and supersede). Three indexed lookups, for
        caching what is computed over every turn (the privacy canary's secrets)."""
        r = self._query("SELECT (SELECT COALESCE(MAX(id), 0) FROM turns) AS last,"
                        " (SELECT value FROM meta WHERE key = 'forget_seq') AS forgets,"
                        " (SELECT value FROM meta WHERE key = 'learn_seq') AS changes")[0]
        return int(r["last"]), int(r["forgets"] or 0), int(r["changes"] or 0)

    def compact(self, attempts: int = 5) -> bool:
        """After a secure delete: checkpoint the WAL into the database and truncate it (old page images of the
        deleted rows live in the WAL until then), then VACUUM (rewrites the file without free pages).
        Returns False if another process kept the database busy; the rows are deleted and zeroed either way."""
        db = self._connect()
        ok = False
        for attempt in range(attempts):
            try:
                busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                db.execute("VACUUM")
                busy = busy or db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                ok = not busy
            except sqlite3.Error as e:
                log.warning("compacting %s after a delete: %s (attempt %d)", self.path, e, attempt + 1)
            if ok:
                break
            time.sleep(0.2 * (attempt + 1))
        return ok

    def count_learned_by(self, versions: Iterable[str]) -> int:
        """How many turns `versions` are recorded as having learned (consolidated_in). Changing the marks is
        chatbot.memory.served's job: they follow the served lineage."""
        names = list(versions)
        if not names:
            return 0
        marks = ",".join("?" * len(names))
        return int(self._query(f"SELECT COUNT(*) AS n FROM turns WHERE consolidated_in IN ({marks})",
                               tuple(names))[0]["n"])

    def learn_blocked_turns(self) -> list[Turn]:
        """User turns that must never be learned: "don't learn" on the turn or on its conversation (the privacy
        canary's source)."""
        rows = self._query(
            "SELECT t.* FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " WHERE t.role = 'user' AND (t.learn = 0 OR c.learn = 0) AND t.status != 'superseded' ORDER BY t.id")
        return [_turn(r) for r in rows]

    def counts(self) -> dict[str, int]:
        row = self._query(
            "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM conversations) AS conversations,"
            " (SELECT COUNT(*) FROM turns WHERE status != 'superseded') AS turns,"
            " (SELECT COUNT(*) FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            "   WHERE t.learn = 1 AND c.learn = 1 AND t.status = 'complete' AND t.consolidated_in IS NULL) AS unlearned"
        )[0]
        return {k: int(row[k]) for k in row.keys()}


def _bump(db: sqlite3.Connection, key: str) -> None:
    """Add one to the counter `key` in meta, inside the caller's transaction."""
    db.execute("INSERT INTO meta(key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET "
               "value = CAST(value AS INTEGER) + 1", (key,))


def _title_from(messages: list[tuple[str, str]]) -> str:
    for role, text in messages:
        if role == "user" and text.strip():
            line = " ".join(text.split())
            return line[:60] + ("…" if len(line) > 60 else "")
    return ""


def _turn(r: sqlite3.Row) -> Turn:
    return Turn(r["id"], r["conversation_id"], r["role"], r["text"], r["created_at"], r["completed_at"],
                bool(r["learn"]), r["status"], r["consolidated_in"])


def _conversation(r: sqlite3.Row) -> Conversation:
    return Conversation(r["id"], r["user"], r["title"], r["created_at"], r["updated_at"], bool(r["learn"]), r["source"])
