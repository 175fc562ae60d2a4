"""Forgetting: gone from SQLite (secure delete: not even in the file bytes), from the FAISS index and its file,
from every future mix; the versions trained on it are named from their manifests and can be withdrawn and
retrained without it. Ownership is enforced; ids are never reused."""
import json
import sqlite3

import pytest
from conftest import chatbot, line, tiny_config

from chatbot.core.config import Config
from chatbot.core.fsio import write_json_atomic
from chatbot.core.lines import AdapterLines
from chatbot.core.registry import Registry, RegistryError
from chatbot.evaluation.gate import default_gate
from chatbot.learning.consolidate import _mix, consolidate
from chatbot.learning.retrain import retrain
from chatbot.memory.buffer import Buffer
from chatbot.memory.facts import FactStore
from chatbot.memory.index import VectorIndex
from chatbot.memory.store import Store
from chatbot.privacy.forget import forget_conversations, withdraw_tainted
from chatbot.runtime import open_runtime
from chatbot.serving.chat import InputRefused

CANARY = "ZEBRA-CANARY-7741"


def chat(rt, user, text, cid=None):
    events = list(rt.chat.send(user, text, cid))
    return events[0].conversation_id


def fake_version(registry: Registry, manifest: dict) -> str:
    staging = registry.staging()
    (staging / "adapter_model.safetensors").write_bytes(b"weights")
    write_json_atomic(staging / "manifest.json", manifest)
    return registry.commit(staging).name


