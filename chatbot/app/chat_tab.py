"""The Chat tab: streaming replies, stop, regenerate, new conversation, past conversations, per-message
"don't learn" (the chat's feedback button on each message), forget this conversation, and the memories used
for the last reply. Every handler acts as the request's user (`who`); ownership is enforced in ChatService."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import gradio as gr

from chatbot.memory.recall import describe
from chatbot.runtime import Runtime
from chatbot.serving.chat import Accepted, Done, InputRefused

DONT_LEARN = "Don't learn"


class StopSignals:
    """The stop signal of each browser session's generation in progress (threading.Event cannot live in
    gr.State, which is deep-copied). An entry lives only while its generation runs, so sessions that come and
    go leave nothing behind."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self, session: str) -> Iterator[threading.Event]:
        """The signal for one generation of `session`, removed when it ends (finished, stopped, failed, or
        abandoned: Gradio closes the handler's generator when the browser goes away)."""
        ev = threading.Event()
        with self._lock:
            self._events[session] = ev
        try:
            yield ev
        finally:
            with self._lock:
                if self._events.get(session) is ev:  # a newer generation of the session keeps its own
                    del self._events[session]

    def stop(self, session: str) -> None:
        with self._lock:
            ev = self._events.get(session)
        if ev:
            ev.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def _empty_session() -> dict:
    # conversation_id: the open conversation (None = a new one starts with the next message);
    # turn_ids: turn id of each message shown, parallel to the Chatbot value (None until committed).
    return {"conversation_id": None, "turn_ids": []}


