import logging

from chatbot.memory.buffer import Buffer
from chatbot.memory.index import VectorIndex
from chatbot.memory.store import Store


def make_buffer(tmp_path, embedder, **kw) -> Buffer:
    store = Store(tmp_path / "db.sqlite3")
    return Buffer(store, embedder, tmp_path / "index.faiss", **kw)


def test_log_turn_commits_then_indexes(tmp_path, embedder):
    buf = make_buffer(tmp_path, embedder)
    cid = buf.store.new_conversation("ann")
    tid = buf.log_turn(cid, "user", "My dog is called Rex.")
    assert buf.store.turn(tid).text == "My dog is called Rex."  # durable at once
    buf.wait_indexed()  # indexing happens off the chat path
    hits = buf.search("what is the name of my dog?", user="ann", k=1)
    assert [h.turn.id for h in hits] == [tid]
    assert hits[0].score > 0.4


def test_search_is_per_user_and_skips_dont_learn(tmp_path, embedder):
    buf = make_buffer(tmp_path, embedder)
    ann, bob = buf.store.new_conversation("ann"), buf.store.new_conversation("bob")
    a = buf.log_turn(ann, "user", "My dog is called Rex.")
    b = buf.log_turn(bob, "user", "My dog is called Fido.")
    buf.wait_indexed()
    assert [h.turn.id for h in buf.search("dog name", user="bob", k=5)] == [b]
    buf.store.set_turn_learn(b, False)
    assert buf.search("dog name", user="bob", k=5) == []
    quiet = buf.store.new_conversation("ann", learn=False)
    buf.log_turn(quiet, "user", "My dog is secretly called Shadow.")
    buf.wait_indexed()
    assert [h.turn.id for h in buf.search("dog name", user="ann", k=5)] == [a]
    assert [h.turn.id for h in buf.search("dog name", user="ann", k=5, exclude_conversation=ann)] == []


def test_index_rebuilt_when_missing_or_corrupt(tmp_path, embedder, caplog):
    buf = make_buffer(tmp_path, embedder, save_every=1)
    cid = buf.store.new_conversation("ann")
    ids = [buf.log_turn(cid, "user", f"fact number {i}") for i in range(5)]
    buf.close()
    path = buf.index_path
    assert path.exists()

    path.unlink()
    with caplog.at_level(logging.WARNING, logger="chatbot.memory.buffer"):
        buf2 = Buffer(buf.store, embedder, tmp_path / "index.faiss")
    assert "missing" in caplog.text and "rebuilding" in caplog.text
    assert sorted(buf2.index.ids().tolist()) == ids

    caplog.clear()
    path.write_bytes(b"this is not a faiss index")
    with caplog.at_level(logging.WARNING, logger="chatbot.memory.buffer"):
        buf3 = Buffer(buf.store, embedder, tmp_path / "index.faiss")
    assert "corrupt" in caplog.text
    assert sorted(buf3.index.ids().tolist()) == ids


def test_stale_index_is_repaired(tmp_path, embedder, caplog):
    buf = make_buffer(tmp_path, embedder, save_every=1000)
    cid = buf.store.new_conversation("ann")
    first = buf.log_turn(cid, "user", "saved before the crash")
    buf.flush()
    # Simulate a crash after SQLite commit but before the index file was saved again:
    lost = buf.store.add_turn(cid, "user", "committed, never indexed")
    buf.close()
    with caplog.at_level(logging.WARNING, logger="chatbot.memory.buffer"):
        again = Buffer(buf.store, embedder, tmp_path / "index.faiss")
    assert "stale (1 turns missing, 0 extra)" in caplog.text
    assert sorted(again.index.ids().tolist()) == [first, lost]
    assert again.search("never indexed", user="ann", k=1)[0].turn.id == lost


def test_discard_skips_a_queued_turn_and_leaves_saving_to_the_periodic_save(tmp_path, embedder):
    buf = make_buffer(tmp_path, embedder, save_every=1000)
    cid = buf.store.new_conversation("ann")
    kept = buf.log_turn(cid, "user", "My dog is called Rex.")
    old = buf.log_turn(cid, "assistant", "A reply about to be regenerated.")
    buf.store.supersede(old)
    buf.discard([old])  # whether or not the worker has indexed it yet
    buf.wait_indexed()
    assert buf.index.ids().tolist() == [kept]
    buf.close()  # the save at exit writes the index without it
    assert VectorIndex.load(buf.index_path, embedder.dim).ids().tolist() == [kept]
