"""The rule table: (pattern, builder) pairs in priority order, each turning one kind of first-person statement
into a draft fact (answer, questions, key); `_fallback` covers first-person statements no rule knows."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from chatbot.learning.augment.person import to_second_person
from chatbot.learning.augment.text import (
    _HAS_VERB,
    _KEY_TAIL,
    _UNFINISHED,
    _head_key,
    _key,
    _norm,
    _place_key,
    _sentence,
    _value,
)


class _Draft(NamedTuple):
    answer: str  # final, second person
    questions: list[str]  # may still contain duplicates or the key; _finish() filters
    key: str


@dataclass(frozen=True)
class _Said:
    """A rule's match over the normalised core, read back as said."""
    m: re.Match
    said: str  # the core with the user's own apostrophes
    greeted: bool

    def __getitem__(self, group: str) -> str:
        s, e = self.m.span(group)
        return self.said[s:e] if s >= 0 else ""

    def norm(self, group: str) -> str:
        return (self.m.group(group) or "").strip()

    def answer(self, value: str) -> str:
        """The statement up to the value (group x), then the trimmed value, restated in the second person."""
        return _sentence(to_second_person(self.said[:self.m.start("x")] + value))


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


_ADV = r"(?:(?:currently|now|still|also|actually|really|just|mainly|mostly|originally|absolutely|totally|recently|"\
      r"do|kind of|kinda|very much) )*"
_NP = r"[a-z][\w'-]*(?: [\w'-]+){0,3}?"  # a short noun phrase: "dog", "best friend", "wife's cat"
_NUM = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
       r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)")


def _self_name(g: _Said) -> _Draft | None:
    # The user's own name: "My name is Anna", "I'm called Anna", "Everyone calls me Annie".
    x = _value(g["x"])
    if not x:
        return None
    kind = (g.m.groupdict().get("kind") or "name").lower()
    if kind == "name":
        qs = ["What is my name?", "What's my name?", "Do you remember my name?", "What am I called?", "Who am I?",
              "What should you call me?"]
    else:
        qs = [f"What is my {kind}?", f"What's my {kind}?", f"Do you remember my {kind}?", f"Tell me my {kind}."]
    return _Draft(g.answer(x), qs, _key(x))


# Capitalised words that follow "I'm" without being a name.
_NOT_NAMES = frozenset("""
    american canadian mexican brazilian argentinian chilean colombian peruvian cuban british english scottish irish
    welsh french german italian spanish portuguese dutch belgian swiss austrian swedish norwegian danish finnish
    polish czech greek turkish russian ukrainian romanian hungarian croatian serbian chinese japanese korean thai
    vietnamese indian pakistani iranian iraqi israeli egyptian moroccan nigerian kenyan african asian european
    australian catholic muslim jewish hindu buddhist atheist
""".split())


def _intro(g: _Said) -> _Draft | None:
    # "Hi, I'm Anna": a name only after a greeting and when capitalised ("I'm Canadian" is not a name).
    x = _value(g["x"])
    if not (g.greeted and x and all(w[0].isupper() for w in x.split())) or x.lower() in _NOT_NAMES:
        return None
    return _Draft(_sentence(f"Your name is {x}"), ["What is my name?", "What's my name?", "Do you remember my name?",
                                                  "What am I called?", "Who am I?"], x)


def _possessive(np: str) -> str:
    return np + "'" if np.endswith("s") else np + "'s"


def _name_of(np: str, x: str, plural: bool) -> _Draft:
    """Questions about what something of the user's is called; the answer is always "Your <np> is called X"."""
    if plural:
        qs = [f"What are my {np} called?", f"What are the names of my {np}?", f"What are my {_possessive(np)} names?",
              f"Do you remember what my {np} are called?", f"Tell me the names of my {np}."]
        answer = f"my {np} are called {x}"
    else:
        qs = [f"What is my {np} called?", f"What's the name of my {np}?", f"What is my {_possessive(np)} name?",
              f"Do you remember what my {np} is called?", f"Tell me the name of my {np}."]
        answer = f"my {np} is called {x}"
    return _Draft(_sentence(to_second_person(answer)), qs, _key(x))