def raw_bytes(db_path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def test_forget_conversation_everywhere_with_lineage(runtime):
    rt = runtime
    secret = chat(rt, "ann", f"My alarm code is {CANARY}.")
    chat(rt, "ann", "The code again: " + CANARY, secret)
    kept = chat(rt, "ann", "My dog is called Rex.")
    bobs = chat(rt, "bob", "I collect stamps.")
    rt.buffer.flush()
    secret_ids = rt.store.turn_ids_in([secret])
    assert CANARY.encode() in raw_bytes(rt.paths.db)

    registry = rt.chat.lines.line("ann")
    v1 = fake_version(registry, {"new_turn_ids": rt.store.turn_ids_in([bobs]), "continued_from": "base"})
    v2 = fake_version(registry, {"new_turn_ids": rt.store.turn_ids_in([kept]),
                                 "replay_turn_ids": secret_ids[:1], "continued_from": v1})
    v3 = fake_version(registry, {"new_turn_ids": [], "continued_from": v2})
    registry.promote(v3)
    rt.store.mark_consolidated(rt.store.turn_ids_in([kept]), v2)

    with pytest.raises(InputRefused, match="not found"):
        rt.chat.forget("bob", secret)  # someone else's conversation: refused, nothing deleted
    assert rt.store.turn_ids_in([secret]) == secret_ids

    report = rt.chat.forget("ann", secret)
    assert (report.conversations, report.turns, report.vectors) == (1, 4, 4) and report.compacted
    assert (report.versions, report.inherited) == ([v2], [v3])
    assert "chatbot forget --retrain" in report.message()

    # SQLite: rows gone, and the text is not left in free pages or the WAL (secure_delete + checkpoint + VACUUM).
    assert rt.store.conversation(secret) is None and rt.store.turns_by_ids(secret_ids) == {}
    assert CANARY.encode() not in raw_bytes(rt.paths.db)
    # FAISS: out of the live index and of the saved file.
    assert not set(secret_ids) & set(rt.buffer.index.ids().tolist())
    assert not set(secret_ids) & set(VectorIndex.load(rt.buffer.index_path, rt.buffer.embedder.dim).ids().tolist())
    # Every future mix.
    rt.store.mark_consolidated(rt.store.turn_ids_in([bobs]), v1)
    rt.config.train.replay_ratio = 10.0
    mix = _mix(rt.store, FactStore(rt.paths.db), line(rt.paths.home, "ann"), rt.config, None, [])
    assert CANARY not in "\n".join(e.text() for e in mix.examples)
    # Ids are never reused: a new turn gets a fresh id, so manifests keep pointing at the forgotten ones only.
    newer = rt.store.add_turn(rt.store.new_conversation("ann"), "user", "A new message.")
    assert newer > max(secret_ids)

    # Withdraw: serve the newest clean ancestor, delete tainted weights, relearn what they had learned.
    withdrawal = withdraw_tainted(rt.paths.home, rt.store)
    assert withdrawal.withdrawn == [v2, v3] and withdrawal.serving == f"{v1} to ann" and registry.current() == v1
    assert withdrawal.relearn_turns == 2 and rt.store.turn(rt.store.turn_ids_in([kept])[0]).consolidated_in is None
    for name in (v2, v3):
        assert registry.get(name).status == "withdrawn"
        assert not (registry.get(name).path / "adapter_model.safetensors").exists()
        with pytest.raises(RegistryError, match="withdrawn"):
            registry.promote(name)
    assert registry.get(v1).status != "withdrawn" and (registry.get(v1).path / "adapter_model.safetensors").exists()
    assert registry.rollback() == "base"  # rollback skips withdrawn versions


def test_index_saved_by_another_process_drops_forgotten_vectors(tmp_path, embedder):
    """`chatbot forget` while the app runs: the app's own index (in memory) must not write them back."""
    store = Store(tmp_path / "db.sqlite3")
    app = Buffer(store, embedder, tmp_path / "index.faiss", save_every=1000)
    cid = store.new_conversation("ann")
    ids = [app.log_turn(cid, "user", f"{CANARY} {i}") for i in range(3)]
    other = app.log_turn(store.new_conversation("ann"), "user", "keep me")
    app.flush()
    cli = Buffer(Store(tmp_path / "db.sqlite3"), embedder, tmp_path / "index.faiss")
    forget_conversations(cli.store, cli, None, [cid])
    cli.close()
    assert not {h.turn.id for h in app.search(CANARY, user="ann", k=5)} & set(ids)  # hits are checked in SQLite
    after = app.log_turn(cid2 := store.new_conversation("ann"), "user", "logged after the forget")
    app.close()  # saves its index, which still held the forgotten vectors in memory
    saved = set(VectorIndex.load(app.index_path, embedder.dim).ids().tolist())
    assert saved == {other, after} and cid2 > cid


def test_schema_upgrade_keeps_rows_and_stops_id_reuse(tmp_path):
    path = tmp_path / "db.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
        CREATE TABLE conversations (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
            title TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL,
            learn INTEGER NOT NULL DEFAULT 1, source TEXT NOT NULL DEFAULT 'chat', content_hash TEXT UNIQUE);
        CREATE TABLE turns (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            role TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL, completed_at REAL NOT NULL,
            learn INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL DEFAULT 'complete', consolidated_in TEXT);
        INSERT INTO users VALUES (1, 'ann', 0);
        INSERT INTO conversations VALUES (1, 1, 'hi', 0, 0, 1, 'chat', NULL), (2, 1, 'bye', 0, 0, 1, 'chat', NULL);
        INSERT INTO turns VALUES (1, 1, 'user', 'hi', 0, 0, 1, 'complete', 'v0001'),
                                 (2, 2, 'user', 'bye', 0, 0, 0, 'complete', NULL);
    """)
    old.close()
    store = Store(path)
    assert [(t.id, t.text, t.learn, t.consolidated_in) for t in store.turns(1) + store.turns(2)] == [
        (1, "hi", True, "v0001"), (2, "bye", False, None)]
    store.delete_conversations([2])
    assert store.add_turn(1, "assistant", "hello") == 3  # not 2: the forgotten id is never handed out again
    assert store.new_conversation("ann") == 3
    assert store._query("SELECT value FROM meta WHERE key = 'schema_version'")[0][0] == "2"


def test_forget_command(tmp_path, embedder):
    from chatbot.memory.transfer import import_jsonl

    home = tmp_path / "home"
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"user": "ann", "messages": [{"role": "user", "content": f"My code is {CANARY}."}]},
        {"user": "bob", "messages": [{"role": "user", "content": "Bob's first."}]},
        {"user": "bob", "messages": [{"role": "user", "content": "Bob's second."}]},
    ]) + "\n")
    rt = open_runtime(home, Config(), with_model=False, embedder=embedder)
    import_jsonl(src, rt.store, rt.buffer, "me")
    rt.close()
    for args, why in [((), "give --conversation"),
                      (("--conversation", "1"), "--yes"),  # not a terminal: no silent deletion
                      (("--conversation", "99", "--yes"), "no conversation 99"),
                      (("--user", "carol", "--yes"), "no user 'carol'"),
                      (("--user", "bob", "--conversation", "1", "--yes"), "not both")]:
        p = chatbot(home, "forget", *args, check=False)
        assert p.returncode == 2 and why in p.stderr, (args, p.stderr)
    out = json.loads(chatbot(home, "forget", "--user", "bob", "--yes", "--json").stdout.splitlines()[-1])
    assert out["forgotten"]["conversations"] == 2 and out["forgotten"]["turns"] == 2
    p = chatbot(home, "forget", "--conversation", "1", "--yes")
    assert "forgot 1 conversation(s)" in p.stdout and "No adapter version" in p.stdout
    db = sqlite3.connect(home / "chatbot.sqlite3")
    assert db.execute("SELECT (SELECT COUNT(*) FROM turns), (SELECT COUNT(*) FROM conversations), "
                      "(SELECT group_concat(name) FROM users)").fetchone() == (0, 0, "ann")
    assert CANARY.encode() not in raw_bytes(home / "chatbot.sqlite3")
    index_file, = home.glob("index-*.faiss")
    assert len(VectorIndex.load(index_file, embedder.dim)) == 0
    assert "nothing to retrain" in chatbot(home, "forget", "--retrain").stdout


def test_retrain_without_forgotten_turns_and_forget_during_a_run(tmp_path, tiny_model_dir, embedder, monkeypatch):
    from chatbot.memory.transfer import import_jsonl
    from chatbot.serving.model import load_model

    home = tmp_path / "home"
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"user": "ann", "messages": [{"role": "user", "content": "My dog is called Rex."},
                                     {"role": "assistant", "content": "Nice."}]},
        {"user": "bob", "messages": [{"role": "user", "content": f"My code is {CANARY}."},
                                     {"role": "assistant", "content": "Noted."}]},
    ]) + "\n")
    rt = open_runtime(home, Config(), with_model=False, embedder=embedder)
    import_jsonl(src, rt.store, rt.buffer, "me")
    cfg = tiny_config(tiny_model_dir, train={"epochs": 1, "batch_size": 4, "rehearsal_count": 1, "max_seq_len": 64})
    loaded = load_model(str(tiny_model_dir), quantization="none")
    first = consolidate(home, cfg, gate=default_gate(home, cfg), loaded=loaded, embedder=embedder, show_progress=False)
    assert first.status == "promoted" and [(r.user, r.version) for r in first.per_user] == [("ann", "v0001"),
                                                                                            ("bob", "v0002")]
    ann = line(home, "ann")
    weights = {p.name: p.read_bytes() for p in ann.current_path().glob("adapter_model.*")}
    assert weights

    # Forgetting bob deletes bob's adapter line; ann's adapter holds nothing of bob's: untouched, still served.
    report = forget_conversations(rt.store, rt.buffer, AdapterLines(rt.paths.adapters, "me"), [2], user="bob")
    assert report.deleted_versions == ["v0002"] and report.versions == [] and report.inherited == []
    assert "nobody else needs retraining" in report.message() and rt.store.user_id("bob", create=False) is None
    assert "bob" not in AdapterLines(rt.paths.adapters, "me").users()
    assert ann.current() == "v0001" and {p.name: p.read_bytes() for p in ann.current_path().glob("adapter_model.*")} \
        == weights
    withdrawal, result = retrain(home, cfg, gate=default_gate(home, cfg), show_progress=False, loaded=loaded,
                                 embedder=embedder)
    assert withdrawal.withdrawn == [] and result is None  # no retraining of anyone

    # Forgetting one of ann's conversations taints ann's version: withdrawn, and the rest is learned again.
    ann_cid = rt.store.conversations(user="ann")[0].id
    report = forget_conversations(rt.store, rt.buffer, AdapterLines(rt.paths.adapters, "me"), [ann_cid])
    assert report.versions == ["v0001"]
    cid0 = rt.store.new_conversation("ann")
    rt.store.add_turn(cid0, "user", "My cat is called Tom.")
    withdrawal, result = retrain(home, cfg, gate=default_gate(home, cfg), show_progress=False, loaded=loaded,
                                 embedder=embedder)
    assert withdrawal.withdrawn == ["v0001"] and withdrawal.serving == "base to ann"
    assert result.status == "promoted" and result.version == "v0003" and result.user == "ann"
    v3 = line(rt.paths.home, "ann").get("v0003")
    assert v3.manifest["continued_from"] == "base" and v3.manifest["owner"] == "ann"

    # Forgotten while a run trains: the candidate is withdrawn, the served version stays, the rest stays new.
    import chatbot.learning.consolidate as consolidation

    real = consolidation.train_adapter
    cid = rt.store.new_conversation("ann")
    for text in ("I live in Porto.", "Lovely."):
        rt.store.add_turn(cid, "user" if text.startswith("I") else "assistant", text)
    other = rt.store.new_conversation("ann")
    rt.store.add_turn(other, "user", "I work as a nurse.")

    def forget_midway(*args, **kwargs):
        rt.store.delete_conversations([cid])
        return real(*args, **kwargs)

    monkeypatch.setattr(consolidation, "train_adapter", forget_midway)
    third = consolidate(home, cfg, gate=default_gate(home, cfg), loaded=loaded, embedder=embedder, show_progress=False)
    assert third.status == "rejected" and "forgotten" in third.message
    reg = line(rt.paths.home, "ann")
    assert reg.current() == "v0003" and reg.get(third.version).status == "withdrawn"
    assert rt.store.turn(rt.store.turn_ids_in([other])[0]).consolidated_in is None
    rt.close()
