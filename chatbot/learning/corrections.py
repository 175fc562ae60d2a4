"""What a correction says: the value it replaces, and — where the extractor cannot read the new statement on its
own — the corrected fact, built from the old one.

A correction often gives the new value without the subject the rules need to read it as a fact ("it was eight
years in the navy, not six", "my mistake, it was actually 27 kilos of honey", "i said alfama but the cafe moved,
now its in graça"): the extractor then reads nothing, or only a generic fact, and the old value stays current.
But the ledger knows what is being corrected — the owner's current fact whose value the message replaces ("not
six", "i said alfama") or, after a correction cue, the one whose number the message restates ("27 kilos" for
"25 kilos of honey"). The corrected fact is that fact with its value swapped: the same questions, the old answer
with the new key. Measured on the development splits with scripts/bench_ledger.py (docs/extraction.md).
"""
from __future__ import annotations

import re
from dataclasses import replace

from chatbot.learning.augment.text import _CORRECTING, _norm
from chatbot.memory.facts import LedgerFact, NewFact

# A run of a value phrase: anything up to punctuation or a dash, but a hyphen inside a word is part of the value
# ("BN-5529", "30-12-06", "Ahmed-Ali").
_RUN = r"(?:[^,.;!?—–-]|(?<=\w)-(?=\w))"

# What follows "not" / "instead of" in a correction: the replaced value ("not a radiographer", "not the 3rd"),
# and what the speaker takes back ("i said alfama but", "left infosys", "not anymore on cardiology").
_REPLACED = re.compile(rf"\b(?:not|rather than|instead of|no longer|isn't|wasn't)\s+(?:anymore\s+|any more\s+)?"
                       rf"(?:an?\s+|the\s+|my\s+|our\s+|on\s+|in\s+|at\s+|with\s+)?({_RUN}{{1,60}})|"
                       rf"\bi (?:said|told you|wrote)\s+(?:it was\s+|it's\s+|its\s+)?({_RUN}{{1,40}}?)\s+but\b|"
                       rf"\b(?:switched|changed|shifted|swapped)\b{_RUN}{{0,40}}?\bfrom\s+(?:the\s+)?"
                       rf"({_RUN}{{1,40}}?)\s+to\b|"  # "we've switched Meera from swimming to water polo"
                       rf"\b(?:left|quit|leave|leaving|sold|no more|bye|rip)\s+"
                       rf"(?!(?:for|to|at|on|in|home|early|today|tomorrow|soon|lol|haha)\b)(?:the\s+|my\s+|our\s+)?"
                       rf"({_RUN}{{1,40}}?)(?=\s*[,.;:!?—–]|\s+(?:-|last|this|in|on|at|and|so|because|since|for|"
                       r"lol|now|finally)\b|\s*$)", re.I)
# "Juniper is the neighbours' guinea pig", "Larchfield only did the pre-seed", "Soggy Toast was taken":
# a name that the correction moves elsewhere
_MOVED = re.compile(r"(?:^|[.;:,—–-]\s*)([A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*)\s+(?:is|was|only|did|were|are)\b")
# "Uldis has retired", "Marmalade passed away", "the Tile Sisters broke up", "salt flats is no more": a name (or
# thing) that is gone, so a fact the same message states about its successor replaces its facts (only there:
# see `gone_values`)
_GONE = re.compile(r"(?:^|[.;:!?—–(]\s*|,\s*|\bso\s+)(?:ok\s+so\s+|so\s+|and\s+)?([\w'’&-]+(?:\s+[\w'’&-]+){0,3}?)\s+"
                   r"(?:has\s+|have\s+|had\s+|is\s+|was\s+|are\s+|were\s+)?(?:finally\s+|now\s+)?(?:retired|"
                   r"passed away|died|broke up|split up|closed|gave up the ghost|no more|gone|moved (?:away|out|to))\b",
                   re.I)
_MOVED_FROM = re.compile(rf"\b(?:moved|relocated|went)\b(?:{_RUN}|!){{0,40}}?\bfrom\s+(?:the\s+)?"
                         rf"({_RUN}{{1,40}}?)\s+to\b", re.I)
# An answer that says where someone is now, which "moved from X to Y" ends ("You live in X", "works ... in X")
_WHERE_NOW = re.compile(r"\b(?:lives?|living|works?|working|is based|are based|stays?|staying)\b", re.I)
_MOVING = re.compile(r"\b(?:moved|pushed|rescheduled|postponed)\b", re.I)  # no cue by themselves for _MOVED_FROM
# Cues that, beside _CORRECTING's, mark a message that restates a value: "actually it was 27 kilos", "update -",
# "oops", "sorry mistake". Only used to swap a number whose unit and topic the message repeats (see `corrected`).
_RESTATING = re.compile(r"\b(?:actually|update|updated|oops|mistake|correct myself|wrong|moved|rescheduled|"
                        r"postponed|pushed|brought forward|(?:down|up) to)\b", re.I)  # "we're down to 118 cows"
