import json
import sqlite3

import pytest

from chatbot.memory.buffer import Buffer
from chatbot.memory.store import Store
from chatbot.memory.transfer import export_jsonl, import_jsonl


def open_buffer(home, embedder):
    return Buffer(Store(home / "db.sqlite3"), embedder, home / "index.faiss")


GOOD = [
    {"messages": [{"role": "user", "content": "My dog is called Rex."}, {"role": "assistant", "content": "Nice!"}]},
    {"user": "bob", "learn": False, "messages": [{"role": "user", "content": "Private stuff."}]},
    {"messages": [{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "My PIN is 42", "learn": False},
                  {"role": "assistant", "content": "Noted."}]},
]


def write_lines(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            f.write((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n")


def test_import_reports_bad_lines_and_imports_good_ones(tmp_path, embedder):
    f = tmp_path / "in.jsonl"
    write_lines(f, [
        GOOD[0],
        b"{not json",
        {"messages": []},
        {"messages": [{"role": "robot", "content": "x"}]},
        b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',  # invalid UTF-8
        {"messages": [{"role": "assistant", "content": "only a reply"}]},
        GOOD[1],
        {"messages": [{"role": "user", "content": "x"}], "learn": "yes"},
        GOOD[2],
    ])
    buf = open_buffer(tmp_path, embedder)
    report = import_jsonl(f, buf.store, buf, default_user="me")
    assert (report.imported, report.duplicates, report.turns) == (3, 0, 6)
    assert [n for n, _ in report.errors] == [2, 3, 4, 5, 6, 8]
    assert "not valid JSON" in report.errors[0][1] and "UTF-8" in report.errors[3][1]
    assert len(buf) == 5  # system messages are not indexed
    assert buf.store.counts()["users"] == 2

    again = import_jsonl(f, buf.store, buf, default_user="me")
    assert (again.imported, again.duplicates) == (0, 3)
    assert buf.store.counts()["conversations"] == 3


def test_export_round_trips(tmp_path, embedder):
    src = tmp_path / "in.jsonl"
    write_lines(src, GOOD)
    a = open_buffer(tmp_path / "a", embedder)
    import_jsonl(src, a.store, a, default_user="me")
    out1 = tmp_path / "out1.jsonl"
    assert export_jsonl(out1, a.store) == 3
    b = open_buffer(tmp_path / "b", embedder)
    import_jsonl(out1, b.store, b, default_user="someone-else")
    out2 = tmp_path / "out2.jsonl"
    export_jsonl(out2, b.store)
    assert out1.read_text() == out2.read_text()
    rows = [json.loads(x) for x in out1.read_text().splitlines()]
    assert rows[1] == {"id": 2, "user": "bob", "learn": False,
                       "messages": [{"role": "user", "content": "Private stuff."}]}
    assert rows[2]["messages"][1] == {"role": "user", "content": "My PIN is 42", "learn": False}
    only_bob = tmp_path / "bob.jsonl"
    assert export_jsonl(only_bob, a.store, user="bob") == 1


def test_import_writes_dont_learn_flags_in_the_same_transaction(tmp_path, embedder):
    """A message marked "learn": false is never stored learnable, not even for a moment: a consolidation reading
    between two transactions (or a crash between them) would otherwise train on it. A trigger records the learn
    flag every turn row was inserted with; it must be the final one."""
    buf = open_buffer(tmp_path, embedder)
    db = sqlite3.connect(buf.store.path, isolation_level=None)
    db.executescript("CREATE TABLE inserted(turn_id INTEGER, learn INTEGER);"
                     "CREATE TRIGGER record AFTER INSERT ON turns BEGIN "
                     "INSERT INTO inserted VALUES (NEW.id, NEW.learn); END;")
    src = tmp_path / "in.jsonl"
    write_lines(src, GOOD)
    report = import_jsonl(src, buf.store, buf, default_user="me")
    assert report.imported == 3
    final = dict(db.execute("SELECT id, learn FROM turns"))
    assert dict(db.execute("SELECT turn_id, learn FROM inserted")) == final
    pin = db.execute("SELECT id FROM turns WHERE text = 'My PIN is 42'").fetchone()[0]
    assert final[pin] == 0
    assert all("PIN" not in t.text for _, t in buf.store.learnable_turns(consolidated=False))


def test_import_conversation_takes_per_message_flags(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    msgs = [("user", "My PIN is 42"), ("assistant", "Noted."), ("user", "I like tea")]
    cid, ids = store.import_conversation("ann", msgs, turn_learn=[False, True, True])
    assert [store.turn(i).learn for i in ids] == [False, True, True]
    # The flags are not part of a conversation's identity: the same messages are still a duplicate.
    assert store.import_conversation("ann", msgs) is None
    _, quiet = store.import_conversation("bob", msgs, learn=False, turn_learn=[True, True, True])
    assert not any(store.turn(i).learn for i in quiet)  # a don't-learn conversation learns none of its turns
    with pytest.raises(ValueError, match="one learn flag per message"):
        store.import_conversation("cy", msgs, turn_learn=[True])


def test_export_carries_ids_that_import_ignores(tmp_path, embedder):
    src = tmp_path / "in.jsonl"
    write_lines(src, [{**GOOD[0], "id": 41}, {**GOOD[1], "id": 7}])
    a = open_buffer(tmp_path / "a", embedder)
    report = import_jsonl(src, a.store, a, default_user="me")
    assert (report.imported, report.errors) == (2, [])
    ids = sorted(c.id for c in a.store.conversations())
    assert ids == [1, 2]  # the file's ids are not the database's
    out = tmp_path / "out.jsonl"
    export_jsonl(out, a.store)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ids
    assert import_jsonl(out, a.store, a, default_user="me").duplicates == 2  # ids are not part of the identity
    write_lines(src, [{**GOOD[0], "id": "one"}])
    assert "'id'" in import_jsonl(src, a.store, a, default_user="me").errors[0][1]
