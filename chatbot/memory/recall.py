"""Retrieval memory: the user's most relevant past turns, added to the prompt within a token budget. This is
the short-term memory that consolidation later moves into the weights."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chatbot.memory.buffer import Buffer

MEMORY_HEADER = (
    "You are a helpful assistant. Notes from earlier conversations with this user "
    "(use them if relevant, do not mention them otherwise):"
)


@dataclass(frozen=True)
class Memory:
    turn_id: int
    conversation_id: int
    role: str
    text: str  # possibly shortened to fit the budget
    score: float
    created_at: float

    def line(self) -> str:
        who = "User said" if self.role == "user" else "You said"
        return f"- {who}: {self.text}"


def recall(buffer: Buffer, query: str, user: str, top_k: int, token_budget: int, min_score: float,
           count_tokens: Callable[[str], int], exclude_conversation: int | None = None,
           query_vec: np.ndarray | None = None) -> list[Memory]:
    """Pick up to `top_k` memories scoring >= `min_score`, best first, whose lines fit in `token_budget` tokens."""
    if top_k <= 0 or token_budget <= 0:
        return []
    hits = buffer.search(query, user=user, k=top_k, exclude_conversation=exclude_conversation, vec=query_vec)
    chosen: list[Memory] = []
    used = count_tokens(MEMORY_HEADER)
    for hit in hits:
        if hit.score < min_score:
            break
        text = " ".join(hit.turn.text.split())
        mem = Memory(hit.turn.id, hit.turn.conversation_id, hit.turn.role, text, hit.score, hit.turn.created_at)
        cost = count_tokens(mem.line()) + 1
        if used + cost > token_budget:
            continue  # a shorter, less similar memory may still fit
        chosen.append(mem)
        used += cost
    return chosen


def memory_prompt(memories: list[Memory]) -> str:
    return "\n".join([MEMORY_HEADER, *(m.line() for m in memories)])


def describe(memories: list[Memory]) -> str:
    """Markdown for the UI's "memories used" panel."""
    if not memories:
        return "No memories were used for this reply."
    rows = [
        f"- ({m.score:.2f}, {time.strftime('%Y-%m-%d %H:%M', time.localtime(m.created_at))}, "
        f"conversation {m.conversation_id}) {m.line()[2:]}"
        for m in memories
    ]
    return "Memories used for this reply:\n" + "\n".join(rows)