_STOP = {"a", "an", "the", "my", "our", "of", "in", "at", "on", "to", "and", "or", "is", "was", "it", "its", "it's",
         "i", "we", "me", "us", "you", "your", "he", "she", "they", "her", "his", "their", "for", "with", "now",
         "not", "just", "only", "really", "actually", "then", "that", "this", "one", "ones", "there", "here",
         "are", "were", "have", "has", "had", "do", "did", "be", "been", "so", "but", "since", "more", "like"}
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                 "hundred thousand").split()
_WORD_NUM = "(?:" + "|".join(_NUMBER_WORDS) + ")"
# "7:15" is one number (a time), as "32,000" is
_NUM = r"(?:\d+(?:[.,:]\d+)*(?:st|nd|rd|th)?|" + _WORD_NUM + r"(?:[- ]" + _WORD_NUM + r")*)"
_NUMBER = re.compile(r"\b" + _NUM + r"\b", re.I)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
# A day and its month are one value: "18 March" moved to "2 April" is not "2 March".
_DATE = re.compile(rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTH}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?)\b", re.I)
# Where the new value of a name or place starts: "now its in graça", "moved me to oncology ward",
# "retires at Easter, not Christmas" (the words before ", not").
_NEW_AFTER = re.compile(r"\b(?:now|moved|switched|changed|transferred|joined)\b(?:\s+(?:me|us|it|them|over|"
                        r"it's|its|it is|we're|were|we are|i'm|im|i am|to|in|at|on|with|joined|working|work|"
                        rf"for|by|doing|shifts|a|an|the|our|my))*\s+({_RUN}+)", re.I)
# "... at Tinderbox Coffee now", "working at the nandos on oxford road now" (where, first), then "hes a grab driver
# now": the value is the phrase after the first such word
_NEW_AT_NOW = re.compile(rf"\b(?:actually|really|in|at|on|to|with|called|named)\s+(?:an?\s+|the\s+)?({_RUN}+?)"
                         rf"\s+now\b", re.I)
_NEW_IS_NOW = re.compile(rf"\b(?:it's|its|it is|he's|hes|she's|shes|he is|she is|i'm|im|i am)\s+(?:an?\s+|the\s+)?"
                         rf"({_RUN}+?)\s+now\b", re.I)
_FROM_TO = re.compile(rf"\bfrom\s+{_RUN}+?\s+to\s+(?:the\s+)?({_RUN}+)", re.I)
_NEW_ACTUALLY = re.compile(rf"\b(?:actually|really)\s+(?:in|at|on|with|called|named|from)?\s*({_RUN}+)", re.I)
_BEFORE_NOT = re.compile(r"((?:[^,.;!?—–:-]|(?<=\w)-(?=\w))+?),?\s+(?:and\s+)?(?:not|rather than|instead of)\s",
                         re.I)
# Words that end a value phrase from its right ("oncology ward since march") or its left ("retires at Easter").
_BOUNDARY = {"in", "at", "on", "to", "for", "since", "as", "by", "from", "with", "of", "and", "but", "so",
             "because", "last", "this", "next", "now", "anymore", "is", "was", "are", "were", "it's", "its", "am",
             "i'm", "im", "be", "been", "a", "an", "the", "my", "our", "actually", "really", "just", "pala", "na",
             "lol", "haha", "jaja", "kkkk", "tho", "btw", "rn"}
_MAX_WORDS = 4
# A correction is a sentence or two. The patterns above scan the whole message and backtrack, so a long one
# (measured: 30 s for 21,000 characters of "now in now in …") is left to the extractor.
MAX_CHARS = 1000
# Words that lead to a value in an answer ("live in geelong", "a boat called Kestrel"): the new value follows the
# same word in the correction
_LEADS = {"in", "at", "to", "on", "from", "with", "called", "named", "near", "outside", "by"}


def words(text: str) -> set[str]:
    """Content words, ordinals as numbers ("the 2nd" and "2 February" share "2"), plurals as singulars."""
    found = re.findall(r"[\w'’-]+", _norm(text).lower())
    return {_stem(re.sub(r"^(\d+)(?:st|nd|rd|th)$", r"\1", w)) for w in found
            if w not in _STOP and (len(w) > 1 or w.isdigit())}


