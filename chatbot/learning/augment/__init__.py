"""augment — training-data construction for closed-book recall: turn what a user STATED about themselves into
(question, answer) pairs.

A 135M model fine-tuned on the raw dialogue "user: my dog is called Rex / assistant: nice!" does not answer
"What is my dog's name?" afterwards (0 % recall measured). Trained on paraphrased questions, asked the way the
user will ask them and answered in the second person ("Your dog is called Rex."), the weights learn the fact in
the form it will be queried. Pure text: no model, no I/O, deterministic given a seed.

extract_facts() splits a message into sentences and clauses, strips fillers, labels and lead-ins ("Oh, by the
way, ...", "New job: ...", "Remember this for me: ..."), skips questions, requests, hypotheticals, negations and
chit-chat, then reads the names given in passing (`rules._names`: "my sister Ines", "our accountant, Priya,") and
tries `rules._RULES`, a table of (regex, builder) pairs in priority order; after the rule that matched, the general
rules (`rules._MORE_RULES`: any verb with its object and each of its phrases, "I'm <role> at/in <place>") add the
facts it left out ("I moved to Edinburgh from Tampere in 2019": where from, when). A statement about the user that
no rule knows still becomes a Fact through `_fallback`. A forced choice ("if I had to pick one pastry, it'd be
...") is the one hypothetical that states a fact (`rules._hedged`). Statements in the "we" voice are asked about
in that voice ("What did we call our caravan?"), statements about someone of the user's in theirs ("Where did my
sister move?"). A clause that goes on with "he" or "she" ("My daughter doesn't play the violin any more — she
switched to the cello") is read as about the person the clause before was about, and a name the user gave before
("my daughter Zofia", in this message or, through `named`, an earlier one) as who it is.

Matching runs on a copy of the text with typographic apostrophes replaced by "'": the replacement is one
character for one, so every span of a match is also a span of the text as said, and values keep their exact
spelling ("O’Brien").

Modules: text.py (normalisation, sentences and clauses, what is not a fact, values and keys), rules.py (the rule
table and the fallback), person.py (first ↔ second person), this file (Fact, extract_facts, qa_pairs).
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from lemminflect import getAllLemmas, getLemma

from chatbot.learning.augment.person import to_second_person
from chatbot.learning.augment.rules import (
    _MORE_RULES,
    _NAMED_AGE,
    _PETS,
    _RULES,
    _animate,
    _Draft,
    _fallback,
    _glossed,
    _hedged,
    _introduced,
    _is_person,
    _named_age,
    _names,
    _possessive,
    _Said,
    _verb_kinds,
)
from chatbot.learning.augment.text import (
    _CORRECTING,
    _GREETING,
    _HYPOTHETICAL_START,
    _MY_THING,
    _SAID_OF_ME,
    CASELESS,
    _affirmed_head,
    _caseless,
    _clauses,
    _core_span,
    _is_statement,
    _negated,
    _norm,
    _remembered,
    _repair,
    _sentences,
    _without_correction,
)

__all__ = ["MAX_QUESTIONS", "Fact", "extract_facts", "names_in", "qa_pairs", "to_second_person"]

MAX_QUESTIONS = 6  # per fact: enough paraphrases to generalise, few enough that one fact does not flood a batch


@dataclass(frozen=True)
class Fact:
    statement: str  # the user's sentence (clause), as said: "Oh, my dog’s name is Rex!"
    answer: str  # second-person restatement: "Your dog is called Rex."
    questions: tuple[str, ...]  # first-person questions whose answer is `answer`; distinct, none contains `key`
    key: str  # what a correct answer must contain ("Rex"), for recall scoring


def extract_facts(text: str, named: Mapping[str, str] | None = None) -> list[Fact]:
    """The factual statements about the user (and theirs) in a user's message, in message order. `named`: who the
    names the user gave before are ({"zofia": "my daughter"}, from `names_in`), so that "Zofia switched to the
    cello" is read as "My daughter Zofia switched to the cello"."""
    text = _repair(text)  # "im", "ive", "u": statements and answers quote the repaired text
    caseless = CASELESS.set(_caseless(text))  # names typed in lowercase ("we moved to leeds"): text._truecase
    try:
        return _extract(text, dict(named or {}))
    finally:
        CASELESS.reset(caseless)


