"""Text normalisation for fact extraction: apostrophes, sentences and clauses, fillers, what is not a fact
(questions, requests, hypotheticals, chit-chat), and the values and keys a rule reads from a match."""
from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})  # one char for one: spans map


def _norm(text: str) -> str:
    return text.translate(_APOSTROPHES)


_ABBREVIATION_END = re.compile(r"\b(?:mr|mrs|ms|dr|st|jr|sr|prof|mt|vs|etc|e\.g|i\.e|no)\.$", re.I)


def _sentences(text: str) -> list[str]:
    """Split on sentence punctuation and line breaks, without breaking "St. Louis" or "Dr. Smith"."""
    pieces = [re.sub(r"\s+", " ", p.strip()) for p in re.split(r"(?<=[.!?…])\s+|\s*\n+\s*", text) if p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged and _ABBREVIATION_END.search(merged[-1]):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return merged


# Clause boundaries inside a sentence: "..., and I live in Lisbon", "... but my cat is Tom", "...; I ...".
_CLAUSE_BREAK = re.compile(
    r"\s*;\s*"
    r"|\s*,\s*(?:(?:and|but|plus|so|also)\s+)?(?:(?:now|then|also|today|currently)\s+)?(?=(?:i|i'm|i've|my)\b)"
    r"|\s+(?:and|but|plus)\s+(?:(?:now|then|also|today|currently)\s+)?(?=(?:i|i'm|i've|my)\b)", re.I)
# A clause needs a verb to stand on its own; otherwise "My wife and I live here" would split after "My wife".
_HAS_VERB = re.compile(
    r"'(?:m|ve|re)\b|\b(?:is|are|was|were|am|have|has|had|live|lives|work|works|like|likes|love|loves|enjoy|"
    r"prefer|speak|speaks|play|plays|drive|drives|study|studies|grew|born|got|own|owns|hate|hates|called|named|"
    r"moved|go|goes|went|do|does|did|don't|can't|\w{2,}ed)\b", re.I)


def _clauses(sentence: str) -> list[str]:
    norm = _norm(sentence)
    clauses: list[str] = []
    start = 0
    for m in _CLAUSE_BREAK.finditer(norm):
        left, right = norm[start:m.start()], norm[m.end():]
        if m.group(0).strip() == ";" or (_HAS_VERB.search(left) and _HAS_VERB.search(right)):
            clauses.append(sentence[start:m.start()])
            start = m.end()
    clauses.append(sentence[start:])
    return [c.strip() for c in clauses if c.strip()]


# Words that open a sentence without carrying content; stripped repeatedly ("Oh, well, by the way, ...").
_FILLER = re.compile(
    r"(?:oh|ah|well|so|and|also|plus|now|btw|by the way|actually|anyway|anyways|um+|uh+|hmm+|ok|okay|yeah|yes|yep|"
    r"no|nope|fyi|for the record|fun fact|to be honest|honestly|tbh|funnily enough|"
    r"(?:hi|hey|hello|hiya|howdy)(?: there)?|good (?:morning|afternoon|evening))\b[\s,!.:;—–-]*", re.I)
# Lead-ins that wrap a statement: "Please remember that my dog is Rex", "As I said, I live in Lisbon".
_LEAD_IN = re.compile(
    r"(?:(?:please|pls)\s+)?(?:remember|note|keep in mind|don't forget|do not forget|never forget)(?:\s+that)?[\s,:]+"
    r"|(?:as\s+|like\s+)?i\s+(?:already\s+|just\s+)?(?:told you|said|mentioned)(?:\s+(?:before|earlier|already))?"
    r"(?:\s+that)?[\s,:]+"
    r"|(?:just\s+)?so\s+you\s+know(?:\s+that)?[\s,:]*|for your information[\s,:]*|you should know(?:\s+that)?\s+"
    r"|i\s+(?:want|wanted)\s+you\s+to\s+know(?:\s+that)?\s+|i\s+(?:should|must)\s+tell\s+you(?:\s+that)?\s+", re.I)
_GREETING = re.compile(r"(?:hi|hey|hello|hiya|howdy|good (?:morning|afternoon|evening))\b", re.I)
_TRAILING_PUNCT = " \t.!?…,;:\"”»)]"


def _decoration(c: str) -> bool:
    """Emoji and other symbols around a statement ("😀 I live in Lisbon 🇵🇹")."""
    return c.isspace() or unicodedata.category(c) in ("So", "Sk", "Cf", "Mn")


def _core_span(norm: str) -> tuple[int, int]:
    """Span of the statement proper: fillers, lead-ins and emoji off the front, punctuation and emoji off the end."""
    start, end = 0, len(norm)
    while True:
        while start < end and _decoration(norm[start]):
            start += 1
        m = _FILLER.match(norm, start) or _LEAD_IN.match(norm, start)
        if not m or m.end() == start:
            break
        start = m.end()
    while end > start and (norm[end - 1] in _TRAILING_PUNCT or _decoration(norm[end - 1])):
        end -= 1
    return start, end


def _core(norm: str) -> str:
    s, e = _core_span(norm)
    return norm[s:e]


# --- what is not a fact ---------------------------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"(?:what|who|whom|whose|where|when|why|how|which|do|does|did|can|could|would|will|should|shall|may|is|are|"
    r"am|was|were|have|has|had|isn't|aren't|don't|doesn't|didn't)\b", re.I)