def _stem(word: str) -> str:
    """A plural as its singular, near enough to compare ("Wednesdays" ~ "Wednesday", "kilos" ~ "kilo")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def _said_wrong(norm: str) -> list[str]:
    """The values a correction says outright are wrong: "not X", "instead of X", "i said X but", "left X"."""
    return [next(g for g in m.groups() if g).strip() for m in _REPLACED.finditer(norm)]


def replaced_values(message: str) -> list[str]:
    """The values a correction says are wrong: "not X", "instead of X", "i said X but", "left X", "switched from
    X to", "moved from X to" after a cue, and "X is (something else)" after a cue."""
    norm = _norm(message)
    values = _said_wrong(norm)
    if _CORRECTING.search(norm) or _RESTATING.search(_MOVING.sub("", norm)):
        # "I need to correct myself: the choir has moved its rehearsals from Wednesdays to ..."; without a cue,
        # "I moved from Leeds to York" says nothing against "I grew up in Leeds"
        values += [m.group(1).strip() for m in _MOVED_FROM.finditer(norm)]
    if _CORRECTING.search(norm) or values:
        values += [m.group(1) for m in _MOVED.finditer(norm) if m.start(1) > 0]
    return values


def gone_values(message: str) -> list[str]:
    """Who or what a message says is gone: "Uldis has retired, so a young chap named Rainer takes care of my roof
    now". Not a correction by itself (nothing in it says which value is new), so it only lets a fact of the same
    message replace the gone one's (ledger.superseded), and never swaps a value (`corrected`)."""
    return [m.group(1) for m in _GONE.finditer(_norm(message))]


def _phrase(tokens: list[str]) -> str:
    """Up to _MAX_WORDS words of a value phrase, cut at the first boundary word."""
    out: list[str] = []
    for t in tokens:
        if t.lower() in _BOUNDARY or len(out) == _MAX_WORDS:
            break
        out.append(t)
    return " ".join(out).strip("'’\"")


def _new_name(message: str, replaced: list[str], old: LedgerFact) -> str:
    """The new value of a name, place or thing: where the old answer had the old one ("… live in geelong" →
    "in torquay"), else the words before ", not X", before "now" ("in torquay now"), after "actually", or after
    "now" / "moved to" / "joined"."""
    gone = {w for v in replaced for w in words(v)}

    def fresh(value: str) -> bool:  # content words beyond the replaced value's, and not the old key again
        said = words(value)
        return bool(said - gone) and said != words(old.key) and (not said & gone or len(said) > 1)

    at = re.search(r"(\w+)\s+" + re.escape(old.key), old.answer, re.I)
    if at and at.group(1).lower() in _LEADS:
        for m in re.finditer(r"\b" + at.group(1) + rf"\s+(?:the\s+|a\s+)?({_RUN}+)", message, re.I):
            if fresh(value := _phrase(m.group(1).split())):
                return value
    for m in _BEFORE_NOT.finditer(message):
        if fresh(value := _tail(m.group(1))):
            return value
    for pattern in (_FROM_TO, _NEW_AT_NOW, _NEW_IS_NOW, _NEW_ACTUALLY, _NEW_AFTER):
        for m in pattern.finditer(message):
            if fresh(value := _phrase(m.group(1).split())):
                return value
    return ""


def _tail(text: str) -> str:
    """The value phrase that ends `text`: "she's Merlin now" → "Merlin"."""
    back = list(reversed(text.split()))
    while back and back[0].lower() in ("now", "actually", "really", "anymore"):  # "she's Merlin now, not …"
        back.pop(0)
    return " ".join(reversed(_phrase(back).split()))


def _new_number(message: str, old_key: str, old: re.Match) -> tuple[str, str, bool] | None:
    """A number in the message other than the old key's, beside a word the old key has beside its number ("55
    sheep" for "40 sheep", "grade 5" for "grade 4"), else the only other number it holds ("34,000" for "32,000 a
    month"): (the new key, the new number, whether it came with the unit). `old`: the old key's number."""
    before = [_bare(w) for w in reversed(old_key[:old.start()].split())]
    after = [_bare(w) for w in old_key[old.end():].split()]
    bare = []
    for m in _NUMBER.finditer(message):
        number = m.group(0).strip()
        if number.lower() == old.group(0).lower() or (old.group(0)[0].isdigit() and not number[0].isdigit()):
            continue
        b = _matching(list(reversed(message[:m.start()].split())), before)[:2]
        a = _matching(message[m.end():].split(), after)[:2]
        while b and b[-1].lower() in _STOP:  # "grade 5", "10th of November", "27 kilos" (not "27 kilos of")
            b.pop()
        while a and a[-1].lower() in _STOP:
            a.pop()
        if b or a:  # "BN-5529" for "BN-0317": a unit joined by a hyphen stays joined
            return re.sub(r"(?<=-) | (?=-)", "", " ".join([*reversed(b), number, *a])), number, True
        bare.append(number)
    return (bare[0], bare[0], False) if len(bare) == 1 else None