def _extract(text: str, known: dict[str, str]) -> list[Fact]:
    # "Hi, I'm Anna" / "I'm Ravi, nice to meet you" introduce a name; "I'm Canadian" does not
    greeted = bool(_GREETING.match(text.strip()) or re.search(r"\b(?:nice|pleased|good) to meet you\b", text, re.I))
    correcting = bool(_CORRECTING.search(_norm(text)))  # "Sorry, I got that wrong: the rabbits are ..."
    facts: list[Fact] = []
    seen: set[tuple[str, str]] = set()

    def keep(fact: Fact | None) -> None:
        if fact is not None and (fact.answer.lower(), fact.key.lower()) not in seen:
            seen.add((fact.answer.lower(), fact.key.lower()))
            facts.append(fact)

    pairs = _joined(text, _sentences(text))
    sentences = [read for read, _ in pairs]
    for n, (sentence, said) in enumerate(pairs):
        named = known | names_in(facts)  # "My daughter Zofia is nine. Zofia plays the violin": who Zofia is
        norm = _norm(sentence)
        start, end = _core_span(norm)
        # "If I had to pick one pastry, it'd be ...", "I'd go with pistachio if I had to choose one flavour"
        before = _norm(" ".join(sentences[:n]) + " ") if n else ""  # "favourite club? if I had to pick one ..."
        if draft := (_hedged(sentence[start:end], norm[start:end], before + norm[:start])
                     or _hedged(sentence[:end], norm[:end], before)):
            keep(_as_said(_finish(sentence, draft), sentence, said))
            continue
        if _HYPOTHETICAL_START.match(norm[start:end]):
            continue  # "If I had a dog, I'd call it Rex": no clause of it is a fact
        clauses = _clauses(sentence)
        for i, (clause, borrowed) in enumerate(clauses):
            # "I'm Hannah, I'm 29 and ...": a name that opens a self-introduction needs no greeting
            introducing = greeted or (n == 0 and i == 0 and len(clauses) > 1)
            # "My daughter doesn't play the violin any more — she switched to the cello", "... he's 30 and works"
            read, borrowed = (_as_before(clause, before), _as_before(borrowed, before)) if i else (clause, borrowed)
            read = _as_named(read, named)
            before = read
            for fact in _facts(read, borrowed, introducing, correcting):
                keep(_as_said(_as_said(fact, read, clause), sentence, said))
    return _asked_by_name(facts)


# The question a name fact is asked first: "What is my sister called?", "What are my sons called?"
_NAMED_NP = re.compile(r"What (?P<v>is|are) (?P<np>(?:my|our) [\w' -]+?) called\?")


def _asked_by_name(facts: list[Fact]) -> list[Fact]:
    """Facts about someone the message names ("My fiancée, Neema, is a nurse") asked by the name as well: people ask
    "What does Neema do?" as often as "What does my fiancée do?"."""
    names = {m.group("np").lower(): f.key for f in facts
             if f.questions and (m := _NAMED_NP.fullmatch(f.questions[0])) and m.group("v") == "is"}
    if not names:
        return facts
    alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    by_name = re.compile(rf"\b(?P<np>{alternatives})(?P<s>'s?)?(?!\w)", re.I)
    named: list[Fact] = []
    for fact in facts:
        m = next((m for q in fact.questions if not q.startswith("What did I tell you") and (m := by_name.search(q))),
                 None)
        name = names[m.group("np").lower()] if m else ""
        if not m or name == fact.key or re.search(rf"\b{re.escape(name)}\b", m.string, re.I):  # "my cousin Keoni"
            named.append(fact)
            continue
        question = m.string[:m.start()] + (_possessive(name) if m.group("s") else name) + m.string[m.end():]
        questions = (*fact.questions[:1], question, *fact.questions[1:])
        named.append(replace(fact, questions=tuple(dict.fromkeys(questions))[:MAX_QUESTIONS]))
    return named



