"""JSONL import/export of conversations. One conversation per line:
    {"id": int?, "messages": [{"role": "user"|"assistant"|"system", "content": str, "learn": bool?}, ...],
     "user": str?, "learn": bool?}
Every line is validated; bad lines are reported with their number and skipped; each good line is imported in
its own transaction, its "don't learn" flags included; a conversation imported before (same user and messages)
is not duplicated. Export writes each conversation's database id (what `chatbot forget --conversation` takes);
import ignores it (the importing database numbers its own conversations)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chatbot.core.fsio import atomic_file
from chatbot.memory.buffer import Buffer
from chatbot.memory.store import Store

ROLES = ("system", "user", "assistant")


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    turns: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)

    def summary(self) -> str:
        s = f"imported {self.imported} conversation(s) ({self.turns} turns), skipped {self.duplicates} already imported"
        if self.errors:
            s += f", {len(self.errors)} malformed line(s) skipped"
        return s


def parse_line(raw: bytes, default_user: str) -> tuple[str, list[tuple[str, str, bool]], bool]:
    """Validate one JSONL line; returns (user, [(role, content, learn)], learn) or raises ValueError saying why."""
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (some editors write one) is not an error
    except UnicodeDecodeError as e:
        raise ValueError(f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with a 'messages' list")
    unknown = set(obj) - {"id", "messages", "user", "learn"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "id" in obj and (not isinstance(obj["id"], int) or isinstance(obj["id"], bool)):
        raise ValueError("'id' must be an integer (export writes it; import ignores it)")
    user = obj.get("user", default_user)
    if not isinstance(user, str) or not user.strip():
        raise ValueError("'user' must be a non-empty string")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in user) or len(user) > 200:
        raise ValueError("'user' must be a name (no control characters, at most 200 characters)")
    learn = obj.get("learn", True)
    if not isinstance(learn, bool):
        raise ValueError("'learn' must be true or false")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"messages[{i}] must be an object with 'role' and 'content'")
        if m.get("role") not in ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            raise ValueError(f"messages[{i}].content must be a non-empty string")
        extra = set(m) - {"role", "content", "learn"}
        if extra:
            raise ValueError(f"messages[{i}] has unknown field(s): {', '.join(sorted(extra))}")
        m_learn = m.get("learn", True)
        if not isinstance(m_learn, bool):
            raise ValueError(f"messages[{i}].learn must be true or false")
        out.append((m["role"], m["content"], m_learn))
    if not any(role == "user" for role, _, _ in out):
        raise ValueError("a conversation needs at least one 'user' message")
    return user.strip(), out, learn


MAX_LINE_BYTES = 16 * 1024 * 1024  # one conversation per line; longer lines are reported and skipped unread


def _lines(fh) -> Iterator[tuple[bytes | None, int]]:
    """(line, length) per line; line is None for a line over MAX_LINE_BYTES (skipped without holding it)."""
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(MAX_LINE_BYTES)
                size += len(raw)
            yield None, size
        else:
            yield raw, len(raw)


def import_jsonl(path: str | Path, store: Store, buffer: Buffer, default_user: str,
                 max_chars: int | None = None) -> ImportReport:
    """Import every valid line; `max_chars`: the chat's per-message limit (buffer.max_message_chars), applied
    to imported messages too."""
    report = ImportReport()
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    with fh:
        for lineno, (raw, size) in enumerate(_lines(fh), start=1):
            if raw is None:
                report.errors.append((lineno, f"line too long ({size:,} bytes; the limit is {MAX_LINE_BYTES:,})"))
                continue
            if not raw.strip():
                continue
            try:
                user, messages, learn = parse_line(raw.rstrip(b"\r\n"), default_user)
                for i, (_, content, _) in enumerate(messages):
                    if max_chars is not None and len(content) > max_chars:
                        raise ValueError(f"messages[{i}] has {len(content):,} characters; the limit is "
                                         f"{max_chars:,} (buffer.max_message_chars)")
            except ValueError as e:
                report.errors.append((lineno, str(e)))
                continue
            # One transaction per conversation, its "don't learn" flags included.
            result = store.import_conversation(user, [(r, c) for r, c, _ in messages], learn=learn,
                                               turn_learn=[m_learn for _, _, m_learn in messages])
            if result is None:
                report.duplicates += 1
                continue
            _, turn_ids = result
            report.imported += 1
            report.turns += len(turn_ids)
            stored = store.turns_by_ids(turn_ids)
            buffer.index_turns([(i, stored[i].text) for i in turn_ids if stored[i].role != "system"])
    buffer.flush()
    return report


def export_jsonl(path: str | Path, store: Store, user: str | None = None) -> int:
    """Write conversations (of `user`, or all) oldest first; atomic. Returns the number written."""
    path = Path(path)
    conversations = sorted(store.conversations(user=user), key=lambda c: c.id)
    n = 0
    with atomic_file(path, "w", perm=0o600) as f:  # users' conversations: owner-only, like the database
        for conv in conversations:
            messages = []
            for t in store.turns(conv.id):
                m = {"role": t.role, "content": t.text}
                if not t.learn and conv.learn:
                    m["learn"] = False
                messages.append(m)
            if not messages:
                continue
            line = {"id": conv.id, "messages": messages, "user": conv.user}
            if not conv.learn:
                line["learn"] = False
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            n += 1
    return n
