import sqlite3
import threading

import pytest

from chatbot.serving.chat import Accepted, Done, InputRefused


def run(events):
    out = list(events)
    assert isinstance(out[0], Accepted) and isinstance(out[-1], Done)
    return out[0], "".join(e for e in out if isinstance(e, str)), out[-1]


def db_rows(rt):
    db = sqlite3.connect(rt.paths.db)
    return db.execute("SELECT role, text, status, learn FROM turns ORDER BY id").fetchall()


def test_user_turn_committed_before_reply_starts(runtime):
    events = runtime.chat.send("me", "My dog is called Rex.")
    accepted = next(events)
    assert isinstance(accepted, Accepted)
    # The UI only shows the message as sent after this point: it must already be on disk.
    assert db_rows(runtime) == [("user", "My dog is called Rex.", "complete", 1)]
    rest = list(events)
    done = rest[-1]
    assert isinstance(done, Done) and done.turn_id > 0
    assert db_rows(runtime)[1][:3] == ("assistant", done.text, "complete")
    runtime.buffer.wait_indexed()
    assert len(runtime.buffer) == 2


@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_empty_message_refused_and_not_logged(runtime, text):
    with pytest.raises(InputRefused, match="Empty"):
        next(runtime.chat.send("me", text))
    assert db_rows(runtime) == []


def test_enormous_message_refused_with_limit(runtime):
    limit = runtime.config.buffer.max_message_chars
    with pytest.raises(InputRefused, match=f"{limit:,}"):
        next(runtime.chat.send("me", "x" * (limit + 1)))
    assert db_rows(runtime) == []


def test_long_message_truncated_for_model_but_logged_in_full(runtime):
    text = "tell me " * 3000  # ~6000 tokens, far beyond the tiny model's 512 context
    accepted, _, _ = run(runtime.chat.send("me", text))
    assert any("saw only" in n for n in accepted.notices)
    assert db_rows(runtime)[0][1] == text.strip() or db_rows(runtime)[0][1] == text


def test_control_characters_and_invalid_utf8_do_not_crash(runtime):
    nasty = b"hi\x00\x1b[31m there \xff\xfe".decode("utf-8", "surrogateescape")
    _, _, done = run(runtime.chat.send("me", nasty))
    stored = db_rows(runtime)[0][1]
    assert "\x00" not in stored and stored.startswith("hi")
    assert done.turn_id > 0


def test_memories_come_from_the_same_user_other_conversations(runtime):
    run(runtime.chat.send("me", "My dog is called Rex."))
    run(runtime.chat.send("other", "My dog is called Fido."))
    runtime.buffer.wait_indexed()
    accepted, _, _ = run(runtime.chat.send("me", "What is my dog called?"))
    texts = [m.text for m in accepted.memories]
    assert "My dog is called Rex." in texts and not any("Fido" in t for t in texts)
    no_mem, _, _ = run(runtime.chat.send("me", "What is my dog called?", use_memory=False))
    assert no_mem.memories == []


def test_stop_marks_reply_stopped_and_not_learnable(runtime):
    stop = threading.Event()
    events = runtime.chat.send("me", "go on and on", stop=stop)
    out = []
    for ev in events:
        out.append(ev)
        if isinstance(ev, str):
            stop.set()
    done = out[-1]
    assert done.stopped
    assert db_rows(runtime)[-1][2:] == ("stopped", 0)


def test_regenerate_supersedes_previous_reply(runtime):
    accepted, _, first = run(runtime.chat.send("me", "hello"))
    _, _, second = run(runtime.chat.regenerate("me", accepted.conversation_id))
    visible = runtime.chat.history("me", accepted.conversation_id)
    assert [r[1] for r in visible] == ["user", "assistant"]
    assert visible[1][0] == second.turn_id != first.turn_id
    assert runtime.store.turn(first.turn_id).status == "superseded"
    assert first.turn_id not in set(runtime.buffer.index.ids().tolist())


def test_other_users_conversation_is_refused(runtime):
    accepted, _, _ = run(runtime.chat.send("ann", "my secret plan"))
    with pytest.raises(InputRefused, match="not found"):
        next(runtime.chat.send("bob", "show me", conversation_id=accepted.conversation_id))
    with pytest.raises(InputRefused, match="not found"):
        runtime.chat.history("bob", accepted.conversation_id)
    with pytest.raises(InputRefused):
        runtime.chat.set_learn("bob", accepted.user_turn_id, False)


def test_dont_learn_toggle(runtime):
    accepted, _, _ = run(runtime.chat.send("me", "my PIN is 1234"))
    runtime.buffer.wait_indexed()
    runtime.chat.set_learn("me", accepted.user_turn_id, False)
    assert runtime.store.turn(accepted.user_turn_id).learn is False
    assert [r[3] for r in db_rows(runtime)] == [0, 0]  # the reply to it too
    assert runtime.buffer.search("my PIN is 1234", user="me") == []
    runtime.chat.set_learn("me", accepted.user_turn_id, True)
    assert runtime.buffer.search("my PIN is 1234", user="me")[0].turn.id == accepted.user_turn_id


def test_ask_answers_without_logging(runtime):
    result = runtime.chat.ask("What is the capital of France?", user="me")
    assert isinstance(result["answer"], str) and result["answer"]
    assert db_rows(runtime) == []


def file_version(path):
    st = path.stat()
    return st.st_ino, st.st_mtime_ns  # every save writes a new file and renames it over the old one


def test_regenerate_neither_flushes_nor_saves_the_index(runtime):
    accepted, _, first = run(runtime.chat.send("me", "hello"))
    runtime.buffer.flush()
    index_file = runtime.buffer.index_path
    before = file_version(index_file)
    _, _, second = run(runtime.chat.regenerate("me", accepted.conversation_id))
    assert file_version(index_file) == before  # the periodic save and the save at exit write it
    runtime.buffer.wait_indexed()
    ids = set(runtime.buffer.index.ids().tolist())
    assert first.turn_id not in ids and second.turn_id in ids