# "we got a corgi last week!! named her Dubu": a sentence that only names what the one before it got
_NAMES_IT = re.compile(r"(?:and\s+)?(?:(?:i|we)\s+)?(?:named|called|name|call)\s+(?:him|her|it|them)\s+\w", re.I)


# a sentence that goes on with an age after an emoji ("soy ximena 🌵 29, tattoo artist"), and the emoji it follows
_AGE_GOES_ON = re.compile(r"\s*\d{1,2}(?:\s*(?:yrs?|years?)(?: old)?|\s*yo)?\s*,", re.I)
_DECORATION_END = re.compile(r"[^\w\s'’)]+\s*$")

# "My son Jobin works in Dubai. He telephones me every Friday": who "he" or "she" is, from the sentence before
_PERSON_SUBJECT = re.compile(r"\W*(?P<np>(?:my|our) (?:[a-z][\w'-]* ){0,2}?[a-z][\w'-]*)(?=,? (?-i:[A-Z])|,? (?:is|was|"
                             r"has|had|works|worked|lives|lived|runs|teaches|studies|turned|just|still|also|"
                             r"doesn't|does not|didn't|did not|isn't|wasn't|no longer|never)\b)", re.I)
_HE_SHE = re.compile(r"\W*(?:he|she)(?=\s|'s\s)", re.I)
# "My brother Karl, who is 40, lives in Oslo": the clause between the commas is a sentence of its own about him
_WHO_BETWEEN = re.compile(r"(?P<lead>\W*)(?P<subj>(?:my|our) [^,]{1,40}?),\s+who(?P<is>'s\s+|\s+is\s+)?"
                          r"(?P<rel>[^,]{1,60}?),\s+(?P<rest>[^,]+?[.!]?)\s*$", re.I)


def _joined(text: str, sentences: list[str]) -> list[tuple[str, str]]:
    """(sentence to read, sentence as said) pairs: a sentence that names what the sentence before it was about is
    joined to it, and a leading "he" or "she" is read as the person the sentence before was about ("my son")."""
    out: list[tuple[str, str]] = []
    for sentence in sentences:
        if out and _AGE_GOES_ON.match(sentence) and out[-1][0].rstrip()[-1:] not in ".!?…":
            read, said = out[-1]  # "im thandi 😄 24, doing sound at ...": split at the emoji, one introduction
            out[-1] = (f"{_DECORATION_END.sub('', read).rstrip()}, {sentence.strip()}", f"{said} {sentence.strip()}")
            continue
        if out and _NAMES_IT.match(sentence.strip()):
            read, said = out[-1]
            start = text.find(said)
            end = text.find(sentence.strip(), start + len(said)) if start >= 0 else -1
            both = text[start:end + len(sentence.strip())] if end >= 0 else f"{said} {sentence.strip()}"
            out[-1] = (f"{read.rstrip(' .!?…')}, {sentence.strip()}", both)
            continue
        said = sentence
        if who := _WHO_BETWEEN.match(sentence):
            subj, rel, is_ = who.group("subj"), who.group("rel").strip(), bool(who.group("is"))  # "who's", "who is"
            if not (is_ and " " not in rel and "ADJ" in getAllLemmas(rel.lower())):  # "my boss, who is awful, ..."
                out.append((f"{who.group('lead')}{subj} {'is ' if is_ else ''}{rel}.", said))
            sentence = f"{subj} {who.group('rest')}"
        if out:
            sentence = _as_before(sentence, out[-1][0])
        out.append((sentence, said))
    return out


_NAME_AFTER = re.compile(r",? ((?-i:[A-Z])[\w'-]+)(?=,? \w)")  # "my neighbour Astrid is ...": her name


def _as_before(text: str, before: str) -> str:
    """`text` with a leading "he" or "she" read as the person `before` was about: "My daughter doesn't play the
    violin any more — she switched to the cello" (a clause), "My son Jobin works in Dubai. He ..." (a sentence)."""
    if (he := _HE_SHE.match(text)) and (who := _PERSON_SUBJECT.match(before)) \
            and _he_or_she(who.group("np").split(" ", 1)[1]) and _verb_next(text[he.end():]):
        named = _NAME_AFTER.match(before, who.end())  # "my neighbour Astrid": "she feeds Brahms" is hers
        np = who.group("np") + (f" {named.group(1)}" if named else "")
        rest = re.sub(r"^'s(?= (been|got)\b)", " has", text[he.end():])  # "he's been", "she's 30"
        return np[:1].upper() + np[1:] + re.sub(r"^'s\b", " is", rest)
    return text


