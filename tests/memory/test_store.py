import os
import sqlite3
import stat
import time

import pytest

from chatbot.memory.store import Store, StoreError, clean_text


def test_turns_are_durable_and_wal(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    cid = store.new_conversation("ann")
    store.add_turn(cid, "user", "hello")
    store.add_turn(cid, "assistant", "hi there")
    # A second, independent connection (another process would see the same) sees committed turns.
    other = sqlite3.connect(tmp_path / "db.sqlite3")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = other.execute("SELECT role, text, learn, consolidated_in FROM turns ORDER BY id").fetchall()
    assert rows == [("user", "hello", 1, None), ("assistant", "hi there", 1, None)]
    assert store.conversation(cid).title == "hello"
    assert store.counts() == {"users": 1, "conversations": 1, "turns": 2, "unlearned": 2}


def test_learn_flags_and_superseded(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    cid = store.new_conversation("ann")
    a = store.add_turn(cid, "user", "secret")
    b = store.add_turn(cid, "assistant", "old reply")
    store.set_turn_learn(a, False)
    store.supersede(b)
    assert not store.turn(a).learn
    assert [t.id for t in store.turns(cid)] == [a]
    assert store.indexable_ids() == {a}
    assert store.counts()["unlearned"] == 0


def test_clean_text_handles_control_chars_and_bad_utf8():
    raw = b"ok\x00bell\x07 caf\xe9\n".decode("utf-8", "surrogateescape")
    cleaned = clean_text(raw)
    assert "\x00" not in cleaned and "\x07" not in cleaned
    cleaned.encode("utf-8")  # storable
    assert cleaned.startswith("okbell caf") and cleaned.endswith("\n")


def test_import_is_deduplicated(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    msgs = [("user", "I have a dog"), ("assistant", "Nice")]
    assert store.import_conversation("ann", msgs) is not None
    assert store.import_conversation("ann", msgs) is None
    assert store.import_conversation("bob", msgs) is not None  # same words, other user: another conversation
    assert store.counts()["conversations"] == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_database_gives_clear_error(tmp_path):
    path = tmp_path / "db.sqlite3"
    Store(path).close()
    path.chmod(stat.S_IRUSR)
    with pytest.raises(StoreError, match="read-only|cannot open"):
        s = Store(path)
        s.add_turn(s.new_conversation("ann"), "user", "x")


def test_read_only_database_via_uri_gives_clear_error(tmp_path):
    # Works as root too: a database whose folder is not writable and whose WAL cannot be created.
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    cid = store.new_conversation("ann")
    store.close()
    ro = Store.__new__(Store)
    ro.path, ro._timeout = path, 1.0
    import threading
    ro._local = threading.local()
    ro._local.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    ro._local.db.row_factory = sqlite3.Row
    with pytest.raises(StoreError, match="read-only"):
        ro.add_turn(cid, "user", "x")


def test_locked_database_gives_clear_error(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = Store(path, timeout=0.2)
    cid = store.new_conversation("ann")
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.add_turn(cid, "user", "x")
    finally:
        locker.execute("ROLLBACK")
    assert store.add_turn(cid, "user", "x") > 0  # nothing broken once the lock is gone


def test_opening_an_existing_database_takes_no_write_lock(tmp_path):
    """The dashboard opens the database every few seconds: opening must not queue behind the chat's writes."""
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    cid = store.new_conversation("ann")
    store.add_turn(cid, "user", "hello")
    store.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO users(name, created_at) VALUES ('bob', 0)")
    try:
        started = time.monotonic()
        reader = Store(path, timeout=0.2)
        assert [t.text for t in reader.turns(cid)] == ["hello"]
        assert time.monotonic() - started < 0.2
        reader.close()
    finally:
        writer.execute("ROLLBACK")
