"""Scoring one reply: accepted answers appear as words (qa, acquisition), instruction checks hold (instruct)."""
from __future__ import annotations

import re

from chatbot.evaluation.suite import Probe, SuiteKind


def has_word(text: str, word: str) -> bool:
    """`word` occurs in `text` as a whole word, case-insensitively."""
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.I) is not None


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+", text)


def check(output: str, spec: dict) -> bool:
    """One instruction-following check: max_words, min_words, contains (any, case-insensitive), contains_case
    (any, exact case), regex (case-insensitive search), lowercase (no upper-case letter, some letter)."""
    (kind, arg), = spec.items()
    if kind == "max_words":
        return 0 < len(_words(output)) <= arg
    if kind == "min_words":
        return len(_words(output)) >= arg
    if kind == "contains":
        return any(has_word(output, a) for a in arg)
    if kind == "contains_case":
        return any(a in output for a in arg)
    if kind == "regex":
        return re.search(arg, output.strip(), re.I) is not None
    if kind == "lowercase":
        return any(c.isalpha() for c in output) and output == output.lower()
    raise ValueError(f"unknown instruction check {kind!r}")


def score_item(probe: Probe, kind: SuiteKind, output: str) -> float:
    """1.0 passed, 0.0 failed (qa/acquisition: an accepted answer appears and no rejected one, such as the old
    value of a corrected fact; instruct: every check holds)."""
    if kind in ("qa", "acquisition"):
        return float(any(has_word(output, a) for a in probe.accept)
                     and not any(has_word(output, r) for r in probe.reject))
    if kind == "instruct":
        return float(all(check(output, c) for c in probe.checks))
    return 1.0  # canary prompts are judged afterwards, against the base (find_leaks)