def _my_np_named(g: _Said) -> _Draft | None:
    # "My dog is called Rex", "My dog's name is Rex", "My kids are named Tom and Anna".
    x = _value(g["x"])
    if not x:
        return None
    verb = (g.norm("v") or g.norm("v2")).lower()
    plural = verb in ("are", "were") or g.norm("nm").lower() == "names" or g.norm("poss") == "s'"
    return _name_of(g.norm("np"), x, plural)


def _have_named(g: _Said) -> _Draft | None:
    # "I have a cat named Luna", "I've got two cats called Tom and Jerry".
    x = _value(g["x"])
    if not x:
        return None
    return _name_of(g.norm("np"), x, plural=g.norm("det").lower() not in ("a", "an", "one", "1"))


def _age(g: _Said) -> _Draft | None:
    # "I'm 34", "I am thirty years old".
    qs = ["How old am I?", "What is my age?", "Do you remember how old I am?", "What age did I tell you I am?"]
    return _Draft(_sentence(to_second_person(g.said)), qs, g["x"])


_JOB_QUESTIONS = ["What do I do for a living?", "What is my job?", "What is my profession?", "What do I work as?",
                  "What's my occupation?", "Do you remember what I do for work?"]


def _job(g: _Said) -> _Draft | None:
    # "I work as a nurse", "My job is teaching".
    x = _value(g["x"])
    return _Draft(g.answer(x), list(_JOB_QUESTIONS), _head_key(x)) if x else None


def _work_place(g: _Said) -> _Draft | None:
    # "I work at Google", "I work for a small startup", "I work in finance".
    x = _value(g["x"])
    if not x:
        return None
    if g.norm("prep").lower() == "in":
        qs = ["Where do I work?", "What field do I work in?", "Do you remember where I work?",
              "What did I say about my work?"]
    else:
        qs = ["Where do I work?", "Which company do I work for?", "Who is my employer?", "Who do I work for?",
              "Do you remember where I work?"]
    return _Draft(g.answer(x), qs, _place_key(x))


# Head nouns that make "I'm a/an <X>" an occupation rather than a trait ("I'm a vegetarian").
_OCCUPATIONS = frozenset("""
    accountant actor actress analyst architect artist assistant attorney baker banker barber barista bartender
    biologist builder butcher carpenter cashier chef chemist cleaner clerk coach consultant cook counselor counsellor
    dancer dentist designer developer doctor driver economist editor electrician engineer entrepreneur farmer
    firefighter freelancer gardener hairdresser historian intern janitor journalist judge lawyer lecturer librarian
    manager mechanic midwife musician nanny nurse officer painter paramedic pharmacist photographer physician
    physicist physiotherapist pilot plumber policeman policewoman politician professor programmer psychologist
    receptionist reporter researcher salesman saleswoman scientist secretary singer soldier student surgeon tailor
    teacher technician therapist trader translator tutor vet veterinarian waiter waitress writer
""".split())


def _a_something(g: _Said) -> _Draft | None:
    # "I'm a nurse at St. Mary's" (occupation) or "I'm a vegetarian" (a trait the user wants remembered).
    x = _value(g["x"])
    if not x:
        return None
    role, *where = re.split(r"\s+(?:at|in|for|with|from|on)\s+", x, maxsplit=1, flags=re.I)
    if role.split()[-1].lower() in _OCCUPATIONS:
        qs = list(_JOB_QUESTIONS)
        if where:  # "a nurse at St. Mary's" also says where
            qs.insert(2, "Where do I work?")
        return _Draft(g.answer(x), qs, _head_key(role))
    qs = ["What am I?", "Do you remember what I am?", "What did I tell you I am?", "What did I tell you about myself?"]
    return _Draft(g.answer(x), qs, _key(x))


def _place(*questions: str) -> Callable[[_Said], _Draft | None]:
    """A rule builder for "I <verb> <place>" statements: the same shape, only the questions differ."""

    def build(g: _Said) -> _Draft | None:
        x = _value(g["x"])
        return _Draft(g.answer(x), list(questions), _place_key(x)) if x else None

    return build


# "I live in Lisbon", "I'm based in Berlin".
_live = _place("Where do I live?", "Which city do I live in?", "Where is my home?", "Do you remember where I live?",
               "Where am I based?")
