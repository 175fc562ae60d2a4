"""One SQLite database file (WAL), shared by the tables of several owners: the conversation store
(chatbot.memory.store) and the probe results (chatbot.evaluation.results). This class owns what they share:
per-thread connections, transactions, clear errors, and creating a owner's tables once.

Opening does not take a write lock when the tables exist already (the dashboard opens the database every few
seconds; a write lock each time would queue behind the chat's writes)."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


class StoreError(RuntimeError):
    """A database problem, with what to do about it."""


def chunks(ids: list, size: int = 500) -> Iterator[tuple[list, str]]:
    """`ids` in slices small enough for one SQL statement (SQLite caps bound parameters), each with its "?,?,…"."""
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        yield chunk, ",".join("?" * len(chunk))


class Database:
    """Typed access classes subclass this and set SCHEMA (CREATE … IF NOT EXISTS statements) and TABLES."""

    SCHEMA = ""
    TABLES: tuple[str, ...] = ()

    def __init__(self, path: str | Path, timeout: float = 10.0):
        self.path = Path(path)
        self._timeout = timeout
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {self.path.parent}: {e}. Choose a writable --home.") from None
        if not self._has_tables():
            try:  # executescript runs its own transaction
                self._connect().executescript(f"BEGIN IMMEDIATE; {self.SCHEMA} COMMIT;")
            except sqlite3.Error as e:
                raise self._explain(e) from None

    def _has_tables(self) -> bool:
        rows = self._query("SELECT name FROM sqlite_master WHERE type = 'table'")
        return set(self.TABLES) <= {r["name"] for r in rows}

    # -- connections -------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # an acknowledged turn survives power loss, not just kill -9
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left in free pages
            except sqlite3.Error as e:
                raise self._explain(e) from None
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def _explain(self, e: sqlite3.Error) -> StoreError:
        msg = str(e)
        if "readonly" in msg or "read-only" in msg:
            return StoreError(f"database {self.path} is read-only: make it writable or choose another --home")
        if "locked" in msg or "busy" in msg:
            return StoreError(f"database {self.path} is locked by another process: wait, or stop the other process")
        if "not a database" in msg or "malformed" in msg:
            return StoreError(f"database {self.path} is corrupt ({msg}): restore it from a backup or move it away")
        if "unable to open" in msg:
            return StoreError(f"cannot open database {self.path}: check the folder exists and is writable")
        return StoreError(f"database {self.path}: {msg}")

    class _Tx:
        def __init__(self, owner: Database):
            self.owner = owner

        def __enter__(self) -> sqlite3.Connection:
            self.db = self.owner._connect()
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self.owner._explain(e) from None
            return self.db

        def __exit__(self, exc_type, exc, tb) -> bool:
            try:
                self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            except sqlite3.Error as e:
                if exc_type is None:
                    raise self.owner._explain(e) from None
            if isinstance(exc, sqlite3.Error):
                raise self.owner._explain(exc) from None
            return False

    def _tx(self) -> Database._Tx:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on error)."""
        return Database._Tx(self)

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        try:
            return self._connect().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise self._explain(e) from None

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