def _bare(word: str) -> str:
    return word.strip(",.;:!?'’\"()").lower()


def _matching(words_: list[str], unit: list[str]) -> list[str]:
    """The leading words of `words_` that repeat the unit's ("of November" for "of November"), as said."""
    out = []
    for w, u in zip(words_, unit):
        if _bare(w) != u:
            break
        out.append(w.strip(",.;:!?'’\"()"))
    return out


def stated_as_new(message: str, key: str) -> bool:
    """Whether `key` is said where a correction puts its new value: before ", not X" ("we're going to Nagano for
    the ski trip, not Hokkaido")."""
    return any(key.lower() in m.group(1).lower() for m in _BEFORE_NOT.finditer(_norm(message)))


def _swap(old: LedgerFact, new_key: str, old_value: str, new_value: str) -> NewFact | None:
    """The old fact with `old_value` replaced by `new_value` in its answer, and `new_key` as its key."""
    if not new_key or new_key.lower() == old.key.lower() or old_value.lower() not in old.answer.lower():
        return None
    answer = re.sub(r"(?<!\w)" + re.escape(old_value) + r"(?!\w)", new_value.replace("\\", r"\\"), old.answer,
                    count=1, flags=re.I)
    return NewFact("", answer, new_key, old.questions)


def _swapped(old: LedgerFact, message: str, replaced: list[str]) -> tuple[NewFact | None, bool]:
    """The corrected fact (its statement left to the caller), and whether its new value came with the old one's
    unit."""
    if date := _DATE.search(old.key):
        dates = {d.group(0) for d in _DATE.finditer(message) if words(d.group(0)) != words(date.group(0))}
        if len(dates) != 1:
            return None, False
        new = dates.pop()
        return _swap(old, old.key.replace(date.group(0), new), date.group(0), new), True
    numbers = list(_NUMBER.finditer(old.key))
    gone = {w for v in replaced for w in words(v)}
    # the number the correction names ("not 20 yrs" in "9250 bus, 20 years already"), else the key's first
    if number := next((n for n in numbers if words(n.group(0)) & gone), numbers[0] if numbers else None):
        found = _new_number(message, old.key, number)
        if not found:
            return None, False
        return _swap(old, found[0], number.group(0), found[1]), found[2]
    new = _new_name(message, replaced, old)
    return _swap(old, new, old.key, new), False


def corrected(message: str, current: list[LedgerFact]) -> tuple[NewFact, int] | None:
    """The fact `message` corrects among the owner's current facts, with its new value swapped in, and the id of
    the old fact; None if the message does not read as a correction of one of them.

    Which fact: the one whose key shares a word with a replaced value ("not six" → "six years"); or, after a
    correction cue, the one whose number the message restates, on its topic ("actually it was 27 kilos of honey"
    → "22 kilos", asked "How much honey did we harvest?")."""
    if len(message) > MAX_CHARS:
        return None
    norm = _norm(message)
    replaced = replaced_values(norm)
    gone = {w for v in replaced for w in words(v)}
    named = [f for f in current if f.key and gone & words(f.key)]
    if len(named) > 1:  # "Annmaria is seven, not six": the value said to be wrong, before a name the message moves
        said_wrong = {w for v in _said_wrong(norm) for w in words(v)}
        named = [f for f in named if said_wrong & words(f.key)] or named
    if not named and (moved := [m.group(1) for m in _MOVED_FROM.finditer(norm) if m.group(0).lower().startswith(
            ("moved", "relocated"))]):  # "went from Leeds to York for the weekend" is a trip
        # "Jobin has moved from Dubai to Doha": where someone lives or works now (not "I grew up in Leeds")
        away = {w for v in moved for w in words(v)}
        named = [f for f in current if f.key and away & words(f.key) and _WHERE_NOW.search(f.answer)]
        replaced = replaced + moved
    if len(named) == 1:
        fact, _ = _swapped(named[0], norm, replaced)
        return (replace(fact, statement=message), named[0].id) if fact else None
    if named or not (_CORRECTING.search(norm) or _RESTATING.search(norm)):
        return None
    said = words(norm)
    fits = []
    for old in current:
        if not old.key or not (number := _NUMBER.search(old.key)):
            continue
        topic = (words(old.answer) | {w for q in old.questions for w in words(q)}) - words(number[0])
        fact, unit = _swapped(old, norm, replaced)
        if fact and said & topic - words(fact.key):  # "honey" for "27 kilos" (not "I walked 40 feet")
            fits.append((replace(fact, statement=message), old.id, unit))
    fits = [f for f in fits if f[2]] or fits  # "27 kilos" restates "22 kilos" rather than "four hives"
    return fits[0][:2] if len(fits) == 1 else None  # none, or several it could restate: left to the extractor