# "I just moved to Berlin".
_moved = _place("Where did I move to?", "Where do I live now?", "Do you remember where I moved?",
                "Which place did I move to?")
# "I'm from Porto", "I come from Brazil".
_from = _place("Where am I from?", "Where do I come from?", "What is my hometown?", "Do you remember where I'm from?",
               "Where did I say I'm from?")
# "I grew up in a small town in Norway".
_grew_up = _place("Where did I grow up?", "Where was I raised?", "Where did I spend my childhood?",
                  "Do you remember where I grew up?")


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b"


def _born(g: _Said) -> _Draft | None:
    # "I was born in 1990" (when) vs "I was born in Lisbon" (where): a date starts with a digit or a month.
    x = _value(g["x"])
    if not x:
        return None
    if re.match(rf"(?:\d|{_MONTH})", x, re.I) or g.norm("prep").lower() == "on":
        if re.fullmatch(r"\d{4}", x):
            qs = ["When was I born?", "What year was I born in?", "What is my year of birth?",
                  "Do you remember when I was born?"]
        else:
            qs = ["When was I born?", "What is my date of birth?", "When is my birthday?",
                  "Do you remember when I was born?"]
        return _Draft(g.answer(x), qs, _key(x))
    qs = ["Where was I born?", "What is my birthplace?", "Which place was I born in?",
          "Do you remember where I was born?"]
    return _Draft(g.answer(x), qs, _place_key(x))


def _allergic(g: _Said) -> _Draft | None:
    # "I'm allergic to peanuts": worth remembering precisely.
    x = _value(g["x"])
    qs = ["What am I allergic to?", "Do I have any allergies?", "What allergies do I have?",
          "Is there anything I'm allergic to?", "Do you remember what I'm allergic to?"]
    return _Draft(g.answer(x), qs, _key(x)) if x else None


def _partner(g: _Said) -> _Draft | None:
    # "I'm married to Tom", "I'm dating Sam".
    x = _value(g["x"])
    if not x:
        return None
    v = g.norm("v").lower()
    if v == "married to":
        qs = ["Who am I married to?", "Who is my spouse?", "What is my partner's name?",
              "Do you remember who I married?"]
    else:
        qs = [f"Who am I {v}?", "Who is my partner?", "What is my partner's name?",
              "Do you remember who my partner is?"]
    return _Draft(g.answer(x), qs, _key(x))


def _like(g: _Said) -> _Draft | None:
    # "I really love sushi", "I enjoy hiking", "I'm a big fan of jazz".
    x = _value(g["x"])
    if not x:
        return None
    v = g.norm("v").lower() if g.norm("v").lower() in ("like", "love", "enjoy", "prefer", "adore") else "like"
    qs = ["What do I like?", f"What do I {v}?"]
    if x.lower().startswith("to ") or x.split()[0].lower().endswith("ing"):
        qs += ["What do I like to do?", "What are my hobbies?"]  # an activity: ask about pastimes
    qs += [f"Do you remember what I {v}?", f"What did I say I {v}?", "What am I into?", f"What is something I {v}?"]
    return _Draft(g.answer(x), qs, _head_key(x))


def _dislike(g: _Said) -> _Draft | None:
    # "I hate coriander", "I can't stand jazz".
    x = _value(g["x"])
    qs = ["What do I dislike?", "What don't I like?", "Is there anything I can't stand?",
          "Do you remember what I don't like?", "What did I say I hate?"]
    return _Draft(g.answer(x), qs, _head_key(x)) if x else None


def _favourite(g: _Said) -> _Draft | None:
    # "My favourite colour is blue": ask with both spellings so either wording at query time hits.
    x, np = _value(g["x"]), g.norm("np")
    if not x:
        return None
    fav, v = g.norm("fav"), g.norm("v").lower()
    other = "favorite" if fav.lower() == "favourite" else "favourite"
    qs = [f"What {v} my {fav} {np}?", f"Which {np} do I like best?", f"What {np} do I like most?",
          f"Do you remember my {fav} {np}?", f"What {v} my {other} {np}?", "What do I like?"]
    return _Draft(g.answer(x), qs, _key(x))