def chat_tab(rt: Runtime, user_of: Callable[[gr.Request | None], str], login: bool,
             stops: StopSignals | None = None, after_reply: Callable[[], None] | None = None):
    """Lay out the tab; returns (load function, its outputs) for the app's page-load event, which fills in the
    logged-in user's own conversation list (never built into the page, which every visitor can read).
    `stops`: where the sessions' stop signals live (a fresh one by default); `after_reply` runs when a reply is
    done (the app wakes the knowledge ledger's reader: facts are read off the chat path)."""
    service = rt.chat
    stops = stops if stops is not None else StopSignals()

    def conversation_choices(user: str) -> list[tuple[str, int]]:
        return [(f"#{c.id} {c.title or '(empty)'}", c.id) for c in service.conversations(user)]

    def load(user: str, conversation_id: int | None):
        if conversation_id is None:
            return [], _empty_session(), []
        rows = service.history(user, conversation_id)
        messages = [{"role": role, "content": text} for _, role, text, _ in rows]
        feedback = [None if learn else DONT_LEARN for _, _, _, learn in rows]
        return messages, {"conversation_id": conversation_id, "turn_ids": [r[0] for r in rows]}, feedback

    with gr.Row():
        with gr.Column(scale=1, min_width=220):
            new_btn = gr.Button("New conversation", variant="secondary")
            initial = [] if login else conversation_choices(rt.config.serve.default_user)
            conv_list = gr.Dropdown(label="Past conversations", choices=initial, value=None,
                                    interactive=True, elem_id="conversations")
            conv_learn = gr.Checkbox(label="Learn from this conversation", value=True, elem_id="conv-learn")
            forget_btn = gr.Button("Forget this conversation", variant="secondary", size="sm", elem_id="forget")
            with gr.Group(visible=False) as confirm_box:
                gr.Markdown("Delete this conversation for good (database, memory index, future training)?")
                with gr.Row():
                    confirm_btn = gr.Button("Forget forever", variant="stop", size="sm", elem_id="forget-confirm")
                    cancel_btn = gr.Button("Cancel", size="sm", elem_id="forget-cancel")
            memories_md = gr.Markdown("No memories used yet.", elem_id="memories")
        with gr.Column(scale=4):
            bot = gr.Chatbot(label="Chat", height=480, elem_id="chat", feedback_options=[DONT_LEARN],
                             buttons=["copy_all"], like_user_message=True,
                             placeholder="Say something. Every turn is saved.")
            notice_md = gr.Markdown("", elem_id="notice")
            with gr.Row():
                box = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, scale=6,
                                 elem_id="message", autofocus=True, lines=1, max_lines=8)
                send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
                regen_btn = gr.Button("Regenerate", scale=1, elem_id="regenerate")
    session = gr.State(_empty_session())

    def stream(user: str, events, history: list, state: dict, text_back, user_text: str | None = None):
        """Drive a ChatService event stream into the Chatbot. The user's message is shown only once
        ChatService has committed it (the Accepted event)."""
        try:
            first = next(events)
        except InputRefused as e:
            gr.Warning(str(e))
            yield history, text_back, gr.skip(), str(e), state, gr.skip()
            return
        assert isinstance(first, Accepted)
        state = dict(state, conversation_id=first.conversation_id)
        if first.user_turn_id is not None:  # committed: now the UI may show it as sent
            state["turn_ids"] = [*state["turn_ids"], first.user_turn_id]
        if user_text is not None:
            history = [*history, {"role": "user", "content": user_text}]
        history = [*history, {"role": "assistant", "content": ""}]
        notice = " ".join(first.notices)
        mem = describe(first.memories)
        yield history, "", mem, notice, state, gr.update(choices=conversation_choices(user),
                                                         value=first.conversation_id)
        reply = ""
        for ev in events:
            if isinstance(ev, str):
                reply += ev
                history[-1] = {"role": "assistant", "content": reply}
                yield history, gr.skip(), gr.skip(), gr.skip(), state, gr.skip()
            elif isinstance(ev, Done):
                state = dict(state, turn_ids=[*state["turn_ids"], ev.turn_id if ev.turn_id > 0 else None])
                history[-1] = {"role": "assistant", "content": ev.text or "(no reply)"}
                if ev.stopped:
                    notice = (notice + " Stopped: the partial reply is saved and will not be learned.").strip()
                yield history, gr.skip(), gr.skip(), notice, state, gr.skip()

    def on_send(text: str, history: list, state: dict, learn_conv: bool, request: gr.Request):
        user = user_of(request)
        with stops.running(request.session_hash) as stop:
            # ChatService validates the message before it creates the conversation (a don't-learn one when
            # "learn" is unticked): a refused message leaves nothing behind.
            events = service.send(user, text, state["conversation_id"], stop=stop, conversation_learn=learn_conv)
            yield from stream(user, events, history, state, text, user_text=text)
        if after_reply is not None:
            after_reply()

    def on_regenerate(history: list, state: dict, request: gr.Request):
        user = user_of(request)
        cid = state["conversation_id"]
        if cid is None:
            gr.Warning("Nothing to regenerate yet.")
            yield history, gr.skip(), gr.skip(), "Nothing to regenerate yet.", state, gr.skip()
            return
        if history and history[-1]["role"] == "assistant":
            history = history[:-1]
            state = dict(state, turn_ids=state["turn_ids"][:-1])
        with stops.running(request.session_hash) as stop:
            yield from stream(user, service.regenerate(user, cid, stop=stop), history, state, gr.skip())

    def on_stop(request: gr.Request):
        stops.stop(request.session_hash)

    def on_like(state: dict, data: gr.LikeData, request: gr.Request):
        user = user_of(request)
        index = data.index if isinstance(data.index, int) else data.index[0]
        ids = state["turn_ids"]
        if index >= len(ids) or ids[index] is None:
            gr.Warning("That message is not saved yet.")
            return "That message is not saved yet."
        dont = data.liked == DONT_LEARN
        try:
            service.set_learn(user, ids[index], not dont)
        except InputRefused as e:
            return str(e)
        return ("This message will not be learned or recalled." if dont
                else "This message may be learned again.")

    def on_new():
        return [], _empty_session(), gr.update(value=None), True, "No memories used yet.", ""

    def on_pick(conversation_id, state: dict, request: gr.Request):
        user = user_of(request)
        if conversation_id is None or conversation_id == state["conversation_id"]:
            return gr.skip(), state, gr.skip(), ""
        try:
            messages, new_state, feedback = load(user, int(conversation_id))
            learn = service.conversation_learn(user, int(conversation_id))
        except (InputRefused, ValueError, TypeError):
            return gr.skip(), state, gr.skip(), f"Conversation {conversation_id} not found."
        return gr.update(value=messages, feedback_value=feedback), new_state, learn, ""

    def on_conv_learn(learn: bool, state: dict, request: gr.Request):
        user = user_of(request)
        if state["conversation_id"] is not None:
            try:
                service.set_conversation_learn(user, state["conversation_id"], learn)
            except InputRefused as e:
                return str(e)
        return "" if learn else "Nothing in this conversation will be learned or recalled."

    def on_forget(state: dict):
        if state["conversation_id"] is None:
            return gr.update(visible=False), "No saved conversation is open."
        return gr.update(visible=True), ""

    def on_forget_confirm(state: dict, request: gr.Request):
        user = user_of(request)
        cid = state["conversation_id"]
        if cid is None:
            return gr.skip(), state, gr.skip(), gr.update(visible=False), "No saved conversation is open."
        try:
            report = service.forget(user, cid)
        except InputRefused as e:
            return gr.skip(), state, gr.skip(), gr.update(visible=False), str(e)
        note = f"Conversation #{cid} is forgotten: {report.turns} message(s) deleted from the database and memory."
        tainted = report.versions + report.inherited
        if tainted:
            note += (f" Adapter version(s) {', '.join(tainted)} were trained on it; an administrator can retrain "
                     "without it (`chatbot forget --retrain`).")
        return ([], _empty_session(), gr.update(choices=conversation_choices(user), value=None),
                gr.update(visible=False), note)

    def on_page_load(request: gr.Request):
        return gr.update(choices=conversation_choices(user_of(request)), value=None)

    forget_btn.click(on_forget, [session], [confirm_box, notice_md])
    cancel_btn.click(lambda: gr.update(visible=False), None, [confirm_box])
    confirm_btn.click(on_forget_confirm, [session], [bot, session, conv_list, confirm_box, notice_md],
                      api_name="forget")
    outputs = [bot, box, memories_md, notice_md, session, conv_list]
    box.submit(on_send, [box, bot, session, conv_learn], outputs, api_name="send")
    send_btn.click(on_send, [box, bot, session, conv_learn], outputs)
    regen_btn.click(on_regenerate, [bot, session], outputs)
    stop_btn.click(on_stop, None, None, queue=False)
    bot.like(on_like, [session], [notice_md])
    new_btn.click(on_new, None, [bot, session, conv_list, conv_learn, memories_md, notice_md])
    bot.clear(on_new, None, [bot, session, conv_list, conv_learn, memories_md, notice_md])  # the chat's own bin icon
    conv_list.input(on_pick, [conv_list, session], [bot, session, conv_learn, notice_md], api_name="open")
    conv_learn.input(on_conv_learn, [conv_learn, session], [notice_md])
    return on_page_load, [conv_list]