_REQUEST_START = re.compile(
    r"(?:please|pls|plz|can you|could you|would you|will you|tell me|remind me|let me|let's|lets|help me|give me|"
    r"show me|teach me|explain|describe|list|write|find|make|call|go|stop|try|translate|summari[sz]e|recommend|"
    r"suggest|imagine|pretend|forget|guess|say|check|look|ask|answer|don't|do not)\b", re.I)
_HYPOTHETICAL_START = re.compile(r"(?:if|unless|suppose|supposing|imagine|what if|in case)\b", re.I)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|unless|wish|would|might|maybe|perhaps|someday|hypothetically|(?:i|you|we|he|she|they)'d)\b", re.I)
# Conversation, moods, opinions, wants and plans: first person, but nothing worth learning as a fact.
_CHITCHAT = re.compile(
    r"i(?:'m| am) (?:fine|good|ok|okay|great|well|alright|all right|doing (?:well|good|fine|great|ok|okay|alright)|"
    r"sorry|sure|not sure|back|here|glad|happy|excited|confused|curious|wondering|so|done|ready|listening|"
    r"kidding|joking|a bit|a little|going to|gonna|about to|trying to|looking for|thinking|tired|hungry|bored|"
    r"sad|sick|busy|late|lost|stuck|home|in|out|off|free|available|leaving|on my way)\b"
    r"|i (?:think|thought|guess|see|know|knew|mean|agree|disagree|understand|wonder|hope|suppose|believe|bet|"
    r"feel like|don't know|do not know|dunno|want|wanted|need|needed|will|'ll|should|must|just wanted|was wondering|"
    r"have a question|have a quick question|have no idea|told you|said|mentioned|forgot|remember|appreciate|"
    r"apologi[sz]e|am wondering|see what you mean)\b"
    r"|i(?: have|'ve got| need) to\b|i(?: have|'ve) been (?:thinking|wondering|meaning|trying|looking)\b"
    r"|i'(?:ll|ve got a question)\b|me too\b|my bad\b|my pleasure\b|thank", re.I)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|me|mine|myself)\b", re.I)


def _is_statement(said: str, core: str) -> bool:
    if re.search(r"\?[\s\"'”)\]]*$", said) or _QUESTION_START.match(core) or _REQUEST_START.match(core):
        return False
    if _HYPOTHETICAL_START.match(core) or _HYPOTHETICAL.search(core) or _CHITCHAT.match(core):
        return False
    return bool(_FIRST_PERSON.search(core))


# --- values and keys ------------------------------------------------------------------------------------------