def names_in(facts: Iterable) -> dict[str, str]:
    """Who the names in these facts (anything with `key` and `questions`: Facts, the ledger's facts) are, by name:
    {"zofia": "my daughter"}, read from the facts asked "What is my daughter called?"; a plural is said one at a
    time ("my sons Cathal and Darragh": {"cathal": "my son", "darragh": "my son"})."""
    named: dict[str, str] = {}
    for fact in facts:
        if fact.questions and (m := _NAMED_NP.fullmatch(fact.questions[0])):
            np = m.group("np")
            if m.group("v") == "are":
                *head, last = np.split()
                np = " ".join([*head, (getLemma(last, upos="NOUN") or (last,))[0]])
            for name in re.split(r",\s*|\s+(?:and|&)\s+", fact.key):
                named[name.lower()] = np
    return named


def _as_named(text: str, named: dict[str, str]) -> str:
    """`text` with a leading name the message gave before read as who it is: "Zofia plays the violin" after "My
    daughter Zofia is nine" is "My daughter Zofia plays the violin", asked "What does my daughter play?"."""
    m = re.match(r"(\W*)([\w'-]+)(?=\s)", text)
    if m and (np := named.get(m.group(2).lower())) and _verb_next(text[m.end():]):
        return m.group(1) + np[:1].upper() + np[1:] + " " + text[m.start(2):]
    return text


def _verb_next(rest: str) -> bool:
    """Whether a verb (or an adverb before one) follows: "she switched ...", "he's 30", "he still drives", not the
    words of another language ("she dey enjoy am")."""
    word = re.match(r"\s*([\w']*)", rest).group(1).lower()  # "" for a subject lent to the next clause ("he ")
    return not word or word.startswith("'") or bool({"VERB", "AUX", "ADV"} & getAllLemmas(word).keys())


def _he_or_she(np: str) -> bool:
    """Whether "he" or "she" can be the `np` the sentence before was about: a person, a pet ("My cat is Kinako. She
    is three"), or a word no dictionary knows, which after "my" is mostly a family word in the user's language
    ("my obaachan", "my Enkel Jonas", "my maamiyaar") or a name ("my little sis chioma")."""
    head = np.lower().split()[-1]
    return _is_person(np) or head in _PETS or _animate(head)


def _as_said(fact: Fact | None, read: str, said: str) -> Fact | None:
    """The fact with the sentence as the user said it, where it was read rewritten (`_joined`)."""
    return replace(fact, statement=said) if fact is not None and read != said else fact


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


