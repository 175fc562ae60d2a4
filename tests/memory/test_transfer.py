import json

from chatbot.memory.buffer import Buffer
from chatbot.memory.store import Store
from chatbot.memory.transfer import export_jsonl, import_jsonl


def open_buffer(home, embedder):
    return Buffer(Store(home / "db.sqlite3"), embedder, home / "index.faiss")


GOOD = [
    {"messages": [{"role": "user", "content": "My dog is called Rex."}, {"role": "assistant", "content": "Nice!"}]},
    {"user": "bob", "learn": False, "messages": [{"role": "user", "content": "Private stuff."}]},
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "My PIN is 42", "learn": False},
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
    assert rows[1] == {"user": "bob", "learn": False, "messages": [{"role": "user", "content": "Private stuff."}]}
    assert rows[2]["messages"][1] == {"role": "user", "content": "My PIN is 42", "learn": False}
    only_bob = tmp_path / "bob.jsonl"
    assert export_jsonl(only_bob, a.store, user="bob") == 1