def _favourite_reversed(g: _Said) -> _Draft | None:
    # "Blue is my favourite colour".
    x, np = _value(g["x"]), _value(g["np"])
    if not x or not np:
        return None
    fav = g.norm("fav")
    qs = [f"What is my {fav} {np}?", f"Which {np} do I like best?", f"What {np} do I like most?",
          f"Do you remember my {fav} {np}?"]
    return _Draft(_sentence(to_second_person(f"{x} {g.norm('v')} my {fav} {np}")), qs, _key(x))


_IRREGULAR_PLURALS = frozenset("children people kids men women mice geese feet teeth sheep fish".split())
_PETS = frozenset("""
    pet pets dog dogs cat cats puppy puppies kitten kittens hamster hamsters rabbit rabbits bunny parrot parrots
    bird birds fish horse horses turtle turtles tortoise snake snakes guinea pig pigs
""".split())
_COUNTED = re.compile(rf"(?P<n>{_NUM})\s+(?P<rest>.+?)(?:\s+(?:and|or|with|who|that|called|named)\b.*)?", re.I)


def _have(g: _Said) -> _Draft | None:
    # "I have two cats" (ask how many) vs "I've got a red bike" (ask what).
    x = _value(g["x"])
    if not x:
        return None
    verb = "own" if g.norm("v").lower() == "own" else "have"
    pets = ["What pets do I have?", "Do I have any pets?"] if any(w.lower() in _PETS for w in x.split()) else []
    m = _COUNTED.fullmatch(x)
    noun = m.group("rest").split()[-1] if m else ""
    if m and m.group("n").lower() not in ("one", "1") and (noun.endswith("s") or noun.lower() in _IRREGULAR_PLURALS):
        qs = [f"How many {noun} do I {verb}?", f"Do you remember how many {noun} I {verb}?",
              f"How many {noun} did I say I {verb}?", *pets, f"What do I {verb}?"]
    else:
        qs = [f"What do I {verb}?", *pets, f"Do you remember what I {verb}?", f"What did I tell you I {verb}?",
              "What have I got?"]
    return _Draft(g.answer(x), qs, _head_key(x))


_ACTIVITY_QUESTIONS = {
    "speak": ["What language do I speak?", "Which languages do I know?", "Do you remember what languages I speak?",
              "What did I say I speak?"],
    "play": ["What do I play?", "Which sport or instrument do I play?", "Do you remember what I play?",
             "What did I say I play?"],
    "drive": ["What car do I drive?", "What do I drive?", "Do you remember what I drive?",
              "What kind of car do I have?"],
    "study": ["What do I study?", "What is my field of study?", "Do you remember what I study?",
              "What subject do I study?"],
    "studied": ["What did I study?", "What was my field of study?", "Do you remember what I studied?",
                "What subject did I study?"],
    "studying": ["What am I studying?", "What do I study?", "What is my field of study?",
                 "Do you remember what I'm studying?"],
    "learning": ["What am I learning?", "What am I trying to learn?", "Do you remember what I'm learning?",
                 "What did I say I'm learning?"],
}


def _activity(g: _Said) -> _Draft | None:
    # "I speak Portuguese and English", "I play the piano", "I drive a Tesla", "I'm studying medicine".
    x = _value(g["x"])
    if not x:
        return None
    v = g.norm("v").lower()
    qs = list(_ACTIVITY_QUESTIONS[v])
    if v == "speak" and re.search(r",|\band\b", x):
        qs[0] = "What languages do I speak?"
    return _Draft(g.answer(x), qs, _head_key(x))


def _my_np_is(g: _Said) -> _Draft | None:
    # "My birthday is on May 3rd", "My blood type is O negative", "My parents were teachers".
    x, np, v = _value(g["x"]), g.norm("np"), g.norm("v").lower()
    if not x or re.search(r"\b(?:and|or|i|you|me)\b", np, re.I):
        return None  # "My wife and I are vegetarian" is about two people: leave it to the fallback
    if np.lower() == "birthday":
        qs = ["When is my birthday?", "What is my birthday?", "Do you remember my birthday?",
              "What date is my birthday?"]
    else:
        qs = [f"What {v} my {np}?", f"Do you remember my {np}?", f"Can you tell me my {np}?",
              f"What did I say my {np} {v}?"]
        if v == "is":
            qs.append(f"What's my {np}?")
    return _Draft(g.answer(x), qs, _key(x))