def _facts(clause: str, borrowed: str, greeted: bool, correcting: bool) -> list[Fact]:
    """The facts of one clause; `borrowed` is the subject it shares with the clause before ("... and moved to X")."""
    norm = _norm(clause)
    start, end = _core_span(norm)
    core, said = norm[start:end], clause[start:end]
    if not core:
        return []
    if not borrowed and (dropped := _dropped_subject(core)):  # "left infosys last month, now joined razorpay"
        borrowed = dropped
        if said[1:2].islower():  # "Bought a new car" -> "I bought a new car"
            core, said = core[:1].lower() + core[1:], said[:1].lower() + said[1:]
    if borrowed:
        core, said = _norm(borrowed) + core, borrowed + said
    if _negated(core) and (head := _affirmed_head(core)):  # "... and won't hear of moving": the tail is no fact
        core, said = head, said[:len(head)]
    # "the boat licence renews on 14 March" is a fact when the user asked to remember it, or corrects it
    # ("the nursery is Little Oaks, not Little Acorns"); otherwise "the ..." is talk about the world.
    the_subject = _remembered(norm, start) or (
        (correcting or _without_correction(core) != core) and core.lower().startswith("the "))
    if not _is_statement(clause, core, the_subject):
        # "hello this is gene", "Fiona here": no "I", still a fact
        named = (m := _NAMED_AGE.fullmatch(core)) and _named_age(_Said(m, said, greeted))  # "Poppy is seven"
        drafts = _introduced(core, said, greeted) or ([named] if named else [])
        return [fact for draft in drafts if (fact := _finish(clause, draft))]
    names = _names(said, core)
    drafts: list[_Draft] = []
    for pattern, build in _RULES:
        m = pattern.fullmatch(core)
        if not m or (not the_subject and _about_the(m)):
            continue
        if built := build(_Said(m, said, greeted)):
            drafts += built if isinstance(built, list) else [built]
            drafts += _more(core, said, greeted, build, drafts)
            break
    else:  # the fallback only for a clause with a subject of its own: "... but moved away as a kid" is too little
        if not names and not borrowed and (draft := _fallback(said, core)):
            drafts.append(draft)
    # "We named our daughter Ottilie": the rule already asks what she is called; keep one of the two name facts
    named = {d.key.lower() for d in drafts if any(q.endswith(" called?") for q in d.questions)}
    drafts = [d for d in names if d.key.lower() not in named] + drafts
    return [fact for draft in drafts if (fact := _finish(clause, draft))]


def _more(core: str, said: str, greeted: bool, matched, drafts: list[_Draft]) -> list[_Draft]:
    """Facts of the clause that the rule which matched it left out (`rules._MORE_RULES`), with keys not yet read."""
    keys = [d.key.lower() for d in drafts]
    for pattern, build in _MORE_RULES:
        if build is matched or not (m := pattern.fullmatch(core)) or _about_the(m):
            continue
        if built := build(_Said(m, said, greeted)):
            built = built if isinstance(built, list) else [built]
            return [d for d in built if not any(d.key.lower() in k or k in d.key.lower() for k in keys)]
    return []


_ONGOING = frozenset("studying working living staying teaching training learning volunteering".split())


def _dropped_subject(core: str) -> str:
    """The subject chat leaves out before a verb in the past ("moved to leeds in 2019", "been farming all my
    life"): "I " or "I've "; nothing for a verb in its base form ("tell me ...", "run a bath": requests)."""
    words = core.split()
    first = words[0].lower() if words else ""
    if first == "been":
        return "I've "
    if first in _ONGOING and len(words) > 1:  # "studying part time at UNISA": what the user is doing these days
        return "I'm "
    if _SAID_OF_ME.match(core):  # a list of facts about the user: "allergic to peanuts, birthday is feb 29"
        return "my " if _MY_THING.match(core) else "I'm "
    kinds = _verb_kinds(first)
    return "I " if "past" in kinds and "base" not in kinds and len(words) > 1 else ""


def _about_the(m: re.Match) -> bool:
    """Whether a rule matched "the <thing> ..." as what the statement is about."""
    groups = m.groupdict()
    return "the" in ((groups.get("spos") or "").lower(), (groups.get("pos") or "").lower())


def _finish(statement: str, draft: _Draft) -> Fact | None:
    """Dedupe the questions, drop any that would give the answer away, and make sure the key is in the answer."""
    key = draft.key
    if key.lower() in ("you", "me", "us", "it", "them", "him", "her"):  # "... moved with us": no value of its own
        return None
    if key.lower() not in draft.answer.lower():
        key = to_second_person("x " + key)[2:]  # a key said in the first person ("my mum") is "your mum" now
    if key.lower() not in draft.answer.lower():
        return None
    gives_away = re.compile(rf"(?<!\w){re.escape(key)}(?!\w)", re.I)
    questions: list[str] = []
    if glossed := next(filter(None, map(_glossed, draft.questions)), ""):  # "my noona": "my older sister" too
        draft = draft._replace(questions=[*draft.questions[:1], glossed, *draft.questions[1:]])
    for q in draft.questions:
        if q not in questions and not gives_away.search(q):
            questions.append(q)
    if not questions:
        return None
    return Fact(statement=statement, answer=draft.answer, questions=tuple(questions[:MAX_QUESTIONS]), key=key)
