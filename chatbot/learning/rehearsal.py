"""Self-synthesized rehearsal: the frozen base model's own answers to a shipped set of general prompts
(chatbot/learning/rehearsal_prompts/), mixed into every consolidation so general ability is rehearsed without any
external dataset. Answers are generated once per base model and decoding setting, and cached."""
from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from chatbot.core.fsio import write_json_atomic
from chatbot.learning.mix import Example

log = logging.getLogger(__name__)
PROMPTS_DIR = Path(str(resources.files("chatbot.learning") / "rehearsal_prompts"))  # shipped inside the package
# v1 (open prompts) + short factual questions: counters new facts leaking into general answers
DEFAULT_SUITE = "general-v2"


def load_prompts(suite: str = DEFAULT_SUITE, folder: Path = PROMPTS_DIR) -> list[dict]:
    path = folder / f"{suite}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"rehearsal prompts {path} not found (the package is incomplete: reinstall it)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def rehearsal_examples(count: int, seed: int, cache_file: Path | None, answer: Callable[[list[str]], list[str]],
                       suite: str = DEFAULT_SUITE) -> list[Example]:
    """`count` prompts chosen with `seed`, each with the base model's answer (from cache, else from
    `answer(prompts)`, called once with every missing prompt, which must run the frozen base with no adapter).
    cache_file None: nothing is read or saved (dry runs)."""
    if count <= 0:
        return []
    prompts = load_prompts(suite)
    chosen = random.Random(seed).sample(prompts, min(count, len(prompts)))
    cache: dict[str, str] = {}
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except ValueError:
            cache = {}  # a damaged cache is only a cache
    missing = [p for p in chosen if p["id"] not in cache]
    if missing:
        log.info("rehearsal: base model answering %d general prompt(s) (cached afterwards)", len(missing))
        for p, reply in zip(missing, answer([p["prompt"] for p in missing])):
            cache[p["id"]] = reply.strip()
    changed = bool(missing)
    out = []
    for p in chosen:
        if cache[p["id"]]:
            out.append(Example((("user", p["prompt"]), ("assistant", cache[p["id"]])), "rehearsal", (), "", p["id"]))
    if changed and cache_file is not None:
        write_json_atomic(cache_file, cache)
    return out


def cache_name(model_name: str, decoding: dict) -> str:
    """One cache per base model + decoding settings (answers differ otherwise)."""
    digest = hashlib.sha1(json.dumps(decoding, sort_keys=True).encode()).hexdigest()[:10]
    return f"{model_name}-{digest}.json"