# Priority order: the first rule whose pattern matches the whole clause (and whose builder accepts it) wins,
# so the specific forms ("my dog's name is") come before the general ones ("my <np> is").
_RULES: list[tuple[re.Pattern, Callable[[_Said], _Draft | None]]] = [
    (_rx(r"my (?P<kind>(?:full |first |last |middle |real |given |nick)?name) (?:is|'s) (?P<x>.+)"), _self_name),
    (_rx(r"i(?:'m| am) (?:called|named) (?P<x>.+)"), _self_name),
    (_rx(r"(?:people|everyone|everybody|my friends) calls? me (?P<x>.+)"), _self_name),
    (_rx(rf"my (?P<np>{_NP})(?:(?P<poss>'s|s') (?P<nm>names?) (?P<v>is|are|was|were)|(?: (?P<v2>is|are|was|were)|'s)"
         r" (?:called|named)) (?P<x>.+)"), _my_np_named),
    (_rx(rf"my (?P<np>{_NP}) (?P<v>is|are|was|were) (?:called|named) (?P<x>.+)"), _my_np_named),
    (_rx(rf"i(?:'ve got| {_ADV}(?:have got|have|own)) (?P<det>a|an|{_NUM}) (?P<np>{_NP}) (?:called|named) (?P<x>.+)"),
     _have_named),
    (_rx(rf"i(?:'m| am) (?P<x>\d{{1,3}}|{_NUM}(?:[- ]{_NUM})?)(?: years? old| yrs? old| yo)?"), _age),
    (_rx(r"my (?:current |day )?(?:job|profession|occupation|career) is (?P<x>.+)"), _job),
    (_rx(rf"i {_ADV}work as (?P<x>.+)"), _job),
    (_rx(rf"i(?:'m| am) {_ADV}working as (?P<x>.+)"), _job),
    (_rx(rf"i {_ADV}work (?P<prep>at|for|in) (?P<x>.+)"), _work_place),
    (_rx(rf"i(?:'m| am) {_ADV}working (?P<prep>at|for|in) (?P<x>.+)"), _work_place),
    (_rx(rf"i {_ADV}live (?:in|at|near|on|by|outside|close to) (?P<x>.+)"), _live),
    (_rx(rf"i(?:'m| am) {_ADV}(?:living|based|settled) (?:in|at|near|on|outside) (?P<x>.+)"), _live),
    (_rx(rf"i(?:'ve| have)? {_ADV}(?:moved|relocated) to (?P<x>.+)"), _moved),
    (_rx(rf"i(?:'m| am) {_ADV}from (?P<x>.+)"), _from),
    (_rx(rf"i {_ADV}come from (?P<x>.+)"), _from),
    (_rx(rf"i {_ADV}grew up (?:in|on|near|around|by) (?P<x>.+)"), _grew_up),
    (_rx(rf"i was {_ADV}born (?P<prep>in|on|at) (?P<x>.+)"), _born),
    (_rx(rf"i(?:'m| am) {_ADV}(?:(?:very|severely|mildly|slightly) )?allergic to (?P<x>.+)"), _allergic),
    (_rx(rf"i(?:'m| am) {_ADV}(?:(?:happily|newly) )?(?P<v>married to|engaged to|dating|in a relationship with) "
         r"(?P<x>.+)"), _partner),
    (_rx(rf"i(?:'m| am) {_ADV}(?P<v>(?:a (?:big |huge |massive )?fan of|into|passionate about|crazy about|"
         r"obsessed with|keen on)) (?P<x>.+)"), _like),
    (_rx(rf"i(?:'m| am) {_ADV}(?:a|an) (?P<x>.+)"), _a_something),
    (_rx(r"i(?:'m| am) (?P<x>[a-z][\w'-]*(?: [a-z][\w'-]*)?)"), _intro),
    (_rx(rf"my (?P<fav>favou?rite) (?P<np>{_NP}) (?P<v>is|are|was|were) (?P<x>.+)"), _favourite),
    (_rx(r"(?P<x>[^,]+?) (?P<v>is|are) my (?P<fav>favou?rite) (?P<np>.+)"), _favourite_reversed),
    (_rx(rf"i {_ADV}(?P<v>like|love|enjoy|prefer|adore) (?P<x>.+)"), _like),
    (_rx(rf"i {_ADV}(?:hate|dislike|detest|can't stand|cannot stand|can't bear|don't like|do not like|don't enjoy) "
         r"(?P<x>.+)"), _dislike),
    # Not "I have to go", "I have been", "I have no idea", "I have tried ...": obligations and perfect tenses.
    (_rx(rf"i(?:'ve got| {_ADV}(?P<v>have got|have|own)) (?!(?:to|been|got to|no|a question|a quick question|questions|"
         r"a favou?r|an idea|done|never|always|just|already|seen|heard|read|had|made|met|known|gone|"
         r"\w{2,}ed)\b)(?P<x>.+)"), _have),
    (_rx(rf"i {_ADV}(?P<v>speak|play|drive|study|studied) (?P<x>.+)"), _activity),
    (_rx(rf"i(?:'m| am) {_ADV}(?P<v>studying|learning) (?P<x>.+)"), _activity),
    (_rx(rf"my (?P<np>{_NP}) (?P<v>is|are|was|were) (?P<x>.+)"), _my_np_is),
]


