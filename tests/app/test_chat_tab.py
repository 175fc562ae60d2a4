"""The Chat tab's handlers as the app wires them (a real Blocks, the runtime's real SQLite and FAISS, the tiny
model), called the way Gradio calls them, without a browser."""
import gradio as gr
import pytest

from chatbot.app.chat_tab import StopSignals, chat_tab


@pytest.fixture
def tab(runtime):
    stops = StopSignals()
    with gr.Blocks() as app:
        chat_tab(runtime, lambda request: "me", login=False, stops=stops)
    handlers = {f.fn.__name__: f.fn for f in app.fns.values() if f.fn}
    return handlers, stops


def new_session() -> dict:
    return {"conversation_id": None, "turn_ids": []}


def test_empty_message_with_learning_off_creates_no_conversation(runtime, tab):
    handlers, _ = tab
    with pytest.warns(UserWarning, match="Empty message"):
        out = list(handlers["on_send"]("   ", [], new_session(), False, gr.Request(session_hash="s1")))
    assert out[-1][4] == new_session()  # the session still has no conversation
    assert runtime.store.counts()["conversations"] == 0
    # A real message with learning off starts a "don't learn" conversation.
    out = list(handlers["on_send"]("My PIN is 1234", [], new_session(), False, gr.Request(session_hash="s1")))
    cid = out[-1][4]["conversation_id"]
    assert runtime.store.conversation(cid).learn is False
    assert runtime.store.counts()["conversations"] == 1


def test_stop_signals_do_not_outlive_their_generation(runtime, tab):
    handlers, stops = tab
    for i in range(3):  # a reply, then a regenerated one, in each of three browser sessions
        request = gr.Request(session_hash=f"s{i}")
        last = list(handlers["on_send"](f"hello {i}", [], new_session(), True, request))[-1]
        history, state = last[0], last[4]  # outputs: chat, textbox, memories, notice, session, conversation list
        assert len(stops) == 0
        list(handlers["on_regenerate"](history, state, request))
        assert len(stops) == 0
    # Stop still reaches a generation in progress, and its signal is gone once it ends.
    events = handlers["on_send"]("go on and on", [], new_session(), True, gr.Request(session_hash="s9"))
    out = [next(events), next(events)]
    assert len(stops) == 1
    stops.stop("s9")
    out += list(events)
    assert "Stopped" in out[-1][3] and len(stops) == 0
    # A generation abandoned mid-way (the browser went away: Gradio closes the generator) is forgotten too.
    events = handlers["on_send"]("and again", [], new_session(), True, gr.Request(session_hash="s10"))
    next(events)
    events.close()
    assert len(stops) == 0