# Where a value ends: an aside, a subordinate clause or a new subject ("Rex, who is three", "sushi because ...").
_VALUE_TAIL = re.compile(
    r"\s*[;(].*$|\s+[-–—]+\s.*$"
    r"|,?\s+(?:not|rather than|instead of)\s.*$"  # a correction: "Bobby, not Rex"
    r"|,?\s+(?:because|since|although|though|but|which|who|whom|whose|where|while|whereas|unless|when)\b.*$"
    r"|,?\s+(?:and|so|plus|or)\s+(?:he|she|it|they|we|you|i|his|her|its|their|our|that|this|there)\b.*$"
    r"|,\s*(?:he|she|it|they|we|you|i|his|her|its|their|our|that's|it's|this|by the way|btw|haha|lol|actually|"
    r"though|you know|thanks|thank you)\b.*$", re.I)
# Trailing time and degree words belong in the answer but not in the key: "tennis every Sunday" -> "tennis".
_KEY_TAIL = re.compile(
    r"\s+(?:now|too|also|as well|these days|nowadays|at the moment|right now|currently|actually|anyway|though|"
    r"lately|recently|anymore|a lot|so much|very much|quite a bit|sometimes|often|usually|always|fluently|well|"
    r"by the way|btw|every \w+|each \w+|on \w+days|on (?:the )?weekends?|at (?:the )?weekends?|"
    r"in my (?:free|spare) time|for (?:\w+ )?(?:years|months|weeks|days)|since \w+|last \w+|this \w+|next \w+|"
    r"(?:\w+ )?(?:years|months|weeks|days) ago|ago|yesterday|today|once|twice|(?:\w+ )?times)$", re.I)
_KEY_HEAD = re.compile(r"^(?:(?:a|an|the|my|some|being|to|on)\s+)+", re.I)
_CAPITALISED_RUN = re.compile(
    r"[A-Z][\w'’.-]*(?:\s+(?:(?:de|da|do|dos|das|del|la|le|of|upon|am|van|von|der)\s+)?[A-Z][\w'’.-]*)*")
# A negated value is no value ("my dog is not called Rex"); the fallback keeps such a sentence whole.
_NEGATED_VALUE = re.compile(r"(?:not|never|no longer)\b", re.I)
# A statement cut off before its value: "I was born in", "I have a dog called".
_UNFINISHED = re.compile(r"\b(?:in|on|at|to|of|for|with|from|a|an|the|my|is|are|was|called|named)$", re.I)
_PRONOUN_VALUE = re.compile(r"(?:it|that|this|them|him|her|you|me|there|one|so|too)$", re.I)


def _value(text: str) -> str:
    """A value as said, without the clause that follows it and without enclosing quotes."""
    value = _VALUE_TAIL.sub("", text).strip().rstrip(_TRAILING_PUNCT).strip()
    if len(value) > 1 and value[0] in "\"'“‘" and value[-1] in "\"'”’":
        value = value[1:-1].strip()
    if _PRONOUN_VALUE.match(value) or _NEGATED_VALUE.match(value) or _UNFINISHED.search(value):
        return ""
    return value


_DETAIL = re.compile(r"\s+(?:at|in|with|for|on|from|during|near|after|before)\s+.*$", re.I)


def _head_key(value: str) -> str:
    """The key without a trailing detail: "nurse at St. Mary's" -> "nurse", "hiking in the mountains" -> "hiking"."""
    return _key(_DETAIL.sub("", value))


def _key(value: str) -> str:
    key = value
    while (trimmed := _KEY_TAIL.sub("", key)) != key:
        key = trimmed
    key = _KEY_HEAD.sub("", key).strip(" \"'“”‘’")
    return key or value


def _place_key(value: str) -> str:
    """The place itself: the first proper name ("a small town in Norway" -> "Norway"), else the plain key."""
    m = _CAPITALISED_RUN.search(value)
    return m.group(0).rstrip(".") if m else _key(value)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