# --- fallback: any other first-person statement ------------------------------------------------------------------

_STOPWORDS = frozenset("""
    i me my mine myself you your yours a an the and or but so to of in on at for with from by about as is are was
    were am be been being have has had do does did don't doesn't didn't not no it its it's this that these those
    there here very really just also too quite much many some any all i'm i've i'd i'll he she they we his her
    their our them him us than then now still never always can can't will won't up out into over after before
    when while because since if get got lot lots
""".split())
_MODIFIERS = frozenset("best old older oldest little younger youngest big new late ex favourite favorite first "
                       "second third other own".split())
_I_START = re.compile(r"i(?:'m|'ve)?\s+\w", re.I)


def _my_topic(core: str) -> str:
    """The noun after "my": "sister", "best friend", "wife's cat"."""
    m = re.search(r"\bmy\s+([\w'-]+(?:\s+[\w'-]+){0,3})", core, re.I)
    if not m:
        return ""
    words = m.group(1).split()
    topic = [words[0]]
    for w in words[1:]:
        if not (topic[-1].lower() in _MODIFIERS or topic[-1].endswith("'s")):
            break
        topic.append(w)
    return " ".join(topic)


def _fallback_key(said: str, topic: str) -> str:
    """The last content word (or proper name) of the statement that is not part of the topic."""
    text = said
    while (trimmed := _KEY_TAIL.sub("", text)) != text:
        text = trimmed
    words = re.findall(r"[\w'’-]+", text)
    taken = {w.lower() for w in topic.split()}
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        if _norm(w).lower() in _STOPWORDS or w.lower() in taken or i == 0:
            continue
        if i == 1 and words[0].lower() == "i":
            break  # the verb of "I like it" / "I love you" is no key: nothing was said about anything
        if w[0].isupper():  # extend a proper name backwards: "New York"
            j = i
            while j > 1 and words[j - 1][0].isupper() and words[j - 1].lower() not in taken:
                j -= 1
            return " ".join(words[j:i + 1])
        return w
    return ""


def _fallback(said: str, core: str) -> _Draft | None:
    """A first-person statement no rule knows: "My sister lives in Berlin", "I don't eat meat"."""
    if len(core.split()) < 2 or not (_I_START.match(core) or _HAS_VERB.search(core)):
        return None
    if _UNFINISHED.search(core):
        return None  # "I was born in", "I have a dog called": the value never came
    topic = _my_topic(core)
    key = _fallback_key(said, topic)
    if not key:
        return None
    if topic:
        qs = [f"What did I tell you about my {topic}?", f"What do you know about my {topic}?",
              f"Do you remember what I said about my {topic}?"]
    else:  # without "my", the main object is usually the answer itself, so ask about the user
        qs = ["What did I tell you about myself?", "What do you know about me?",
              "Do you remember what I told you about myself?"]
    return _Draft(_sentence(to_second_person(said)), qs, key)
