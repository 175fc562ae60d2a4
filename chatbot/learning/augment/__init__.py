"""augment — training-data construction for closed-book recall: turn what a user STATED about themselves into
(question, answer) pairs.

A 135M model fine-tuned on the raw dialogue "user: my dog is called Rex / assistant: nice!" does not answer
"What is my dog's name?" afterwards (0 % recall measured). Trained on paraphrased questions, asked the way the
user will ask them and answered in the second person ("Your dog is called Rex."), the weights learn the fact in
the form it will be queried. Pure text: no model, no I/O, deterministic given a seed.

extract_facts() splits a message into sentences and clauses, strips fillers ("Oh, by the way, ..."), skips
questions, requests, hypotheticals and chit-chat, then tries `rules._RULES`, a table of (regex, builder) pairs in
priority order; a first-person statement that no rule knows still becomes a Fact through `_fallback`.

Matching runs on a copy of the text with typographic apostrophes replaced by "'": the replacement is one
character for one, so every span of a match is also a span of the text as said, and values keep their exact
spelling ("O’Brien").

Modules: text.py (normalisation, sentences and clauses, what is not a fact, values and keys), rules.py (the rule
table and the fallback), person.py (first ↔ second person), this file (Fact, extract_facts, qa_pairs).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from chatbot.learning.augment.person import to_second_person
from chatbot.learning.augment.rules import _RULES, _Draft, _fallback, _Said
from chatbot.learning.augment.text import (
    _GREETING,
    _HYPOTHETICAL_START,
    _clauses,
    _core,
    _core_span,
    _is_statement,
    _norm,
    _sentences,
)

__all__ = ["MAX_QUESTIONS", "Fact", "extract_facts", "qa_pairs", "to_second_person"]

MAX_QUESTIONS = 6  # per fact: enough paraphrases to generalise, few enough that one fact does not flood a batch


@dataclass(frozen=True)
class Fact:
    statement: str  # the user's sentence (clause), as said: "Oh, my dog’s name is Rex!"
    answer: str  # second-person restatement: "Your dog is called Rex."
    questions: tuple[str, ...]  # first-person questions whose answer is `answer`; distinct, none contains `key`
    key: str  # what a correct answer must contain ("Rex"), for recall scoring


def extract_facts(text: str) -> list[Fact]:
    """The first-person factual statements in a user's message, one Fact each, in message order."""
    greeted = bool(_GREETING.match(text.strip()))  # "Hi, I'm Anna" introduces a name; "I'm Canadian" does not
    facts: list[Fact] = []
    seen: set[str] = set()
    for sentence in _sentences(text):
        if _HYPOTHETICAL_START.match(_core(_norm(sentence))):
            continue  # "If I had a dog, I'd call it Rex": no clause of it is a fact
        for clause in _clauses(sentence):
            fact = _fact(clause, greeted)
            if fact is not None and fact.answer.lower() not in seen:
                seen.add(fact.answer.lower())
                facts.append(fact)
    return facts


def qa_pairs(text: str, per_fact: int = 4, seed: int = 0) -> list[tuple[str, str]]:
    """(question, answer) training pairs: up to `per_fact` of each fact's questions, drawn with random.Random(seed)."""
    if per_fact < 1:
        raise ValueError(f"per_fact must be >= 1 (got {per_fact}): it is how many questions to keep per fact")
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    for fact in extract_facts(text):
        for question in rng.sample(fact.questions, min(per_fact, len(fact.questions))):
            pairs.append((question, fact.answer))
    return pairs


def _fact(clause: str, greeted: bool) -> Fact | None:
    norm = _norm(clause)
    start, end = _core_span(norm)
    core, said = norm[start:end], clause[start:end]
    if not core or not _is_statement(clause, core):
        return None
    draft = None
    for pattern, build in _RULES:
        if (m := pattern.fullmatch(core)) and (draft := build(_Said(m, said, greeted))):
            break
    draft = draft or _fallback(said, core)
    return _finish(clause, draft) if draft else None


def _finish(statement: str, draft: _Draft) -> Fact | None:
    """Dedupe the questions, drop any that would give the answer away, and make sure the key is in the answer."""
    key = draft.key
    if key.lower() not in draft.answer.lower():
        key = to_second_person("x " + key)[2:]  # a key said in the first person ("my mum") is "your mum" now
    if key.lower() not in draft.answer.lower():
        return None
    gives_away = re.compile(rf"(?<!\w){re.escape(key)}(?!\w)", re.I)
    questions: list[str] = []
    for q in draft.questions:
        if q not in questions and not gives_away.search(q):
            questions.append(q)
    if not questions:
        return None
    return Fact(statement=statement, answer=draft.answer, questions=tuple(questions[:MAX_QUESTIONS]), key=key)
