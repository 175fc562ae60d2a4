"""The chat path, free of any UI: validate → log the user turn → recall memories → stream the reply → log it.
The Gradio app, the CLI's `ask` and the benchmarks all go through these functions."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from chatbot.core.config import Config
from chatbot.core.lines import AdapterLines
from chatbot.memory.buffer import Buffer
from chatbot.memory.recall import Memory, memory_prompt, recall
from chatbot.memory.store import Store, clean_text
from chatbot.privacy.forget import Forgotten, forget_conversations
from chatbot.serving.engine import Engine

log = logging.getLogger(__name__)


class InputRefused(ValueError):
    """A message that is not accepted (empty, too long); nothing was logged. The text is for the user."""


@dataclass
class Accepted:
    """The user turn is committed; the reply starts."""
    conversation_id: int
    user_turn_id: int | None  # None for regenerate (the user turn already exists)
    memories: list[Memory]
    notices: list[str]
    adapter: str = "base"  # the adapter version that writes this reply


@dataclass
class Done:
    """The reply is committed."""
    turn_id: int
    text: str
    stopped: bool  # the user stopped it early
    n_tokens: int
    seconds: float
    notices: list[str] = field(default_factory=list)


class ChatService:
    def __init__(self, config: Config, store: Store, buffer: Buffer, generator: Engine,
                 lines: AdapterLines | None = None):
        self.config = config
        self.store = store
        self.buffer = buffer
        self.generator = generator
        self.lines = lines

    def served_adapter(self, user: str | None = None) -> tuple[str, str | None]:
        """(version name, folder) of the adapter `user` (default serve.default_user) is served now, read before
        every reply: a promotion is picked up between replies, without restart. ("base", None) without one."""
        if self.lines is None:
            return self.generator.adapter, None
        path = self.lines.served_path(user or self.config.serve.default_user)
        return (path.name, str(path)) if path else ("base", None)

    # -- validation ----------------------------------------------------------------------------------------
    def validate(self, text: str | None) -> str:
        text = clean_text(text or "")
        if not text.strip():
            raise InputRefused("Empty message: type something first.")
        limit = self.config.buffer.max_message_chars
        if len(text) > limit:
            raise InputRefused(
                f"Message too long ({len(text):,} characters; the limit is {limit:,}, set by buffer.max_message_chars)."
                " Nothing was saved."
            )
        return text

    def check_owner(self, conversation_id: int, user: str) -> None:
        conv = self.store.conversation(conversation_id)
        if conv is None or conv.user != user:
            # Same message for "missing" and "someone else's": do not reveal which ids exist.
            raise InputRefused(f"Conversation {conversation_id} not found.")

    # -- prompt --------------------------------------------------------------------------------------------
    def _messages(self, conversation_id: int, memories: list[Memory]) -> list[dict]:
        history = [{"role": t.role, "content": t.text} for t in self.store.turns(conversation_id) if t.role != "system"]
        if memories:
            return [{"role": "system", "content": memory_prompt(memories)}, *history]
        return history

    def _recall(self, query: str, user: str, conversation_id: int | None, use_memory: bool,
                query_vec=None) -> list[Memory]:
        m = self.config.memory
        if not (use_memory and m.enabled):
            return []
        return recall(self.buffer, query, user, m.top_k, m.token_budget, m.min_score,
                      self.generator.count_tokens, exclude_conversation=conversation_id, query_vec=query_vec)

    # -- the chat path -------------------------------------------------------------------------------------
    def send(self, user: str, text: str, conversation_id: int | None = None, learn: bool = True,
             use_memory: bool = True, stop: threading.Event | None = None,
             conversation_learn: bool = True) -> Iterator[Accepted | str | Done]:
        """Log `text` as the user's turn, then stream the reply: yields Accepted, then text pieces, then Done.
        Raises InputRefused before logging anything (not even a new conversation) when the message is not
        acceptable. conversation_id None starts a new conversation, with `conversation_learn` as its switch."""
        text = self.validate(text)
        if conversation_id is None:
            conversation_id = self.store.new_conversation(user, learn=conversation_learn)
        else:
            self.check_owner(conversation_id, user)
        conv_learn = self.store.conversation(conversation_id).learn
        vec = self.buffer.embedder.encode([text])[0]  # one embedding serves both indexing and recall
        user_turn = self.buffer.log_turn(conversation_id, "user", text, learn=learn and conv_learn, vec=vec)
        yield from self._reply(user, conversation_id, text, user_turn, use_memory, stop, vec)

    def regenerate(self, user: str, conversation_id: int, use_memory: bool = True,
                   stop: threading.Event | None = None) -> Iterator[Accepted | str | Done]:
        """Replace the last reply of the conversation with a new one (the old one is kept as superseded)."""
        self.check_owner(conversation_id, user)
        turns = self.store.turns(conversation_id)
        if not turns or not any(t.role == "user" for t in turns):
            raise InputRefused("Nothing to regenerate yet.")
        if turns[-1].role == "assistant":
            self.store.supersede(turns[-1].id)
            self.buffer.discard([turns[-1].id])  # no queue flush, no index save on the chat path
        last_user = [t for t in turns if t.role == "user"][-1]
        yield from self._reply(user, conversation_id, last_user.text, None, use_memory, stop)

    def _reply(self, user: str, conversation_id: int, query: str, user_turn: int | None, use_memory: bool,
               stop: threading.Event | None, query_vec=None) -> Iterator[Accepted | str | Done]:
        stop = stop or threading.Event()
        adapter = self.served_adapter(user)
        memories = self._recall(query, user, conversation_id, use_memory, query_vec)
        prompt = self.generator.build_prompt(self._messages(conversation_id, memories))
        yield Accepted(conversation_id, user_turn, memories, prompt.notices, adapter[0])
        started = time.time()
        pieces: list[str] = []
        try:
            for piece in self.generator.stream(prompt, stop=stop, adapter=adapter):
                pieces.append(piece)
                yield piece
        finally:
            # Whatever happened (finished, stopped, client gone), commit what the user saw.
            reply = "".join(pieces).strip()
            stopped = stop.is_set()
            conv = self.store.conversation(conversation_id)
            turn_id = self.buffer.log_turn(
                conversation_id, "assistant", reply, learn=conv.learn and not stopped,
                status="stopped" if stopped else "complete", created_at=started,
            ) if reply else -1
        n_tokens = self.generator.count_tokens(reply) if reply else 0
        yield Done(turn_id, reply, stopped, n_tokens, time.time() - started, prompt.notices)

    # -- reading back ---------------------------------------------------------------------------------------
    def history(self, user: str, conversation_id: int) -> list[tuple[int, str, str, bool]]:
        """(turn id, role, text, learn) of the visible turns of one of `user`'s conversations."""
        self.check_owner(conversation_id, user)
        return [(t.id, t.role, t.text, t.learn) for t in self.store.turns(conversation_id) if t.role != "system"]

    def set_learn(self, user: str, turn_id: int, learn: bool) -> None:
        """The per-message "don't learn from this" toggle. On a user message it also covers the reply to it,
        since replies often repeat what was said."""
        turn = self.store.turn(turn_id)
        conv = self.store.conversation(turn.conversation_id) if turn else None
        if conv is None or conv.user != user:  # same answer for missing and someone else's
            raise InputRefused(f"Message {turn_id} not found.")
        self.store.set_turn_learn(turn_id, learn)
        if turn.role == "user":
            turns = self.store.turns(turn.conversation_id)
            after = [t for t in turns if t.id > turn_id][:1]
            if after and after[0].role == "assistant":
                self.store.set_turn_learn(after[0].id, learn)

    def conversations(self, user: str, limit: int = 200) -> list:
        """`user`'s conversations, newest first (never anyone else's)."""
        return self.store.conversations(user=user, limit=limit)

    def new_conversation(self, user: str, learn: bool = True) -> int:
        return self.store.new_conversation(user, learn=learn)

    def conversation_learn(self, user: str, conversation_id: int) -> bool:
        self.check_owner(conversation_id, user)
        return self.store.conversation(conversation_id).learn

    def set_conversation_learn(self, user: str, conversation_id: int, learn: bool) -> None:
        """The per-conversation "learn from this" switch."""
        self.check_owner(conversation_id, user)
        self.store.set_conversation_learn(conversation_id, learn)

    def forget(self, user: str, conversation_id: int) -> Forgotten:
        """Delete one of `user`'s conversations everywhere (database, index, future mixes); returns a
        forget.Forgotten report naming the adapter versions trained on it."""
        self.check_owner(conversation_id, user)
        return forget_conversations(self.store, self.buffer, self.lines, [conversation_id])

    # -- one-shot ------------------------------------------------------------------------------------------
    def ask(self, question: str, user: str, use_memory: bool = True) -> dict:
        """Answer one question in a fresh single-turn chat without logging it (a query, not a conversation)."""
        question = self.validate(question)
        adapter = self.served_adapter(user)
        memories = self._recall(question, user, None, use_memory)
        messages = [{"role": "user", "content": question}]
        if memories:
            messages.insert(0, {"role": "system", "content": memory_prompt(memories)})
        prompt = self.generator.build_prompt(messages)
        started = time.time()
        answer = self.generator.generate(prompt, adapter=adapter).strip()
        return {
            "question": question,
            "answer": answer,
            "adapter": adapter[0],
            "memories": [m.text for m in memories],
            "notices": prompt.notices,
            "seconds": round(time.time() - started, 3),
        }
