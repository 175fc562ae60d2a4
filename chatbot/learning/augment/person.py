"""First ↔ second person: restating what the user said from the assistant's side."""
from __future__ import annotations

import re

from chatbot.learning.augment.text import _norm


def to_second_person(sentence: str) -> str:
    """Restate the user's words from the assistant's side: I -> you, my -> your, me -> you, I'm -> you're,
    I am -> you are, I was -> you were, ...; the user's "we" too (we -> you, our -> your, us -> you, we were ->
    you were), since the assistant is not part of the user's household; and the other way round (your -> my,
    you -> me/I), so that "I told you my name" becomes "You told me your name". Case follows the original; the
    apostrophe as typed."""
    norm = _norm(sentence)
    out: list[str] = []
    last = 0
    for m in _PERSON.finditer(norm):
        token = sentence[m.start():m.end()]
        if token == "US":
            continue  # the country ("I moved to the US"), not the user's "us"
        key = re.sub(r"\s+", " ", m.group(0).lower())
        repl = _SWAP[key]
        if key == "you" and (_at_sentence_start(norm, m.start()) or _SUBJECT_NEXT.match(norm, m.end())):
            repl = "I"  # "you" as a subject ("you said", "You are") becomes "I", as an object "me"
        if "’" in token:
            repl = repl.replace("'", "’")
        out += [sentence[last:m.start()], _cased(repl, token, _at_sentence_start(norm, m.start()))]
        last = m.end()
    out.append(sentence[last:])
    return "".join(out)


_SWAP = {
    "i": "you", "i'm": "you're", "i am": "you are", "i was": "you were", "i wasn't": "you weren't",
    "i've": "you've", "i'd": "you'd", "i'll": "you'll",
    "my": "your", "me": "you", "mine": "yours", "myself": "yourself",
    "we": "you", "we're": "you're", "we are": "you are", "we were": "you were", "we weren't": "you weren't",
    "we've": "you've", "we'd": "you'd", "we'll": "you'll",
    "our": "your", "ours": "yours", "us": "you", "ourselves": "yourselves",
    "you're": "I'm", "you are": "I am", "you were": "I was", "you weren't": "I wasn't", "you've": "I've",
    "you'd": "I'd", "you'll": "I'll", "your": "my", "yours": "mine", "yourself": "myself", "you": "me",
}
# Longest forms first so "I am" wins over "I", and "you're" over "you".
_PERSON = re.compile(
    r"\b(?:i\s+(?:am|was|wasn't)|you\s+(?:are|were|weren't)|we\s+(?:are|were|weren't)|i'(?:m|ve|d|ll)|you'(?:re|ve|d|ll)"
    r"|we'(?:re|ve|d|ll)|myself|mine|my|me|i|yourself|yours|your|you|ourselves|ours|our|us|we)\b(?!')", re.I)
_SUBJECT_NEXT = re.compile(
    r"\s+(?:have|had|do|did|don't|didn't|can|can't|could|will|would|should|know|knew|said|told|like|love|want|"
    r"need|think|remember|asked|helped|gave|made|mentioned|live|work|always|never|also|just)\b", re.I)


def _at_sentence_start(text: str, pos: int) -> bool:
    before = text[:pos]
    return not before.strip(" \"'“‘(") or bool(re.search(r"[.!?]\s*[\"'“‘(]*\s*$", before))


def _cased(repl: str, token: str, at_start: bool) -> str:
    letters = [c for c in token if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return repl.upper()  # "MY" -> "YOUR"
    if repl.startswith("I"):
        return repl  # the pronoun I is always capitalised
    if at_start:
        return repl[0].upper() + repl[1:]
    if token[0] in "Ii":
        return repl  # "I" was capitalised as a pronoun, not as a sentence start: "you" stays lower case
    return repl[0].upper() + repl[1:] if token[0].isupper() else repl
