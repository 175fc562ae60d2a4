"""The rule table: (pattern, builder) pairs in priority order, each turning one kind of statement into draft facts
(answer, questions, key); `_names` reads names given in passing ("my sister Ines", "our accountant, Priya,"),
`_hedged` hedged preferences ("if I had to pick one pastry, it'd be ..."), and `_fallback` covers first-person
statements no rule knows.

Who a statement is about decides how its questions are asked: the user ("Where do I live?"), the user's household
("Where do we live?", "What did we call our caravan?") or someone or something of theirs ("Where did my sister
move to?"). Rules match that subject (`_SUBJ`) and write their questions as templates over it (`_Subject.say`),
so one rule serves all three voices.

Most rules know their verbs by a closed list; the last ones (`_did_any`, `_be_where`) take any English verb that
lemminflect's dictionary knows and ask about each phrase of the statement in its own words ("I inherited the piano
from my uncle in Bergen" -> "Where did I inherit the piano?"), for phrasing the table was not written for."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from lemminflect import getAllInflections, getAllLemmas

from chatbot.learning.augment.person import to_second_person
from chatbot.learning.augment.text import (
    _CAPITALISED_RUN,
    _EPISODE_TIME,
    _HAS_VERB,
    _KEY_TAIL,
    _PRONOUN_VALUE,
    _UNFINISHED,
    CASELESS,
    _episode,
    _head_key,
    _key,
    _norm,
    _place_key,
    _sentence,
    _truecase,
    _unknown,
    _value,
    _without_correction,
)


class _Draft(NamedTuple):
    answer: str  # final, second person
    questions: list[str]  # may still contain duplicates or the key; _finish() filters
    key: str


_TOPIC_AT = 5  # where a third party's "What did I tell you about my sister?" goes: inside MAX_QUESTIONS (6)


@dataclass(frozen=True)
class _Subject:
    """Who a statement is about, named the way the user would name it in a question."""
    s: str  # "I", "we", "my sister", "our accountant", "the boat licence"
    p: str  # possessive: "my", "our", "my sister's"
    person: Literal["I", "we", "third"]
    plural: bool = False  # "our twins" are asked about like "we": are, do, were

    def say(self, template: str) -> str:
        """Fill a question template: {S} the subject, {P} its possessive, {a|b} the form for I/we/plural | for a
        third person singular, {a|b|c} the form for I | we or plural | a third person singular."""
        third = self.person == "third" and not self.plural

        def fill(m: re.Match) -> str:
            body = m.group(1)
            if body in ("S", "P"):
                return self.s if body == "S" else self.p
            options = body.split("|")
            if len(options) == 2:
                return options[third]
            return options[2] if third else options[0] if self.person == "I" else options[1]

        text = template
        while (filled := re.sub(r"\{([^{}]*)\}", fill, text)) != text:  # inner first: "{I'm|we're|{S} is}"
            text = filled
        return text[:1].upper() + text[1:]

    def ask(self, *templates: str) -> list[str]:
        questions = [self.say(t) for t in templates]
        if self.person == "third" and not self.s.lower().startswith("the "):
            questions = [*questions[:_TOPIC_AT], f"What did I tell you about {self.s}?"]
        return questions


_ME = _Subject("I", "my", "I")
_US = _Subject("we", "our", "we")


def _possessive(np: str) -> str:
    return np + "'" if np.endswith("s") else np + "'s"


def _third(pos: str, np: str, plural: bool) -> _Subject:
    s = f"{pos.lower()} {' '.join(np.split())}"
    return _Subject(s, _possessive(s), "third", plural)


def _subject_of(m: re.Match) -> _Subject:
    """The subject a rule matched: "I", "we" (also "my wife and I", "me and my mates"), or "my/our/the <np>"."""
    groups = m.groupdict()
    subj = (groups.get("subj") or "").lower()
    if not subj or subj == "i":
        return _ME
    if subj == "we" or re.search(r"\b(?:and|&)\b", subj):
        return _US
    np = groups["snp"]
    after = m.string[m.end("subj"):m.end("subj") + 8].lower()
    plural = bool(re.match(r"(?:'re| are| were| have|'ve| do)\b", after)) or (
        np.endswith("s") and not np.endswith(("ss", "us", "is", "'s")))
    return _third(groups["spos"], np, plural)


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
        return (self.m.groupdict().get(group) or "").strip()

    def answer(self, value: str, group: str = "x") -> str:
        """The statement up to the value (group x), then the trimmed value, restated in the second person."""
        return _sentence(to_second_person(self.said[:self.m.start(group)] + value))

    @property
    def subject(self) -> _Subject:
        return _subject_of(self.m)

    def ask(self, *templates: str) -> list[str]:
        return self.subject.ask(*templates)


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


_ADV = r"(?:(?:currently|now|still|also|actually|really|just|mainly|mostly|originally|absolutely|totally|recently|"\
      r"finally|only|already|even|do|kind of|kinda|very much|happily|proudly) )*"
_NP = r"[a-z][\w'-]*(?: [\w'-]+){0,4}?"  # a short noun phrase: "dog", "best friend", "staff ID at the school"
_NUM = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
       r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)")
# A name as written: capitalised words, a title in front ("Dr Okafor", "señor Beltrán"), particles ("van der").
_NAME = (r"(?-i:(?:(?i:dr|mr|mrs|ms|mx|prof|señor|señora|senor|senora|herr|frau|uncle|aunt|auntie)\.? )?"
         r"(?!I\b)[A-ZÀ-ÖØ-Þ][\w'-]*(?: (?:(?:de|da|van|von|der|la|le|del|di|du|al|el|bin) )?(?!I\b)[A-ZÀ-ÖØ-Þ][\w'-]*)"
         r"{0,2})")
_NAMES = rf"{_NAME}(?:, {_NAME}){{0,4}}(?:,? (?:and|&) {_NAME})?"  # "Clover and Juniper", "Maya, Leo and Sam"
# The noun phrase of a person or thing of the user's, in lower case so that a name after it stands out
# ("my sister Ines"): up to three words, acronyms allowed ("my GP", "our CTO"), no verbs or function words.
_SNP_WORD = r"(?-i:[a-z][\w'-]*|[A-Z][A-Z&]{1,4}s?)(?: in[- ]law)?"
_STOP_NP = (r"(?!(?:and|or|is|are|was|were|has|have|had|who|that|which|in|at|on|to|for|with|from|of|by|the|a|an|"
            r"just|really|also|still|now|finally|recently|never|always|usually|not|its|his|her|their|your|got|get|"
            r"gets|went|goes|made|did|does|says|said|told|last|this|next|every|yesterday|today|tonight|ago|\w+ed)\b)")
_SNP = rf"{_SNP_WORD}(?: {_STOP_NP}{_SNP_WORD}){{0,2}}"
# Whose statement it is: I; we (also "my wife and I", "me and my mates"); or my/our/the <np>, maybe with its name.
_PAIR = r"(?:(?:my|our) )?[\w'-]+(?: [\w'-]+)? (?:and|&) (?:i|me)|me and (?:my|our|the) [\w'-]+(?: [\w'-]+)?"
_SUBJ = rf"(?P<subj>i|we|{_PAIR}|(?P<spos>my|our|the) (?P<snp>{_SNP})(?:,? (?P<sname>{_NAMES}),?)?)"
# "'s" is "is" only before what a value starts with: "the band's the Damp Fiddles", not "my mum's cat Saffron".
_IS_S = (r"'s(?= (?:a|an|the|my|our|his|her|now|still|actually|really|called|named|on|at|in|from|not|away|"
         r"\d|(?-i:[A-Z])))")
_BE = rf"(?:'m| am|'re| are|{_IS_S}| is)"
_WAS = r"(?: was| were)"


_NOT_NAMES = frozenset("""
    american canadian mexican brazilian argentinian chilean colombian peruvian cuban british english scottish irish
    welsh french german italian spanish portuguese dutch belgian swiss austrian swedish norwegian danish finnish
    polish czech greek turkish russian ukrainian romanian hungarian croatian serbian chinese japanese korean thai
    vietnamese indian pakistani iranian iraqi israeli egyptian moroccan nigerian kenyan african asian european
    australian catholic muslim jewish hindu buddhist atheist
""".split())
# Capitalised words that are never a name in apposition ("my flight Monday"); months can be ("my daughter April").
_NOT_NAME_WORDS = _NOT_NAMES | frozenset("i i'm i've i'd i'll monday tuesday wednesday thursday friday saturday "
                                         "sunday mondays saturdays sundays christmas easter god".split())
_MONTHS = frozenset("january february march april may june july august september october november december".split())
_TITLE = re.compile(r"^(?:dr|mr|mrs|ms|mx|prof|señor|señora|senor|senora|herr|frau|uncle|aunt|auntie)\.?\s+", re.I)
# Heads of noun phrases that name a person, so that "Who is my accountant?" is a natural question.
_PEOPLE = frozenset("""
    mum mom mother dad father parents brother sister son daughter sons daughters kids children child wife husband
    partner fiancé fiancée fiance fiancee boyfriend girlfriend cousin aunt uncle niece nephew grandmother grandfather
    grandma grandpa granny nan nana gran grandson granddaughter stepdad stepmum stepmom stepfather stepmother stepson
    stepdaughter twin twins friend friends flatmate roommate housemate neighbour neighbor boss manager colleague
    coworker co-worker mentor teacher coach tutor doctor gp dentist vet accountant solicitor lawyer landlord landlady
    agent editor publisher therapist trainer cofounder co-founder cto ceo headteacher head cook chef assistant nanny
    cleaner eldest youngest oldest baby brother-in-law sister-in-law
    gogo lola lolo abuela abuelo oma opa nonna nonno babcia dziadek bibi babu ouma oupa bro sis
""".split())


# Words for family and pets that people type in their own language or slang, and ask about in English later
# ("my noona is a nurse" -> "where does my sister work"): `_glossed` asks once more in these words.
_GLOSS = {
    **dict.fromkeys("gogo lola abuela oma nonna babcia bibi ouma nan nana gran granny".split(), "grandmother"),
    **dict.fromkeys("lolo abuelo opa nonno dziadek babu oupa".split(), "grandfather"),
    **dict.fromkeys("mãe mamá mami maman".split(), "mum"), **dict.fromkeys("pai papá papi".split(), "dad"),
    **dict.fromkeys("noona unnie ate".split(), "older sister"),
    **dict.fromkeys("hyung oppa kuya".split(), "older brother"),
    "sis": "sister", "bro": "brother", "novia": "girlfriend", "gf": "girlfriend", "novio": "boyfriend",
    "bf": "boyfriend", "hubby": "husband", "wifey": "wife", "bestie": "best friend", "bff": "best friend",
    **dict.fromkeys("perro perrito perrita inu hund chien cachorro".split(), "dog"),
    **dict.fromkeys("gato gatito gatita kucing neko katze".split(), "cat"),
}
_GLOSSED = re.compile(rf"\b(?P<pos>my|our) (?P<adj>(?:older|elder|younger|little|big|baby) )?"
                      rf"(?P<w>{'|'.join(sorted(map(re.escape, _GLOSS), key=len, reverse=True))})\b", re.I)


def _glossed(question: str) -> str:
    """The question with a family or pet word in English ("Where does my noona work?" -> "... my older sister
    ..."), or "" where it has none."""
    def gloss(m: re.Match) -> str:
        english = _GLOSS[m.group("w").lower()]
        adj = "" if " " in english else (m.group("adj") or "")
        return f"{m.group('pos')} {adj}{english}"
    glossed = _GLOSSED.sub(gloss, question, count=1)
    return glossed if glossed != question else ""


def _is_person(np: str) -> bool:
    head = re.sub(r"[- ]in[- ]law$", "", np.lower()).split()[-1]
    return head in _PEOPLE or head.rstrip("s") in _PEOPLE


def _animate(word: str) -> bool:
    """A word for someone who can have an age or be "he" or "she": a person, a pet, or a word no dictionary knows
    (after "my", mostly a family word in the user's language: "obaachan", "maamiyaar")."""
    return _is_person(word) or word.rstrip("s") in _PETS or _unknown(word)


def _is_name(name: str) -> bool:
    """Capitalised, and not a weekday, a nationality or an acronym ("our van failed its MOT")."""
    words = _TITLE.sub("", name).split()
    return bool(words) and words[0][0].isupper() and not any(
        w.lower() in _NOT_NAME_WORDS or (len(w) > 1 and w.isupper()) for w in words)


def _name_key(name: str) -> str:
    return _TITLE.sub("", name.strip())


def _self_name(g: _Said) -> _Draft | None:
    # The user's own name: "My name is Anna", "I'm called Anna", "Everyone calls me Annie"; "our surname is Okafor".
    x = _value(g["x"])
    if not x:
        return None
    kind = (g.norm("kind") or "name").lower()
    voice = _US if g.norm("pos").lower() == "our" or g.norm("subj").lower() in ("we", "us") else _ME
    if kind == "name":
        qs = ["What is {P} name?", "What's {P} name?", "Do you remember {P} name?", "What {am|are} {S} called?",
              "Who {am|are} {S}?", "What should you call {me|us}?"]
    else:
        qs = [f"What is {{P}} {kind}?", f"What's {{P}} {kind}?", f"Do you remember {{P}} {kind}?",
              f"Tell me {{P}} {kind}."]
    said_is = re.search(r"(?:is|'s) $", g.m.string[:g.m.start("x")])  # not "My name Piotr"
    answer = g.answer(x) if said_is else _sentence(to_second_person(f"{voice.p} {kind} is {x}"))
    return _Draft(answer, voice.ask(*qs), _key(x))


def _looks_like_name(x: str) -> bool:
    """Capitalised, or typed in lowercase but no word a dictionary knows ("jas", "mads"; not "tired")."""
    return bool(x) and x.lower() not in _NOT_NAMES and all(w[0].isupper() or _unknown(w.lower()) for w in x.split())


def _my_name(x: str) -> _Draft:
    return _Draft(_sentence(f"Your name is {x}"), ["What is my name?", "What's my name?", "Do you remember my name?",
                                                  "What am I called?", "Who am I?"], x)


def _my_age(age: str) -> _Draft:
    return _Draft(_sentence(f"You're {age} years old"), _ME.ask("How old am I?", "What is my age?", "What age am I?"),
                  age)


def _my_home_town(place: str, key: str) -> _Draft:
    return _Draft(_sentence(f"You're from {place}"), _ME.ask(
        "Where am I from?", "Where do I come from?", "Do you remember where I'm from?", "What is my hometown?"), key)


def _intro(g: _Said) -> list[_Draft] | None:
    # "Hi, I'm Anna": a name only after a greeting and when it looks like one ("I'm Canadian" is not a name);
    # "yo im mads, 24": the age said with it.
    x = _value(g["x"])
    age = g.norm("age")
    if not ((g.greeted or age) and (_looks_like_name(x) or age and _plain_name(x))):
        return None  # "I'm Luana, 24, a nurse": a name and an age need no greeting; "yo im jay, 19": nor a capital
    drafts = [_my_name(x)]
    if age:
        drafts += [_my_age(age), *_role_after_intro(g["rest"])]
    return drafts


def _plain_name(x: str) -> bool:
    """One word that can be a name although a dictionary knows it ("jay", "rose", "mark"): no adjective ("tired"),
    no adverb ("actually"), not a word that is no name ("here", "fine")."""
    return " " not in x and x.lower() not in _NOT_NAMES and not {"ADJ", "ADV"} & getAllLemmas(x.lower()).keys() \
        and x.lower() not in _STOPWORDS


def _role_after_intro(rest: str) -> list[_Draft]:
    """ "im vuvu, 24, braider at Crown Queen Braids in soweto": after a name and an age, a job said without "I'm a"
    (and where it is done). Not a verb ("yo im mads, 24, just got back") and not a new clause ("and I farm ...")."""
    rest = _value(re.split(r"[^\w\s'’&.,()-]", rest)[0])  # up to an emoji: "... in soweto 💇🏾‍♀️ stay in ..."
    if home := re.fullmatch(r"(?:originally )?from (?P<x>.+)", rest, re.I):  # "yo im sam, 30, from leeds"
        return [_my_home_town(home.group("x"), _place_key(home.group("x")))]
    drafts = []
    if (home := re.fullmatch(r"(?P<role>.+?) from (?P<x>.+)", rest, re.I)) and (place := _proper_run(home["x"])):
        rest = home.group("role")  # "game dev from bandung": the job, and where the user is from
        drafts.append(_my_home_town(home.group("x"), place))
    rest = re.sub(r"^(?:a|an)\s+", "", rest, flags=re.I)  # "I'm Luana, 24, a nurse in Porto"
    words = rest.split()
    if not words or words[0].lower() in ("and", "but", "so", "from", "i", "we", "my", "just", "still") \
            or {"past", "ing"} & _verb_kinds(words[0].lower().rstrip(",")).keys():
        return []
    role, *where = re.split(r"\s+(?:at|in|for|with|on|near)\s+", rest, maxsplit=1, flags=re.I)
    role = re.sub(r"\s*\(.*$", "", role)  # "glassblower (soplador de vidrio)"
    head = role.split()[-1].lower() if role.split() else ""
    if len(role.split()) > 3 or not (_is_occupation(head) or re.search(r"\w{3}(?:er|or|ist|ian)$", head)):
        # "braider", "welder": agent nouns count here, where a name and an age have just been said
        return drafts
    a = "an" if role[:1].lower() in "aeiou" else "a"
    answer = _sentence(f"You're {a} {rest}")
    drafts.append(_Draft(answer, _ME.ask(*_JOB_QUESTIONS), _key(role)))
    if where and (place := _proper_run(where[0])):
        qs = _ME.ask("Where do I work?", "Which company do I work for?", "Do you remember where I work?",
                     f"Where do I work as {a} {role}?")
        drafts.append(_Draft(answer, qs, place))
    return drafts


_INTRODUCED = _rx(r"(?:(?:this is|it's|its|name's|names|my name|soy|me llamo|ich bin|mi chiamo|je m'appelle|"
                  r"meu nome é|sono) (?P<x>[a-z][\w'-]*)|(?P<y>[a-z][\w'-]*) (?:here|aqui|aquí|ici|hier|qui))"
                  rf"(?:,\s*(?P<age>\d{{1,2}}|{_NUM}(?:-{_NUM})?)(?: (?:yrs?|years?) old| yo)?(?:,\s+(?P<rest>.*))?"
                  r"|[,.!]\s*.*)?")


def _introduced(core: str, said: str, greeted: bool) -> list[_Draft]:
    """ "hello this is gene", "Name's Wanjiru.", "Hiya, Fiona here.", "My name Piotr", "soy ximena": a name said
    without "I"; "rizky here, 27, game dev from bandung": the age, job and home said with it."""
    m = _INTRODUCED.fullmatch(core)
    if not m or not (greeted or m.group("x") and not m.group(0).lower().startswith(("this", "it"))):
        return []
    group = "x" if m.group("x") else "y"
    x = said[m.start(group):m.end(group)]
    if not _looks_like_name(x) or x.lower() in ("it", "that", "everyone"):
        return []
    drafts = [_my_name(x)]
    if age := m.group("age"):
        drafts += [_my_age(age), *_role_after_intro(said[m.start("rest"):m.end("rest")] if m.group("rest") else "")]
    return drafts


def _name_questions(np: str, plural: bool, pos: str = "my", verb: str = "") -> list[str]:
    """Questions about what something of the user's is called, in the possessor's voice ("my", "our", "my wife's")."""
    if plural:
        qs = [f"What are {pos} {np} called?", f"What are the names of {pos} {np}?",
              f"What are {pos} {_possessive(np)} names?", f"Do you remember what {pos} {np} are called?",
              f"Tell me the names of {pos} {np}."]
    else:
        qs = [f"What is {pos} {np} called?", f"What's the name of {pos} {np}?",
              f"What is {pos} {_possessive(np)} name?", f"Do you remember what {pos} {np} is called?",
              f"Tell me the name of {pos} {np}."]
    if verb:  # "We adopted a greyhound and named her Pixel": asked the way it was done
        voice = "we" if pos == "our" else "I"
        qs.insert(1, f"What did {voice} {verb} {pos} {np}?")
    if _is_person(np):
        qs.insert(2, f"Who {'are' if plural else 'is'} {pos} {np}?")
    return qs


def _name_of(np: str, x: str, plural: bool, pos: str = "my", verb: str = "", key: str = "") -> _Draft:
    """A fact about what something of the user's is called; the answer is always "Your <np> is called X"."""
    np = " ".join(np.split())
    answer = f"{pos} {np} {'are' if plural else 'is'} called {x}"
    return _Draft(_sentence(to_second_person(answer)), _name_questions(np, plural, pos, verb), key or _key(x))


def _called(value: str) -> tuple[str, str] | None:
    """ "a narrowboat called Kestrel, moored near Bath" -> ("narrowboat", "Kestrel"): a thing and the name it has."""
    m = re.match(rf"(?:(?:a|an|the|my|our|one|two|\d+) )?(?:(?:new|little|small|old|big|tiny|lovely) )*(?P<np>{_NP}) "
                 rf"(?:called|named) (?P<name>{_NAMES})", _norm(value), re.I)
    return (m.group("np"), value[m.start("name"):m.end("name")]) if m and _is_name(m.group("name")) else None


def _my_np_named(g: _Said) -> _Draft | None:
    # "My dog is called Rex", "My dog's name is Rex", "My kids are named Tom and Anna", "my book is now called ...".
    x = _value(g["x"])
    if not x:
        return None
    verb = (g.norm("v") or g.norm("v2")).lower()
    plural = verb in ("are", "were") or g.norm("nm").lower() == "names" or g.norm("poss") == "s'"
    return _name_of(g.norm("np"), x, plural, _whose(g))


_NAMING_PAST = {"named": "name", "called": "call", "christened": "christen", "dubbed": "dub", "nicknamed": "nickname",
                "name": "name", "call": "call"}


def _named_it(g: _Said) -> _Draft | None:
    # "We adopted a greyhound and named her Pixel", "We have a small restaurant, it is called La Alacena",
    # "me and my mates started a band, we're called Soggy Toast", "I run a bike shop called Spoke & Chain".
    x = _value(g["x"])
    name = _name_run(x)
    if not name:
        return None
    subject = g.subject
    pos = subject.p
    verb = _NAMING_PAST.get(g.norm("nv").lower(), "call")
    draft = _name_of(g.norm("np"), x, False, pos, verb, key=name)
    return _Draft(g.answer(x), draft.questions, name)


def _call_my(g: _Said) -> _Draft | None:
    # "We call our session band the Wet Fiddles", "I named my car Bessie".
    x = _value(g["x"])
    if not x:
        return None
    verb, pos = _NAMING_PAST.get(g.norm("nv").lower(), "call"), g.norm("opos").lower()
    pos = g.subject.p if pos == "the" else pos
    draft = _name_of(g.norm("np"), x, False, pos, verb)
    qs = [f"What {'do' if verb == g.norm('nv').lower() else 'did'} {g.subject.s} {verb} {pos} {g.norm('np')}?",
          *draft.questions]
    return _Draft(g.answer(x), qs, draft.key)


def _np_i_call(g: _Said) -> _Draft | None:
    # "My car's a little yellow Fiat Panda I call Limoncello": a thing described, then its name.
    x = _value(g["x"])
    if not x or not _is_name(x):
        return None
    draft = _name_of(g.norm("np"), x, False, g.norm("pos").lower(), "call")
    return _Draft(g.answer(x), draft.questions, _key(x))


def _renamed(g: _Said) -> _Draft | None:
    # "We changed the band name to Cold Beans", "I renamed my blog to Quiet Pages".
    x = _value(g["x"])
    np = re.sub(r"\s+name$", "", g.norm("np"), flags=re.I)
    if not x or not np:
        return None
    pos = g.subject.p if g.norm("opos").lower() == "the" else g.norm("opos").lower()
    return _Draft(g.answer(x), _name_of(np, x, False, pos).questions, _name_run(x) or _key(x))


def _name_run(value: str) -> str:
    """The name a value starts with: "Spoke & Chain in Widcombe" -> "Spoke & Chain", "the Wet Fiddles" -> ..."""
    value = re.sub(r"^(?:the|a|an)\s+", "", value, flags=re.I)
    if CASELESS.get():  # what follows "named"/"called" is a name, even a word: "a cavoodle named biscuit"
        m = _CAPITALISED_RUN.match(_truecase(value[:1].upper() + value[1:]))
    else:
        m = _CAPITALISED_RUN.match(value)
    run = value[:m.end()] if m else ""
    return _name_key(run.rstrip(".")) if m and _is_name(m.group(0)) else ""


def _have_named(g: _Said) -> list[_Draft] | None:
    # "I have a cat named Luna", "I've got two cats called Tom and Jerry", "my sister has a dog called Rex",
    # "I've got a kelpie called Rusty and a cattle dog named Nugget".
    x = _value(g["x"])
    if not x:
        return None
    pos = g.subject.p
    second = re.match(rf"(?P<first>.+?) and (?:a|an) (?P<np>{_NP}) (?:called|named) (?P<name>{_NAMES})$",
                      _norm(x), re.I)
    if second and _is_name(second.group("name")):
        first, name = x[:second.end("first")], x[second.start("name"):]
        return [_name_of(g.norm("np"), first, False, pos), _name_of(second.group("np"), name, False, pos)]
    return [_name_of(g.norm("np"), x, plural=g.norm("det").lower() not in ("a", "an", "one", "1"), pos=pos)]


def _have_np_name(g: _Said) -> list[_Draft] | None:
    # "We've got two rabbits, Clover and Juniper", "I've a brother in Boston, Cormac, he's a carpenter".
    name = g["x"]
    if not _is_name(name):
        return None
    subject, np = g.subject, g.norm("np")
    plural = g.norm("det").lower() not in ("a", "an", "one", "1") or " and " in name or "&" in name
    drafts = [_name_of(np, name, plural, subject.p)]
    where = g["where"]
    if where and _CAPITALISED_RUN.search(_truecase(where)):
        person = _third(subject.p, np, plural)
        drafts.append(_Draft(_sentence(to_second_person(g.said[:g.m.end("where")])),
                             person.ask("Where {do|does} {S} live?", "Where {am|are|is} {S} based?",
                                        "Which city {am|are|is} {S} in?", "Do you remember where {S} {live|lives}?"),
                             _place_key(where)))
    return drafts


_MEASURED = re.compile(r"\b(?:size|number|score|count|total|budget|rent|salary|height|weight|pin|code|limit|"
                       r"handicap|rating|level|rank|price|bill|average|record|streak|mileage|days?|hours?)$", re.I)


def _age(g: _Said) -> _Draft | None:
    # "I'm 34", "I am thirty years old", "my son is seven (and ...)". Not "What is my age?": the forgetting
    # experiment (data/experiments/facts-v1.jsonl) probes with it, so training must not use its exact wording.
    if _MEASURED.search(g.subject.s):
        return None  # "my shoe size is ten": a number, not an age (`_my_np_is` asks what it is)
    np = g.norm("snp").lower() if g.m.groupdict().get("snp") else ""
    if np and not any(_animate(w) for w in np.split()) \
            and not re.search(r"\b(?:old|yo|yrs?|years?|turned)\b", g.m.group(0), re.I):
        return None  # "my locker is 41": a number; "my car is twelve years old" is an age; "my obaachan is 88" too
    said = g.said[:g.m.start("tail")] if g.m.group("tail") else g.said
    return _Draft(_sentence(to_second_person(said)), g.ask(
        "How old {am|are|is} {S}?", "How many years old {am|are|is} {S}?", "Do you remember how old {S} {am|are|is}?",
        "What age did I tell you {S} {am|are|is}?"), g["x"])


_NOT_A_NAMED_AGE = frozenset("it this that he she there here everything everyone everybody which what who my our your "
                              "his her their".split())
_NAMED_AGE = _rx(rf"(?P<x>{_NAME}) (?:is|'s|turned|has (?:just )?turned|just turned) (?:only |nearly |almost )?"
                 rf"(?P<age>\d{{1,3}}|{_NUM}(?:[- ]{_NUM})?)(?: (?:years?|yrs?) old| yo)?"
                 r"(?P<tail>(?:,| and| but| now| already| lol| haha) .*)?")


def _named_age(g: _Said) -> _Draft | None:
    """"Poppy is seven and has opinions about everything", "Jack is 25 and works ...": the age of someone the user
    names without "my" (their child, their dog: who else would they tell the bot the age of?)."""
    name = g["x"]
    if not _is_name(name) or name.split()[0].lower() in _NOT_NAMES | _NOT_A_NAMED_AGE:
        return None
    return _Draft(_sentence(g.said[:g.m.end("age")]), [f"How old is {name}?", f"What age is {name}?",
                                                      f"Do you remember how old {name} is?"], g["age"])


_JOB_QUESTIONS = ["What {do|does} {S} do for a living?", "What is {P} job?", "What is {P} profession?",
                  "What {do|does} {S} work as?", "What's {P} occupation?",
                  "Do you remember what {S} {do|does} for work?"]


def _job(g: _Said) -> _Draft | None:
    # "I work as a nurse", "My job is teaching", "my fiancé works as a paramedic".
    x = _value(g["x"])
    return _Draft(g.answer(x), g.ask(*_JOB_QUESTIONS), _head_key(x)) if x else None


def _work_place(g: _Said) -> _Draft | None:
    # "I work at Google", "I work for a small startup", "I work nights in the ICU", "I got a part-time job at ...".
    x = _value(g["x"])
    if not x:
        return None
    if g.norm("prep").lower() == "in" and not _CAPITALISED_RUN.search(_truecase(x)):
        qs = ["Where {do|does} {S} work?", "What field {do|does} {S} work in?",
              "Do you remember where {S} {work|works}?", "What did I say about {P} work?"]
    else:
        qs = ["Where {do|does} {S} work?", "Which company {do|does} {S} work for?", "Who is {P} employer?",
              "Who {do|does} {S} work for?", "Do you remember where {S} {work|works}?"]
    named = _called(x)
    if named:
        return _Draft(g.answer(x), g.ask(qs[0], *_name_questions(named[0], False, g.subject.p)[:3], *qs[1:]),
                      _name_key(named[1]))
    key = _place_key(x)
    if g.norm("prep").lower() == "in" or (re.search(rf"\bin (?:the )?{re.escape(key)}\b", x)
                                          and not x.startswith(key)):  # "in Lisbon", "at a bakery in Porto"
        qs = [qs[0], "In which city {do|does} {S} work?", "Where {am|are|is} {S} based?", *qs[-1:]]
    return _Draft(g.answer(x), g.ask(*qs), key)


def _member(g: _Said) -> _Draft | None:
    # "I have been a member of the Ashcombe Rowing Club since 1987", "my running club is ..." (elsewhere).
    x = _value(g["x"])
    if not x:
        return None
    qs = ["Which club {am|are|is} {S} a member of?", "What club {do|does} {S} belong to?",
          "What {am|are|is} {S} a member of?", "Do you remember which club {S} {belong|belongs} to?"]
    return _Draft(g.answer(x), g.ask(*qs), _place_key(x))


def _alias(g: _Said) -> _Draft | None:
    # "I write crime novels under the pen name Vera Lusk", "I go by the name Rusty".
    x = _value(g["x"])
    if not x:
        return None
    kind = g.norm("kind").lower()
    return _Draft(g.answer(x), g.ask(f"What is {{P}} {kind}?", f"What {kind} {{do|does}} {{S}} use?",
                                     "What name {do|does} {S} go by?", f"Do you remember {{P}} {kind}?",
                                     "What name {do|does} {S} write under?"), _key(x))


# Head nouns that make "I'm a/an <X>" an occupation rather than a trait ("I'm a vegetarian").
_OCCUPATIONS = frozenset("""
    accountant actor actress analyst architect artist assistant attorney baker banker barber barista bartender
    biologist builder butcher carpenter cashier chef chemist cleaner clerk coach consultant cook counselor counsellor
    dancer dentist designer developer doctor driver economist editor electrician engineer entrepreneur farmer
    firefighter freelancer gardener hairdresser historian intern janitor journalist judge lawyer lecturer librarian
    manager mechanic midwife musician nanny nurse officer painter paramedic pharmacist photographer physician
    physicist physiotherapist pilot plumber policeman policewoman politician professor programmer psychologist
    receptionist reporter researcher salesman saleswoman scientist secretary singer soldier student surgeon tailor
    teacher technician therapist trader translator tutor vet veterinarian waiter waitress writer registrar diplomat
    curator illustrator paralegal sonographer radiographer optician surveyor welder courier postman postwoman miner
    firmware sous caregiver carer housekeeper shopkeeper bookkeeper beekeeper cabbie trucker headmaster
    headteacher principal shepherd fisherman labourer laborer contractor auditor adviser advisor instructor dev
    coder animator
""".split())
_OCCUPATION_SUFFIX = re.compile(r"(?:grapher|ologist|ician|iatrist|apist|wright|smith|monger|ineer)$", re.I)


def _is_occupation(word: str) -> bool:
    return word in _OCCUPATIONS or bool(_OCCUPATION_SUFFIX.search(word))


def _a_something(g: _Said) -> _Draft | None:
    # "I'm a nurse at St. Mary's" (occupation) or "I'm a vegetarian" (a trait the user wants remembered).
    x = _value(g["x"])
    if not x:
        return None
    role, *where = re.split(r"\s+(?:at|in|for|with|from|on)\s+", x, maxsplit=1, flags=re.I)
    role = re.sub(r"\s+(?:here|there|now)$", "", role, flags=re.I)  # "a caregiver here in Mississauga"
    head = role.split()[-1].lower()
    named = _called(x)
    if named and g.subject.person == "third":  # "Our dog is a spaniel called Rolo": the dog's name
        draft = _name_of(g.norm("snp"), named[1], g.subject.plural, g.norm("spos").lower())
        return _Draft(g.answer(x), draft.questions, draft.key)
    past = g.norm("be").lower() in ("was", "were")
    if _is_occupation(head) and past:  # "My grandad was a miner in ..."
        qs = ["What did {S} do for a living?", "What was {P} job?", "What did {S} work as?",
              "What was {P} profession?", "Do you remember what {S} did for work?"]
        return _Draft(g.answer(x), g.ask(*qs), _head_key(role))
    if _is_occupation(head):
        qs = list(_JOB_QUESTIONS)
        if where:  # "a nurse at St. Mary's" also says where
            qs.insert(2, "Where {do|does} {S} work?")
        return _Draft(g.answer(x), g.ask(*qs), _head_key(role))
    if past:
        qs = ["What {was|were|was} {S}?", "Do you remember what {S} {was|were|was}?",
              "What did I tell you {S} {was|were|was}?"]
    elif g.subject.person == "third":
        qs = ["What {am|are|is} {S}?", "Do you remember what {S} {am|are|is}?", "What did I tell you {S} {am|are|is}?"]
    else:
        qs = ["What {am|are|is} {S}?", "Do you remember what {S} {am|are|is}?", "What did I tell you {S} {am|are|is}?",
              "What did I tell you about {myself|ourselves|{S}}?"]
    return _Draft(g.answer(x), g.ask(*qs), _key(role) if where else _key(x))  # where is a fact of its own


def _place(*questions: str) -> Callable[[_Said], _Draft | None]:
    """A rule builder for "<subject> <verb> <place>" statements: the same shape, only the questions differ."""

    def build(g: _Said) -> _Draft | None:
        x = _value(g["x"])
        if not x:
            return None
        named = _called(x)  # "We live on a narrowboat called Kestrel": the name is the thing to remember
        if named:
            qs = [*_name_questions(named[0], False, g.subject.p)[:3], *g.ask(*questions)]
            return _Draft(g.answer(x), qs, _name_key(named[1]))
        return _Draft(g.answer(x), g.ask(*questions), _place_key(x))

    return build


# "I live in Lisbon", "I'm based in Berlin", "my cousin lives in Kraków", "I've lived in Hobart for six years".
_live = _place("Where {do|does} {S} live?", "Which city {do|does} {S} live in?", "Where is {P} home?",
               "Do you remember where {S} {live|lives}?", "Where {am|are|is} {S} based?")
# "I just moved to Berlin", "my sister moved to Lyon".
_moved = _place("Where did {S} move to?", "Where {do|does} {S} live now?", "Do you remember where {S} moved?",
                "Which place did {S} move to?")
# "I'm moving to Toronto in June".
_moving = _place("Where {am|are|is} {S} moving to?", "Where {am|are|is} {S} moving?",
                 "Which city {am|are|is} {S} moving to?", "Where will {S} live?")
# "We're heading to Hokkaido for a ski trip", "I'm flying to Oslo on Friday": a trip with a place.
_trip = _place("Where {am|are|is} {S} going?", "Where {am|are|is} {S} heading?", "Where {am|are|is} {S} off to?",
               "Do you remember where {S} {am|are|is} going?")
# "I have been to Hokkaido many times": somewhere visited (a negated one, "never been to Kyoto", is no fact).
_visited = _place("Where {have|has} {S} been?", "Which places {have|has} {S} visited?",
                  "Do you remember where {S} {have|has} been?", "Where {have|has} {S} travelled to?")
# "I'm from Porto", "I come from Brazil", "my roommate is from Dakar".
_from = _place("Where {am|are|is} {S} from?", "Where {do|does} {S} come from?", "What is {P} hometown?",
               "Do you remember where {S} {am|are|is} from?", "Where did I say {S} {am|are|is} from?")
# "I grew up in a small town in Norway", "I was raised in Croydon".
_grew_up = _place("Where did {S} grow up?", "Where {was|were|was} {S} raised?",
                  "Where did {S} spend {my|our|their} childhood?",
                  "Do you remember where {S} grew up?")
# "My husband is away in Abuja", "my sister is staying in Rome".
_whereabouts = _place("Where {am|are|is} {S}?", "Where {am|are|is} {S} at the moment?",
                      "Do you remember where {S} {am|are|is}?", "Which city {am|are|is} {S} in?")


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b"
_ORDINAL = r"(?:(?:twenty|thirty)[- ])?(?:first|second|third|fifth|eighth|ninth|twelfth|\w+th)"
# A date as said: "3 May", "next Friday", "the fourteenth of March", or a holiday ("Christmas", "St David's Day").
_DATE = re.compile(rf"(?:the )?(?:\d|{_MONTH}|(?:mon|tues|wednes|thurs|fri|satur|sun)day|next\b|last\b|"
                   r"this (?:week|month|year|weekend)|tomorrow|tonight|"
                   rf"{_ORDINAL} of {_MONTH}|(?:christmas|xmas|easter|new year|diwali|eid|hanukkah|thanksgiving|"
                   r"halloween|midsummer|ramadan|boxing day)\b|(?-i:(?:St\.? |Saint )?[A-Z]\w+'s Day\b))", re.I)


# A day of the calendar: "19 october", "the 3rd", "March 5", "the fourteenth of March" (not "41" nor "next door")
_CALENDAR_DATE = re.compile(rf"(?:on )?(?:the )?(?:\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {_MONTH}|"
                            rf"\d{{1,2}}(?:st|nd|rd|th)\b|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?\b|"
                            rf"{_ORDINAL} of {_MONTH})", re.I)


def _born(g: _Said) -> _Draft | None:
    # "I was born in 1990" (when) vs "I was born in Lisbon" (where): a date starts with a digit or a month.
    x = _value(g["x"])
    if not x:
        return None
    if re.match(rf"(?:\d|{_MONTH})", x, re.I) or g.norm("prep").lower() == "on":
        if re.fullmatch(r"\d{4}", x):
            qs = ["When {was|were|was} {S} born?", "What year {was|were|was} {S} born in?",
                  "What is {P} year of birth?", "Do you remember when {S} {was|were|was} born?"]
        else:
            qs = ["When {was|were|was} {S} born?", "What is {P} date of birth?", "When is {P} birthday?",
                  "Do you remember when {S} {was|were|was} born?"]
        return _Draft(g.answer(x), g.ask(*qs), _key(x))
    qs = ["Where {was|were|was} {S} born?", "What is {P} birthplace?", "Which place {was|were|was} {S} born in?",
          "Do you remember where {S} {was|were|was} born?"]
    return _Draft(g.answer(x), g.ask(*qs), _place_key(x))


def _allergic(g: _Said) -> _Draft | None:
    # "I'm allergic to peanuts", "my husband is allergic to shellfish": worth remembering precisely.
    x = _value(g["x"])
    qs = ["What {am|are|is} {S} allergic to?", "{Do|Does} {S} have any allergies?",
          "What allergies {do|does} {S} have?", "Is there anything {I'm|we're|{S} is} allergic to?",
          "Do you remember what {I'm|we're|{S} is} allergic to?"]
    return _Draft(g.answer(x), g.ask(*qs), _key(x)) if x else None


def _partner(g: _Said) -> _Draft | None:
    # "I'm married to Tom", "I'm dating Sam".
    x = _value(g["x"])
    if not x:
        return None
    v = g.norm("v").lower()
    if v == "married to":
        qs = ["Who {am|are|is} {S} married to?", "Who is {P} spouse?", "What is {P} partner's name?",
              "Do you remember who {S} married?"]
    else:
        qs = [f"Who {{am|are|is}} {{S}} {v}?", "Who is {P} partner?", "What is {P} partner's name?",
              "Do you remember who {P} partner is?"]
    return _Draft(g.answer(x), g.ask(*qs), _key(x))


_REFERENCE = re.compile(r"(?:that|this|these|those|your)\b", re.I)  # "I love that idea": about the conversation


def _like(g: _Said) -> _Draft | None:
    # "I really love sushi", "I enjoy hiking", "I'm a big fan of jazz", "my dog loves cheese".
    x = _value(g["x"])
    if not x or _REFERENCE.match(x):
        return None
    said_v = g.norm("v").lower().removesuffix("s")
    v = said_v if said_v in ("like", "love", "enjoy", "prefer", "adore") else "like"
    third = {"like": "likes", "love": "loves", "enjoy": "enjoys", "prefer": "prefers", "adore": "adores"}[v]
    qs = ["What {do|does} {S} like?", f"What {{do|does}} {{S}} {v}?"]
    if x.lower().startswith("to ") or x.split()[0].lower().endswith("ing"):
        qs += ["What {do|does} {S} like to do?", "What are {P} hobbies?"]  # an activity: ask about pastimes
    qs += [f"Do you remember what {{S}} {{{v}|{third}}}?", f"What did I say {{S}} {{{v}|{third}}}?",
           "What {am|are|is} {S} into?", f"What is something {{S}} {{{v}|{third}}}?"]
    kind = re.match(rf"(?:the|a|an) (?P<noun>[a-z]+) {_NAME}", x)  # "the band Tinfoil Hearts"
    if kind:
        qs.insert(0, f"Which {kind.group('noun')} {{do|does}} {{S}} like?")
    return _Draft(g.answer(x), g.ask(*qs), _proper_run(x) or _head_key(x))


def _dislike(g: _Said) -> _Draft | None:
    # "I hate coriander", "I can't stand jazz".
    x = _value(g["x"])
    qs = ["What {do|does} {S} dislike?", "What {don't|doesn't} {S} like?", "Is there anything {S} can't stand?",
          "Do you remember what {S} {don't|doesn't} like?", "What did I say {S} {hate|hates}?"]
    return _Draft(g.answer(x), g.ask(*qs), _head_key(x)) if x and not _REFERENCE.match(x) else None


def _fav_np(np: str) -> str:
    np = " ".join(np.split())
    while (trimmed := _KEY_TAIL.sub("", np)) != np:
        np = trimmed
    return np


def _favourite(g: _Said) -> _Draft | None:
    # "My favourite colour is blue": ask with both spellings so either wording at query time hits.
    x, np = _value(g["x"]), _fav_np(g.norm("np"))
    if not x:
        return None
    fav, v, pos = g.norm("fav"), g.norm("v").lower().replace("'s", "is"), g.norm("pos").lower() or "my"
    other = "favorite" if fav.lower() == "favourite" else "favourite"
    voice = _US if pos == "our" else _ME
    qs = [f"What {v} {pos} {fav} {np}?", f"Which {np} {{do|does}} {{S}} like best?",
          f"What {np} {{do|does}} {{S}} like most?", f"Do you remember {pos} {fav} {np}?",
          f"What {v} {pos} {other} {np}?", "What {do|does} {S} like?"]
    named = _called(x)
    key = _name_key(named[1]) if named else _key(x)
    return _Draft(_sentence(to_second_person(f"{pos} {fav} {np} {v} {x}")), voice.ask(*qs), key)


def _favourite_reversed(g: _Said) -> _Draft | None:
    # "Blue is my favourite colour", "Pink Fir Apple is my favourite" (the thing itself said before).
    x, np = _value(g["x"]), _value(g["np"]) if g.norm("np") else ""
    if not x or (g.norm("np") and not np):
        return None
    fav, pos = g.norm("fav"), g.norm("pos").lower()
    voice = _US if pos == "our" else _ME
    if not np:
        qs = [f"What is {pos} {fav}?", "What {do|does} {S} like best?", f"Which one is {pos} {fav}?",
              f"Do you remember {pos} {fav}?"]
        return _Draft(_sentence(to_second_person(f"{x} {g.norm('v')} {pos} {fav}")), voice.ask(*qs), _key(x))
    qs = [f"What is {pos} {fav} {np}?", f"Which {np} {{do|does}} {{S}} like best?",
          f"What {np} {{do|does}} {{S}} like most?", f"Do you remember {pos} {fav} {np}?"]
    return _Draft(_sentence(to_second_person(f"{x} {g.norm('v')} {pos} {fav} {np}")), voice.ask(*qs), _key(x))


_IRREGULAR_PLURALS = frozenset("children people kids men women mice geese feet teeth sheep fish".split())
_PETS = frozenset("""
    pet pets dog dogs cat cats puppy puppies kitten kittens hamster hamsters rabbit rabbits bunny parrot parrots
    bird birds fish horse horses turtle turtles tortoise snake snakes guinea pig pigs
""".split())
_COUNTED = re.compile(rf"(?P<n>{_NUM})\s+(?P<rest>.+?)(?:\s+(?:and|or|with|who|that|called|named)\b.*)?", re.I)


_ABOUT = re.compile(r"(?:over|about|around|nearly|almost|roughly|approximately|some|like|more than|at least|"
                    r"just under) ", re.I)
_QUANTITY_NOUNS = frozenset("lot lots bit couple few pair number ton tons bunch load loads kind sort type".split())


# Where the noun phrase of a value ends: at a comma, a preposition, a conjunction or a time word ("six hives behind
# the house", "14,000 bottles of wine", "a tattoo of a koi")
_MODIFIER = re.compile(r",|\s+(?:of|in|at|on|for|with|from|to|near|by|behind|under|beside|inside|outside|above|"
                       r"below|around|towards?|next to|and|called|named|that|which|who|after|before|since|until|"
                       r"because|but|so|now|last|this|next|every)(?![\w'-])", re.I)  # not "an under-12 team"


def _noun_phrase(x: str) -> list[str]:
    """The words of a value's noun phrase, before its modifiers."""
    return _MODIFIER.split(x, maxsplit=1)[0].split()


def _head_noun(x: str) -> str:
    """The common noun a value is a kind of ("a Yamaha upright piano" -> "piano", "a tattoo of a koi" -> "tattoo"),
    or "": "What kind of piano do I have?" is asked more often than "What do I have?"."""
    words = _noun_phrase(x)
    head = words[-1] if len(words) > 1 else ""
    if not re.fullmatch(r"[a-z]+", head) or head in _QUANTITY_NOUNS or head in _STOPWORDS or re.fullmatch(_NUM, head):
        return ""
    lemmas = getAllLemmas(head)
    return head if not lemmas or "NOUN" in lemmas else ""  # a word the dictionary lacks ("tattoo") counts


def _have(g: _Said) -> _Draft | None:
    # "I have two cats" (ask how many) vs "I've got a red bike" (ask what).
    x = _value(g["x"])
    if not x or _REFERENCE.match(x):
        return None
    verb = "own" if g.norm("v").lower() in ("own", "owns") else "have"
    verbs = "{own|owns}" if verb == "own" else "{have|has}"
    pets = ["What pets {do|does} {S} have?", "{Do|Does} {S} have any pets?"] if any(
        w.lower() in _PETS for w in x.split()) else []
    m = _COUNTED.fullmatch(_ABOUT.sub("", x, count=1) if _ABOUT.match(x) else x)  # "over 40 roses"
    noun = (_noun_phrase(m.group("rest")) or [""])[-1] if m else ""
    if m and m.group("n").lower() not in ("one", "1") and (noun.endswith("s") or noun.lower() in _IRREGULAR_PLURALS):
        qs = [f"How many {noun} {{do|does}} {{S}} {verb}?", f"Do you remember how many {noun} {{S}} {verbs}?",
              f"How many {noun} did I say {{S}} {verbs}?", *pets, f"What {{do|does}} {{S}} {verb}?"]
    else:
        kind = [f"What kind of {head} {{do|does}} {{S}} {verb}?"] if (head := _head_noun(x)) else []
        qs = [f"What {{do|does}} {{S}} {verb}?", *kind, *pets, f"Do you remember what {{S}} {verbs}?",
              f"What did I tell you {{S}} {verbs}?", "What {have|has} {S} got?"]
    return _Draft(g.answer(x), g.ask(*qs), _head_key(x))


_ACTIVITY_QUESTIONS = {
    "speak": ["What language {do|does} {S} speak?", "Which languages {do|does} {S} know?",
              "Do you remember what languages {S} {speak|speaks}?", "What did I say {S} {speak|speaks}?"],
    "play": ["What {do|does} {S} play?", "Which sport or instrument {do|does} {S} play?",
             "Do you remember what {S} {play|plays}?", "What did I say {S} {play|plays}?"],
    "drive": ["What car {do|does} {S} drive?", "What {do|does} {S} drive?", "Do you remember what {S} {drive|drives}?",
              "What kind of car {do|does} {S} have?"],
    "study": ["What {do|does} {S} study?", "What is {P} field of study?", "Do you remember what {S} {study|studies}?",
              "What subject {do|does} {S} study?"],
    "studied": ["What did {S} study?", "What was {P} field of study?", "Do you remember what {S} studied?",
                "What subject did {S} study?"],
    "studying": ["What {am|are|is} {S} studying?", "What {do|does} {S} study?", "What is {P} field of study?",
                 "Do you remember what {I'm|we're|{S} is} studying?"],
    "learning": ["What {am|are|is} {S} learning?", "What {am|are|is} {S} trying to learn?",
                 "Do you remember what {I'm|we're|{S} is} learning?", "What did I say {I'm|we're|{S} is} learning?"],
}
_ACTIVITY_THIRD = {"speaks": "speak", "plays": "play", "drives": "drive", "studies": "study"}


def _activity(g: _Said) -> list[_Draft] | None:
    # "I speak Portuguese and English", "I play the piano", "I drive a Tesla", "I'm studying medicine";
    # "I drive a truck for Halvorsen Freight" also says who the user drives for.
    x = _value(g["x"])
    if not x:
        return None
    v = g.norm("v").lower()
    v = _ACTIVITY_THIRD.get(v, v)
    qs = list(_ACTIVITY_QUESTIONS[v])
    if v == "speak" and re.search(r",|\band\b", x):
        qs[0] = "What languages {do|does} {S} speak?"
    drafts = [_Draft(g.answer(x), g.ask(*qs), _head_key(x))]
    employer = re.search(r"\s+for\s+(?P<e>(?:the )?(?-i:[A-Z]).*)$", x)
    if employer and v == "play":  # "plays rugby for Clifton RFC": a team
        drafts.append(_Draft(g.answer(x), g.ask("Which team {do|does} {S} play for?", "Who {do|does} {S} play for?",
                                                "Which club {do|does} {S} play for?"), _place_key(employer.group("e"))))
    elif employer:
        drafts.append(_Draft(g.answer(x), g.ask(f"Who {{do|does}} {{S}} {v} for?", "Who {do|does} {S} work for?",
                                                "Which company {do|does} {S} work for?", "Who is {P} employer?"),
                             _place_key(employer.group("e"))))
    return drafts


_BIRTHDAY = frozenset(("birthday", "bday", "b-day", "birthdate"))


def _my_np_is(g: _Said) -> _Draft | None:
    # "My birthday is on May 3rd", "My blood type is O negative", "our solicitor is Alwen Pryce",
    # "the kids' dentist is Dr Okafor" (after "remember ..."), "my gamertag: NightOtter99".
    x, v = _value(g["x"]), (g.norm("v") or "is").lower().replace("'s", "is")
    np = _without_name(g["np"])  # "my late brother Clive was a vicar": asked about "my late brother"
    pos = _whose(g)
    if not x or re.search(r"\b(?:and|or|i|you|me)\b", np, re.I) or _REFERENCE.match(x) or re.match(r"\w+ing\b", x):
        return None  # "My wife and I are vegetarian" is about two people; "my mum's helping" is no value
    if _EPISODE_TIME.search(g.said) and not (_proper_run(x) or re.search(r"\d", x)):
        return None  # "My train was late again this morning": chit-chat
    if np.lower() in _BIRTHDAY or _CALENDAR_DATE.match(x):
        # "priya's bday is 19 october", "the vet appointment is the 3rd of every month": a when
        qs = [f"When {v} {pos} {np}?", f"What {v} {pos} {np}?", f"Do you remember {pos} {np}?",
              f"What date {v} {pos} {np}?"]
    elif _described(x) and not _WHERE.match(x):
        # "our dog is jealous", "my husband is very proud": how, not who they are or what they are called
        qs = [f"What {v} {pos} {np} like?", f"How {v} {pos} {np}?", f"Do you remember how {pos} {np} {v}?"]
        return _Draft(g.answer(x), qs, _key(x))
    else:
        qs = [f"What {v} {pos} {np}?", f"Do you remember {pos} {np}?", f"Can you tell me {pos} {np}?",
              f"What did I say {pos} {np} {v}?"]
        if v == "is":
            qs.append(f"What's {pos} {np}?")
        if _is_person(np):
            qs.insert(0, f"Who {v} {pos} {np}?")
    named = _called(x)
    if named:  # "my main in Blade Arena is a character called Vex"
        return _Draft(g.answer(x), qs, _name_key(named[1]))
    where = _WHERE.match(x)
    if where and np.lower() not in _BIRTHDAY and not _DATE.match(where.group("at")):
        # "the spare key is under the blue flowerpot"; a birthday "on St Piran's Day" is a when
        qs = [f"Where {v} {pos} {np}?", f"Do you remember where {pos} {np} {v}?", f"Where did I say {pos} {np} {v}?",
              f"Where {'do' if v == 'are' else 'does'} {pos} {np} go?"]
        return _Draft(g.answer(x), qs, _proper_run(where.group("at")) or _key(where.group("at")))
    key = _key(x)
    if (run := _name_run(x)) and not _CALENDAR_DATE.match(x):  # "March 5" is no name
        if _is_person(np):
            key = run  # "Dr Okafor on Mill Lane" -> "Okafor"
        if re.sub(r"^(?:the|a|an)\s+", "", x, flags=re.I) in (run, "Dr " + run, "Mrs " + run) \
                and not (CASELESS.get() and "ADJ" in getAllLemmas(run.lower())):  # "my dog is deaf", no capitals
            # "our solicitor is Alwen Pryce", "the nursery is Little Oaks": a name, so ask what it is called too
            qs = [*qs[:2], *_name_questions(np, v in ("are", "were"), pos)[:2], *qs[2:]]
    return _Draft(g.answer(x), qs, key)


_DEGREE = re.compile(r"(?:(?:very|so|really|quite|super|pretty|extremely|too|a bit|a little|kind of|kinda|totally|"
                     r"always|still|now|getting|becoming)\s+)*", re.I)


def _described(x: str) -> bool:
    """A value that says how someone or something is, a word the dictionary knows only as an adjective (or adverb):
    "jealous", "very proud, washing it every day"; not "a nurse", "Bodhi", "deaf" (also a noun), "retired" or
    "marked with a blue dot" (also verbs), "away on the rigs", "about green turtles"."""
    word = re.match(r"[\w'-]*", x[_DEGREE.match(x).end():]).group(0).lower()
    lemmas = getAllLemmas(word)
    return "ADJ" in lemmas and lemmas.keys() <= {"ADJ", "ADV"} and not _PARTICLE_ONLY.fullmatch(word)


_WHERE = re.compile(r"(?:under|underneath|behind|beside|next to|inside|in|on|on top of|at|above|below|near|by|"
                    r"in front of|at the back of)\s+(?P<at>\S.*)", re.I)


def _without_name(np: str) -> str:
    """ "late brother Clive" -> "late brother": a name said after the noun is not part of what is asked about."""
    words = np.split()
    while len(words) > 1 and words[-1][0].isupper() and not words[-1].isupper():
        words.pop()
    if len(words) < len(np.split()) and words[-1].lower() in ("in", "at", "of", "for", "on", "the", "a", "an", "to"):
        return " ".join(np.split())  # "main in Blade Arena": the name is part of the phrase
    return " ".join(words)


def _whose(g: _Said) -> str:
    """The possessive of a `_POS` match as asked: "my", "our", "the", or a name's ("Sora's")."""
    pos = g.norm("pos")
    return pos.lower() if pos.lower() in ("my", "our", "the") else pos


def _corrected(g: _Said) -> _Draft | None:
    # "I was wrong about my staff ID — it's HT-4401": the value of one of the user's things, restated.
    x, np, pos = _value(g["x"]), " ".join(g.norm("np").split()), g.norm("pos").lower()
    if not x:
        return None
    qs = [f"What is {pos} {np}?", f"What's {pos} {np}?", f"Do you remember {pos} {np}?", f"Can you tell me {pos} {np}?"]
    return _Draft(_sentence(to_second_person(f"{pos} {np} is {x}")), qs, _key(x))


def _event(g: _Said) -> list[_Draft] | None:
    # "Our wedding is on 9 August at Harewood Barn": when and where, each a fact of its own.
    x = _value(g["x"])
    np, pos, v = " ".join(g.norm("np").split()), _whose(g), g.norm("v").lower().replace("'s", "is")
    if not x or np.lower() == "birthday":
        return None
    drafts = []
    for part in re.split(r"\s+(?=(?:on|at|in|this|next)\s)", x, flags=re.I):
        prep, _, rest = part.partition(" ")
        if not rest:
            continue
        if _DATE.match(rest) or prep.lower() in ("this", "next"):
            qs = [f"When {v} {pos} {np}?", f"What's the date of {pos} {np}?", f"Do you remember when {pos} {np} {v}?"]
            if np.lower() in ("wedding", "party", "birthday party", "graduation"):
                qs.append("When are we getting married?" if np.lower() == "wedding" and pos == "our" else
                          f"When is {pos} {np} happening?")
            drafts.append(_Draft(g.answer(part if prep.lower() in ("this", "next") else part), qs,
                                 _key(part if prep.lower() in ("this", "next") else rest)))
        elif _CAPITALISED_RUN.search(_truecase(rest)):
            qs = [f"Where {v} {pos} {np}?", f"Do you remember where {pos} {np} {v}?",
                  f"Where did I say {pos} {np} {v}?"]
            if np.lower() == "wedding":
                qs += [f"What's {pos} wedding venue?"]
            drafts.append(_Draft(g.answer(part), qs, _place_key(rest)))
    return drafts or None


def _diet(g: _Said) -> _Draft | None:
    # "I'm vegetarian", "we're vegan, both of us", "my son is coeliac".
    x = g["x"]
    return _Draft(g.answer(x), g.ask("What diet {do|does} {S} follow?", "What {do|does} {S} eat?",
                                     "Is there anything {S} {don't|doesn't} eat?", "Do you remember {P} diet?",
                                     "What are {P} dietary requirements?"), x)


_SCHOOL = re.compile(r"\b(?:school|primary|academy|college|university|uni|nursery|kindergarten|grammar|high)\b", re.I)


def _goes_to(g: _Said) -> _Draft | None:
    # "Our kids go to St Brendan's primary", "I go to Redpoint climbing gym".
    x = _value(g["x"])
    if not x:
        return None
    if _SCHOOL.search(x):
        qs = ["Which school {do|does} {S} go to?", "Where {do|does} {S} go to school?",
              "What school {do|does} {S} attend?", "Do you remember which school {S} {go|goes} to?"]
    else:
        qs = ["Where {do|does} {S} go?", "Do you remember where {S} {go|goes}?", "Where did I say {S} {go|goes}?"]
    return _Draft(g.answer(x), g.ask(*qs), _proper_run(x) or _key(x))


def _wedding(g: _Said) -> _Draft | None:
    # "We got married in Sintra in 2019", "My partner Lou and I got engaged in Lisbon last year".
    x, ev = _value(g["x"]), g.norm("ev").lower()
    if not x:
        return None
    get = "get married" if ev == "married" else "get engaged"
    if _DATE.match(x):
        qs = [f"When did {{S}} {get}?", f"What date did {{S}} {get}?", f"Do you remember when {{S}} got {ev}?"]
        return _Draft(g.answer(x), g.ask(*qs), _key(x))
    qs = [f"Where did {{S}} {get}?", f"Do you remember where {{S}} got {ev}?", f"Where did I say {{S}} got {ev}?"]
    if ev == "married":
        qs.append("Where was {P} wedding?")
    return _Draft(g.answer(x), g.ask(*qs), _proper_run(x) or _key(x))


# --- what someone does: "I volunteer at ...", "my stepdad breeds kelpies near Wagga", "we raised ... from ..." ----

_IRREGULAR = {  # base: (past, past participle)
    "teach": ("taught", "taught"), "sell": ("sold", "sold"), "buy": ("bought", "bought"), "grow": ("grew", "grown"),
    "keep": ("kept", "kept"), "run": ("ran", "run"), "swim": ("swam", "swum"), "write": ("wrote", "written"),
    "read": ("read", "read"), "ride": ("rode", "ridden"), "sing": ("sang", "sung"), "fly": ("flew", "flown"),
    "build": ("built", "built"), "make": ("made", "made"), "lead": ("led", "led"), "meet": ("met", "met"),
    "spend": ("spent", "spent"), "win": ("won", "won"), "breed": ("bred", "bred"), "sow": ("sowed", "sown"),
    "take": ("took", "taken"), "bring": ("brought", "brought"), "hold": ("held", "held"), "give": ("gave", "given"),
    "send": ("sent", "sent"), "choose": ("chose", "chosen"), "draw": ("drew", "drawn"), "sew": ("sewed", "sewn"),
    "lend": ("lent", "lent"), "wear": ("wore", "worn"), "begin": ("began", "begun"), "speak": ("spoke", "spoken"),
    "come": ("came", "come"), "leave": ("left", "left"),
}
# Verbs whose object or place is worth a question; a closed list, so that "I mixed that up" or "I had a long day"
# never become facts.
_VERBS = """
    volunteer coach teach boulder climb swim cycle ride row sail surf ski hike run train sing dance paint draw write
    read knit sew bake brew cook breed keep grow sell buy bank shop collect fix repair restore build design manage
    lead organise organize host attend visit support follow join found start open launch adopt rescue sow plant raise
    stay spend share rent commute fly travel return book switch pass celebrate practise practice dedicate meet fish
    walk foster mentor tutor renew insure deliver serve perform compete race captain represent graduate finish
    complete win publish produce direct edit record pick promote choose select enter register send lend sign
    install maintain treat wear begin speak come arrive leave expire end close
""".split()
# Verbs that make sense without their object in "Where do I teach?"; "Where did we buy?" does not.
_INTRANSITIVE = frozenset("""
    volunteer coach teach boulder climb swim cycle ride row sail surf ski hike run train sing dance paint draw write
    read knit sew bake brew cook study work shop bank stay commute fly travel perform compete race walk fish tutor
    mentor serve speak come arrive leave graduate
""".split())
_DOUBLED = frozenset("shop jog chat plan drop skip ship travel".split())


def _forms(base: str) -> list[tuple[str, str]]:
    """Every form of a verb with its kind (base, third, past, pp: past participle, ing); "stayed" is past and pp."""
    if base not in _VERBS and (tags := getAllInflections(base, upos="VERB")):
        return _dictionary_forms(base, tags)
    if re.search(r"(?:s|sh|ch|x|z|o)$", base):
        third = base + "es"
    elif re.search(r"[^aeiou]y$", base):
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    stem = base + base[-1] if base in _DOUBLED else base
    if base in _IRREGULAR:
        past, pp = _IRREGULAR[base]
    elif base.endswith("e"):
        past = pp = base + "d"
    elif re.search(r"[^aeiou]y$", base):
        past = pp = base[:-1] + "ied"
    else:
        past = pp = stem + "ed"
    if base.endswith("ie"):
        ing = base[:-2] + "ying"
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        ing = base[:-1] + "ing"
    else:
        ing = stem + "ing"
    forms = [(base, "base"), (third, "third"), (past, "past"), (pp, "pp"), (ing, "ing")]
    if base == "travel":
        forms += [("traveled", "past"), ("traveled", "pp"), ("traveling", "ing")]
    return forms


_TAGS = {"VB": "base", "VBZ": "third", "VBD": "past", "VBN": "pp", "VBG": "ing"}


def _dictionary_forms(base: str, tags: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """A verb outside the closed list, inflected by lemminflect's dictionary (its regular past stands for the past
    participle it does not list: "inherited")."""
    tags = {**tags, "VB": (base,)}
    tags.setdefault("VBN", tags.get("VBD", ()))
    return [(forms[0], kind) for tag, kind in _TAGS.items() if (forms := tags.get(tag))]


# Verbs that say nothing to remember on their own ("I think ...", "I said ...", "I tried ...", "I woke up ...") or
# whose statements other rules read ("have", "like"): the open rule (`_did_any`) leaves them alone.
_NOT_DONE = frozenset("""
    be have do get go say tell ask think know guess mean feel hope want need wish wonder suppose believe reckon
    remember forget see hear try bet doubt agree promise love like hate prefer enjoy adore dislike can will shall
    may must let seem look sound appear happen wait realise realize notice find thank apologise apologize
    mind care bother matter laugh cry sleep wake plan intend expect decide
""".split())


def _verb_kinds(word: str) -> dict[str, str]:
    """{kind: base} of a verb form: the closed list's forms, else any English verb in lemminflect's dictionary."""
    if word in _VERB_FORMS:
        return {k: b for b, k in _VERB_FORMS[word]}
    lemmas = getAllLemmas(word, upos="VERB").get("VERB")
    if not lemmas:
        return {}
    return {k: lemmas[0] for f, k in _forms(lemmas[0]) if f == word}


_VERB_FORMS: dict[str, list[tuple[str, str]]] = {}
for _base in _VERBS:
    for _form, _kind in _forms(_base):
        _VERB_FORMS.setdefault(_form, []).append((_base, _kind))
_kinds = {kind: sorted({f for f, ks in _VERB_FORMS.items() if any(k == kind for _, k in ks)}, key=len, reverse=True)
          for kind in ("base", "third", "past", "pp", "ing")}
_SIMPLE = "|".join(sorted({*_kinds["base"], *_kinds["third"], *_kinds["past"]}, key=len, reverse=True))
_PP = "|".join(_kinds["pp"])
_ING = "|".join(_kinds["ing"])

_PREP = re.compile(
    r"^(?P<obj>.*?)\s*\b(?P<prep>(?:in|back|over|out|up|down) (?:from|to)|at|in|for|with|on|from|near|to|outside|"
    r"around|above|into|under|by|since)\s+(?P<x>\S.*)$", re.I)
_TEAM_VERBS = frozenset("support follow".split())
_FOR_WHOM = frozenset("cook build design deliver serve sell write edit manage fly race ride compete captain represent "
                      "perform produce direct publish record".split())  # "for <a name>" is who they do it for
_FROM_WHOM = frozenset("raise buy rent order".split())  # "raised our seed round from Larchfield": who from
# "we take the caravan to New Quay": where to; "we switched our broadband to Fibrenett" stays a what
_TRAVEL_VERBS = frozenset("take go travel fly drive move head walk ride sail cycle emigrate relocate commute return "
                          "bring come send ship post".split())
_INFINITIVE = re.compile(r"(?:be|become|get|go|see|make|do|help|learn|try|start|keep|have|take|find|buy|visit|meet|"
                         r"work|study|play|pay|save|celebrate|look|watch|give|win|finish)\b", re.I)
_POINTING = re.compile(r"(?:it|them|him|her|this|that|these|those|one)\b", re.I)  # "I've read it": said before
_PARTICLE_ONLY = re.compile(r"(?:off|out|up|away|back|down|over|around|about|home)\b", re.I)
_PARTICLE = re.compile(r"(up|out|off|back|down|over|away)\s+(?=(?:for|to|with|at|in|on|from)\b)", re.I)


_PLACE_PREPS = frozenset("at in on near by outside around above into under".split())
_NEXT_PREP = re.compile(r"\s+(?=(?:from|to|in|at|for|with|on|since|near|after|during)\s)", re.I)
_DURATION = re.compile(rf"(?:(?:over|almost|nearly|about|around) )?(?:{_NUM}|a few|a couple of|several|many|\d+)"
                       r"[\s-]+(?:\w+[\s-]+)?(?:years?|months?|weeks?|days?|decades?)\b", re.I)


def _phrases(prep: str, x: str) -> list[tuple[str, str]]:
    """The prepositional phrases of what follows a verb's object, one per thing to ask: "to Edinburgh", "from
    Tampere", "in 2019" (a place phrase with the places after it: "at a girls' school in Harrogate" is one place).
    Nothing when there is no phrase."""
    if not x:
        return []
    phrases: list[tuple[str, str]] = []
    for part in _NEXT_PREP.split(f"{prep} {x}"):
        p, _, rest = part.partition(" ")
        p = p.lower()
        if phrases and p in _PLACE_PREPS and phrases[-1][0] in _PLACE_PREPS and not _DATE.match(rest) \
                and not _DATE.match(phrases[-1][1]):
            phrases[-1] = (phrases[-1][0], f"{phrases[-1][1]} {part}")
        elif p in ("after", "during") and not _DATE.match(rest):
            break  # "after thirty-eight years on the line": how it came about; what follows belongs to it
        elif rest and not _PRONOUN_VALUE.match(rest) and not (p == "to" and _INFINITIVE.match(rest)):
            phrases.append((p, rest))
    return phrases


_ENDED = frozenset("leave quit".split())  # "I left Infosys": only when it ended is a fact
# "she switched to the cello": asked what someone changed to, not where
_CHANGE_VERBS = frozenset("switch change convert upgrade downgrade".split())
_COUNTED_OBJECT = re.compile(rf"(?P<n>\d{{1,3}}(?:,\d{{3}})+|{_NUM})\s+(?P<rest>[a-z][\w'-]*(?:\s+.*)?)", re.I)


# "I work weekends at ...", "we cycle everywhere in town": how, when or where, not what
_HOW_OFTEN = re.compile(r"(?:everywhere|anywhere|there|here|abroad|home|overseas|locally|remotely|together|alone|"
                        r"part[- ]time|full[- ]time|(?:at )?(?:nights|weekends|days|mornings|evenings)|late|early|hard|"
                        r"a lot|(?:every|each|most|some|on) \w+|a bit|sometimes|often|daily|weekly)\b", re.I)


_DAY_NAME = r"(?:mon|tues?|wed(?:nes)?|weds|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?s?"
# A habit's "every Wednesday", "each Friday morning", "every tues n thurs", "every other week": when it recurs
_EVERY = re.compile(rf"\s*,?\s*\b(?:every|each)\s+(?:other\s+|single\s+)?(?P<when>(?P<day>{_DAY_NAME})\b"
                    rf"(?:\s+(?:and|n|&)\s+{_DAY_NAME}\b)?(?:\s+(?:morning|afternoon|evening|night)s?\b)?|"
                    r"(?:morning|afternoon|evening|night|day|weekend|week|month|year|summer|winter|fortnight)\b)", re.I)


def _every(rest: str) -> tuple[str, str, bool]:
    """(what is left of `rest` without its "every <day>", the key of when, whether it names a day of the week);
    (rest, "", False) when nothing recurs."""
    m = _EVERY.search(rest)
    # not the next clause's ("lives in Valdivia and phones me every Sunday"), nor "the first Monday of every month"
    if not m or re.search(r"\band\b", rest[:m.start()], re.I) or re.search(r"\bof$", rest[:m.start()], re.I):
        return rest, "", False
    tail = rest[m.end():]
    left = (rest[:m.start()] + (" " if tail[:1].isalnum() else "") + tail).strip(" ,")
    return left, m.group("when") if m.group("day") else m.group(0).strip(" ,"), bool(m.group("day"))


def _when_asked(answer: str, g: _Said, do: str, doing: str, finite: str, when: str, day: bool) -> _Draft:
    """The fact of when a habit recurs: "I go bouldering every Wednesday" asked "What day do I go bouldering?"."""
    qs = [f"When {do} {{S}} {doing}?", f"How often {do} {{S}} {doing}?", f"Do you remember when {{S}} {finite}?"]
    if day:
        qs[1:1] = [f"What day {do} {{S}} {doing}?", f"Which day of the week {do} {{S}} {doing}?"]
    return _Draft(answer, g.ask(*qs), when)


def _did(g: _Said) -> list[_Draft] | None:
    """A statement of what someone does, did or has done, with its object and where, when, for or with whom."""
    said_rest = _value(g["rest"])
    rest, when, day = _every(said_rest)
    if not rest:
        return None
    v, aux = g.norm("v").lower(), g.norm("aux").lower().lstrip("'").strip()
    kinds = _verb_kinds(v)
    base = next(iter(kinds.values()))
    forms = {k: f for f, k in _forms(base)}
    be = aux in ("m", "am", "re", "are", "s", "is", "was", "were")
    if aux.endswith(" been") and "ing" in kinds:  # "we've been fostering kittens for ..."
        do, main, finite = ("had" if aux.startswith("had") else "{have|has}"), "been " + forms["ing"], None
    elif be and "ing" in kinds:  # "we're spending the summer at ..."
        was = aux in ("was", "were")
        do, main, finite = ("{was|were|was}" if was else "{am|are|is}"), forms["ing"], None
    elif be or aux in ("got", "get", "gets"):  # "my fiddle is insured with ...", "my project got picked for ..."
        if aux in ("got", "get", "gets"):
            do, main = ("did" if aux == "got" else "{do|does}"), "get " + forms["pp"]
            finite = f"got {forms['pp']}" if aux == "got" else f"{{get|gets}} {forms['pp']}"
        else:
            do, main = ("{was|were|was}" if aux in ("was", "were") else "{am|are|is}"), forms["pp"]
            finite = None
    elif aux in ("ended up", "wound up"):  # "we ended up buying in Riverdale"
        do, main, finite = "did", base, forms["past"]
    elif aux in ("ve", "have", "has", "had"):  # "I've joined", "my son has joined"
        do, main, finite = ("had" if aux == "had" else "{have|has}"), forms["pp"], None
    elif "past" in kinds and not ({"base", "third"} & kinds.keys()):
        do, main, finite = "did", base, forms["past"]
    else:
        do, main, finite = "{do|does}", base, f"{{{base}|{forms['third']}}}"
    finite = finite or f"{do} {main}"
    answer = _sentence(to_second_person(g.said[:g.m.start("rest")] + " " + said_rest))
    if particle := _PARTICLE.match(rest):  # "I've signed up for ...": the particle belongs to the verb
        main, finite, rest = f"{main} {particle.group(1)}", f"{finite} {particle.group(1)}", rest[particle.end():]
    if (about := _ABOUT.match(rest)) and _COUNTED_OBJECT.match(rest, about.end()):
        rest = rest[about.end():]  # "we sell around 400 baguettes each day": a count, not where ("around ...")
    m = _PREP.match(rest)
    obj, prep, x = (m.group("obj").strip(" ,"), m.group("prep").lower().split()[-1], m.group("x")) if m \
        else (rest, "", "")
    if x and (_PRONOUN_VALUE.match(x) or (prep == "to" and _INFINITIVE.match(x))):
        x = ""  # "we pay too much for it", "passed her exams to become a vet": nothing to ask about
    if _PARTICLE_ONLY.match(obj):
        obj = ""  # "my dog ran off after a hare": "off" is no object
    drafts: list[_Draft] = []
    o = f" {obj}" if obj else ""
    bare = not obj or base in _INTRANSITIVE
    if when and do == "{do|does}" and "," not in obj:  # "I swim at Warrender Baths every Friday": when and where
        drafts.append(_when_asked(answer, g, do, f"{main}{o}", f"{finite}{o}", when, day))
    said_x, said_prep = x, prep
    for prep, x in _phrases(said_prep, said_x):
        dated = bool(_DATE.match(x))
        if base in _ENDED and not dated:
            continue  # "I quit the pub in Rathmines": what no longer holds is no fact; when it ended is
        proper = _proper_run(x)
        person = _whom(x, base)
        if prep == "since" or (prep == "for" and _DURATION.match(x)):  # "since 1996", "for thirty-two years"
            qs = [f"How long {do} {{S}} {main}{o}?", f"For how long {do} {{S}} {main}{o}?",
                  f"Do you remember how long {{S}} {finite}{o}?"]
            if prep == "since":
                qs.insert(1, f"Since when {do} {{S}} {main}{o}?")
        elif dated:
            qs = [f"When {do} {{S}} {main}{o}?", f"Do you remember when {{S}} {finite}{o}?",
                  f"When did I say {{S}} {finite}{o}?"]
            if prep in ("for", "until"):
                qs.insert(1, f"When {do} {{S}} {main}{o} {prep}?")
            if obj:
                qs.append(f"What date {do} {{S}} {main}{o}?")
        elif prep in ("for", "with", "to") and (person or (prep == "for" and proper and base in _FOR_WHOM)):
            qs = [f"Who {do} {{S}} {main}{o} {prep}?", f"Do you remember who {{S}} {finite}{o} {prep}?",
                  f"Who did I say {{S}} {finite}{o} {prep}?"]
            if prep == "for" and base in _FOR_WHOM:
                qs.insert(1, f"Which company {do} {{S}} {main}{o} for?")
            if obj and bare:
                qs.insert(1, f"Who {do} {{S}} {main} {prep}?")
        elif prep in ("for", "with") or (prep == "to" and obj and not (proper and base in _TRAVEL_VERBS)):
            qs = [f"What {do} {{S}} {main}{o} {prep}?", f"Do you remember what {{S}} {finite}{o} {prep}?",
                  f"What did I say {{S}} {finite}{o} {prep}?"]
            if obj and bare:
                qs.insert(1, f"What {do} {{S}} {main} {prep}?")
        elif prep == "to" and base in _CHANGE_VERBS and not obj:  # "she switched to the cello": what to
            qs = [f"What {do} {{S}} {main} to?", f"Do you remember what {{S}} {finite} to?",
                  f"What did I say {{S}} {finite} to?"]
        elif prep in ("from", "to"):  # "we take the caravan to New Quay": where to
            qs = [f"Where {do} {{S}} {main}{o} {prep}?", f"Do you remember where {{S}} {finite}{o} {prep}?",
                  f"Where did I say {{S}} {finite}{o} {prep}?"]
            if prep == "to" and obj:
                qs.insert(1, f"Where {do} {{S}} {main}{o}?")
            if obj and base in _FROM_WHOM:
                qs.insert(0, f"Who {do} {{S}} {main}{o} {prep}?")
        else:
            qs = [f"Where {do} {{S}} {main}{o}?", f"Do you remember where {{S}} {finite}{o}?",
                  f"Where did I say {{S}} {finite}{o}?"]
            if proper and _in_a_place(prep, x) and do == "{do|does}":
                # "I teach chemistry at a gymnasium in Varaždin" is asked "Which city ..." too
                qs[1:1] = _placed(f"{do} {{S}} {main}{o}", False, base in _TRADES)
            if obj and bare:
                qs.insert(1, f"Where {do} {{S}} {main}?")
        drafts.append(_Draft(answer, g.ask(*qs), _key(x) if dated or prep == "since" else proper or _key(x)))
    x = said_x
    # "we milk 118 cows", "my dad keeps 40 hives": a count that stands; "I ate two pizzas" is an episode
    counted = _COUNTED_OBJECT.fullmatch(obj) if obj and do != "did" else None
    named = _proper_run(obj) or (x and _DATE.match(x)) or counted
    if do == "did" and not x and not named:
        return drafts or None  # "I just finished a really long run": an episode, not something to remember
    # "I teach chemistry at a gymnasium in Varaždin": what someone does habitually is asked about beside where
    habitual = do == "{do|does}" and obj and len(obj.split()) <= 3 and not _HOW_OFTEN.match(obj)
    if obj and (not x or _DATE.match(x) or _proper_run(obj) or counted or habitual) and not _POINTING.match(obj) \
            and not _HOW_OFTEN.fullmatch(obj) \
            and base not in _ENDED:
        qs = [f"What {do} {{S}} {main}?", f"Do you remember what {{S}} {finite}?", f"What did I say {{S}} {finite}?"]
        proper = _proper_run(obj)
        if proper and base in _TEAM_VERBS:
            qs = [f"Which team {do} {{S}} {main}?", f"Who {do} {{S}} {main}?", *qs]
        if counted:  # "we bottled 14,000 bottles of ...": how many; and what, where a name says it (below)
            what = " ".join(_noun_phrase(counted.group("rest"))[:3])
            counts = [f"How many {what} {do} {{S}} {main}?", f"Do you remember how many {what} {{S}} {finite}?"]
            drafts.append(_Draft(answer, g.ask(*counts, *([] if proper else qs)), counted.group("n")))
        if proper or not counted:
            if head := _head_noun(obj):  # "I inherited a Bösendorfer grand piano": what kind of piano
                qs.insert(1, f"What kind of {head} {do} {{S}} {main}?")
            drafts.append(_Draft(answer, g.ask(*qs), proper or _head_key(obj)))
    return drafts or None


def _go_doing(g: _Said) -> list[_Draft] | None:
    """"I go bouldering every Wednesday at a gym in Namba": what the user goes and does, beside when and where."""
    doing = g.norm("x").lower()
    if "ing" not in _verb_kinds(doing) and "VERB" not in getAllLemmas(doing):
        return None  # "we go camping", not "I go ceiling-high"
    _, when, day = _every(_value(g["rest"]))
    qs = ["What activity {do|does} {S} do?", "What {do|does} {S} do for fun?", "What {do|does} {S} go and do?"]
    if when:
        qs[:0] = [f"What {{do|does}} {{S}} do {f'every {when}' if day else when}?"]
    found = [d for d in _did(g) or [] if d.key.lower() != doing]
    return [_Draft(_sentence(to_second_person(g.said)), g.ask(*qs), g["x"]), *found]


def _did_any(g: _Said) -> list[_Draft] | None:
    """`_did` for a verb outside its closed list ("I inherited my grandfather's piano", "we've been fostering
    kittens for the shelter"): any verb form lemminflect knows, in the form the auxiliary before it asks for, but
    not the verbs of `_NOT_DONE`. The questions come from the statement's own verb, object and prepositional
    phrase, so they do not depend on the phrasing being one the rules were written for."""
    v, aux = g.norm("v").lower(), g.norm("aux").lower().lstrip("'").strip()
    kinds = _verb_kinds(v)
    if not kinds or next(iter(kinds.values())) in _NOT_DONE:
        return None
    if not any(_content_word(w) for w in re.findall(r"[\w'-]+", g.norm("rest").lower())):
        return None  # "I just bike everywhere", "we moved away": how, not what or where
    if re.match(r"\s*(?:me|you|us|myself|ourselves)\b", g.norm("rest"), re.I) and not _every(g.norm("rest"))[1]:
        return None  # "my kids are driving me mad": the speaker's mood; "my son phones me every Friday" is a habit
    if (inf := re.match(r"\s*to (\w+)", g.norm("rest"), re.I)) and "base" in _verb_kinds(inf.group(1).lower()):
        return None  # "I used to live in London", "we started to ...": the verb that matters comes after "to"
    if aux in ("ve", "s", "have", "has", "had"):
        fits = "pp" in kinds
    elif aux:  # "I'm", "we were", "I've been": only the progressive ("we're fostering"), not "I'm tired"
        fits = "ing" in kinds
    elif g.subject.person == "third" and not g.subject.plural:
        fits = bool({"third", "past"} & kinds.keys())
    else:
        fits = bool({"base", "past"} & kinds.keys())
    return _did(g) if fits else None


def _be_where(g: _Said) -> list[_Draft] | None:
    """Where, when or for whom someone is what they are: "I'm an architect at a small firm in Gastown", "I'm the
    headmaster of a secondary school in Kumasi", "I'm in my last year at Malmö Borgarskola"."""
    rest = _value(g["rest"])
    m = _PREP.match(rest) if rest else None
    if not m or _POINTING.match(rest):
        return None
    role, first = m.group("obj").strip(), m.group("prep").lower().split()[-1]
    if "," in role:  # "I'm Camila, an astronomer from ...", "im jiho, 17, playin tank for ...": the list's last item
        parts = [p.strip() for p in role.split(",") if p.strip()] or [""]
        last = parts[-1]
        named = " " not in last and (_is_name(last) or _unknown(last.lower()))  # "bia, from curitiba"
        role = "" if re.search(r"\d", last) or named else last
    role = re.sub(r"\s*\b(?:here|there|now)$", "", role, flags=re.I)  # "a caregiver here in Mississauga"
    be = "{was|were|was}" if g.norm("be").lower() in ("was", "were") else "{am|are|is}"
    r = f" {role}" if role else ""
    answer = _sentence(to_second_person(g.said[:g.m.start("rest")].rstrip() + " " + rest))
    drafts = []
    for prep, x in _phrases(first, m.group("x")):
        proper = _proper_run(x)
        if _DATE.match(x) or prep == "since" or (not role and not proper):
            continue  # "I'm in Lisbon until March", "we're at the beach": a stay, not where someone is
        if prep in ("for", "with") and proper:
            qs = [f"Who {be} {{S}}{r} {prep}?", f"Which company {be} {{S}}{r} {prep}?",
                  f"Do you remember who {{S}} {be}{r} {prep}?"]
        elif prep in _PLACE_PREPS or prep == "from":
            frm = " from" if prep == "from" else ""
            qs = [f"Where {be} {{S}}{r}{frm}?", f"Do you remember where {{S}} {be}{r}{frm}?",
                  f"Where did I say {{S}} {be}{r}{frm}?"]
            if proper and role and _in_a_place(prep, x):
                # "a paediatrician in Kumasi": which city, and where they are based, too
                qs[1:1] = _placed(f"{be} {{S}}{r}", be.startswith("{was"), _is_occupation(role.split()[-1].lower()))
        else:
            continue
        drafts.append(_Draft(answer, g.ask(*qs), proper or _place_key(x)))
    return drafts or None


_IN_A_PLACE = frozenset("in near outside around".split())
_TRADES = frozenset("teach practise practice farm lecture nurse tutor coach manage".split())  # verbs of a living


def _in_a_place(prep: str, x: str) -> bool:
    """The phrase says in which place: "in Kumasi", "near Tarras", "at a gymnasium in Varaždin"."""
    return prep in _IN_A_PLACE or bool(re.search(r"\bin\s", x))


def _placed(asked: str, past: bool, works: bool) -> list[str]:
    """More ways to ask where someone does what they do somewhere ("<do> {S} <verb> <object>"): people ask which
    city, and where someone is based or works, more often than in the words of the statement ("Where am I a
    paediatrician?"). Measured by scripts/bench_questions.py."""
    qs = [f"In which city {asked}?", f"Where {'{was|were|was}' if past else '{am|are|is}'} {{S}} based?"]
    if works:
        qs.insert(1, "Where did {S} work?" if past else "Where {do|does} {S} work?")
    return qs


def _content_word(word: str) -> bool:
    """Not a stopword, and not a word the dictionary knows only as an adverb ("everywhere", "abroad"); a name it
    does not know ("Kumasi") counts."""
    if word in _STOPWORDS:
        return False
    lemmas = getAllLemmas(word)
    return not lemmas or not lemmas.keys() <= {"ADV"}


def _whom(x: str, base: str) -> bool:
    """A person: "my grandmother Ilse", or a name after a verb done to people ("dedicated it to Sam"); not
    "Fibrenett" in "switched our broadband to Fibrenett"."""
    m = re.match(rf"(?:my|our) (?P<np>{_SNP})", x, re.I)
    if m and _is_person(m.group("np")):
        return True
    return base in _TO_PEOPLE and bool(re.match(_NAME, x)) and _is_name(x.split(",")[0]) and not _DATE.match(x)


_TO_PEOPLE = frozenset("dedicate send lend write speak sell mentor tutor coach visit meet marry".split())


def _proper_run(text: str) -> str:
    """The first capitalised run that is not a weekday or a month: "the Hollins Park track on Sundays"."""
    for m in _CAPITALISED_RUN.finditer(_truecase(text)):  # a name typed in lowercase is kept as typed
        run = text[m.start():m.end()].rstrip(".")
        if run.lower() not in _NOT_NAME_WORDS | _MONTHS and not (run.isupper() and " " not in run and len(run) > 4):
            return _name_key(run)  # not "AGAIN" shouted; "ICU", "KV 48 211" and "UKA" are kept
    return ""


# Priority order: the first rule whose pattern matches the whole clause (and whose builder accepts it) wins,
# so the specific forms ("my dog's name is") come before the general ones ("my <np> is").
# "Sora's exam is on February 24" (after "remember"), "bia's birthday is ..." typed in lowercase
_POS = (r"(?P<pos>my|our|the|(?-i:[A-Z][\w-]+)'s|(?!(?:it|that|what|there|here|he|she|who|let|where|how|this|one|"
        r"today|tomorrow|yesterday|everyone|everybody|nobody|somebody|someone|life|mine)'s)(?-i:[a-zà-ÿ][\w-]+)'s)")
_NAMING = r"(?P<nv>called|named|call|name|christened|dubbed|nicknamed)"
_RULES: list[tuple[re.Pattern, Callable[[_Said], _Draft | list[_Draft] | None]]] = [
    (_rx(r"(?P<pos>my|our) (?P<kind>(?:full |first |last |middle |real |given |family |sur|nick)?name) "
         r"(?:(?:is|'s) |(?=(?-i:[A-Z])))(?P<x>.+)"), _self_name),  # "My name Piotr, I am from Poland"
    (_rx(r"(?P<subj>i|we)(?:'m| am|'re| are) (?:called|named) (?P<x>.+)"), _self_name),
    (_rx(r"(?:people|everyone|everybody|my friends) calls? (?P<subj>me|us) (?P<x>.+)"), _self_name),
    (_rx(rf"i (?:was wrong|got it wrong|gave you the wrong \w+|made a mistake) (?:about|with|for) (?P<pos>my|our) "
         rf"(?P<np>{_NP})\s*(?:[—–:,-]+\s*)?(?:it's|it is|it was|that's) (?P<x>.+)"), _corrected),
    (_rx(rf"{_POS} (?P<np>{_NP})(?:(?P<poss>'s|s') (?P<nm>names?) (?P<v>is|are|was|were)|(?: (?P<v2>is|are|was|were)|"
         rf"'s) {_ADV}(?:called|named)) (?P<x>.+)"), _my_np_named),
    (_rx(rf"{_SUBJ} {_ADV}{_NAMING} (?P<opos>my|our|the) (?P<np>{_NP}) (?P<x>(?:the )?(?-i:[A-Z]).*)"), _call_my),
    (_rx(rf"(?P<pos>my|our) (?P<np>{_NP})(?:'s| is| was) (?:a|an|the) .+? (?:that |which )?(?:i|we) "
         rf"(?:call|called|named|nicknamed) (?:it |her |him )?(?P<x>.+)"), _np_i_call),
    (_rx(rf"{_SUBJ}(?:'ve| have| has)? {_ADV}(?:changed|renamed) (?P<opos>my|our|the) (?P<np>{_NP})(?: (?:to|as)|"
         r"\s*[—–:,-]+\s*(?:it's|she's|he's|it is|she is|he is|they're)(?: now| called)?) (?P<x>.+)"), _renamed),
    (_rx(rf"{_SUBJ}(?:'ve got|'ve| {_ADV}(?:have got|have|has|own|owns)) (?P<det>a|an|{_NUM}) (?P<np>{_NP}) "
         r"(?:called|named) (?P<x>.+)"), _have_named),
    (_rx(rf"{_SUBJ}(?:'ve got|'ve| {_ADV}(?:have got|have|has|own|owns)) (?P<det>a|an|{_NUM}) (?P<np>{_NP})"
         rf"(?: (?P<where_prep>in|at|near|from) (?P<where>[^,]+))?(?:,|:) (?P<x>{_NAMES})(?:,.*)?"), _have_np_name),
    (_rx(rf"{_SUBJ}(?:'ve| have| has)? {_ADV}(?:\w+ed|got|bought|built|found|made|began|run|runs|ran|have|has|had|"
         rf"own|owns|opened|started|set up) (?:a|an|the|one|two|three|\d+) (?:(?:new|little|small|old|big|tiny) )*"
         rf"(?P<np>{_SNP})(?:,[^,]*,| (?!and\b)[^,]*?)?,? (?:and )?"
         rf"(?:(?:we|i|it|she|he|they)(?:'s|'re| is| are| was| were)? )?"
         rf"{_NAMING}(?: (?:it|him|her|them))? (?P<x>.+)"), _named_it),
    (_rx(rf"{_SUBJ}(?:{_BE}(?: (?:actually|really|now|only|just))?|(?:'ve| has| have)? {_ADV}turned) "
         rf"(?P<x>\d{{1,3}}|{_NUM}(?:[- ]{_NUM})?)"
         r"(?: years? old| yrs? old| yo)?(?P<tail>(?:,| and| but) .*|(?: lol| haha| now| already| btw| tho| on| last| "
         r"this| in| yesterday| today| not)\b.*)?"), _age),  # "I turned 52 last month", "im 25 lol
    (_NAMED_AGE, _named_age),
    (_rx(rf"(?P<pos>my|our) (?P<fav>favou?rite|fave|fav|all-time favou?rite|go-to) (?P<np>{_NP}) "
         rf"(?P<v>is|are|was|were|{_IS_S}) (?P<x>.+)"), _favourite),
    (_rx(r"(?P<x>[^,]+?) (?P<v>is|are) (?P<pos>my|our) (?P<fav>favou?rite|fave)(?: (?P<np>.+))?"),
     _favourite_reversed),
    (_rx(r"(?P<pos>my|our) (?:current |day )?(?:job|profession|occupation|career) is (?P<x>.+)"), _job),
    (_rx(rf"{_SUBJ} {_ADV}(?:work|works|worked) as (?P<x>.+)"), _job),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}working as (?P<x>.+)"), _job),
    (_rx(rf"{_SUBJ}(?:'ve| have| has)? {_ADV}(?:got|found|landed|started|took|accepted) (?:a|an) (?:(?:new|part-time|"
         r"full-time|summer|weekend|temporary|permanent|first) )*job (?P<prep>at|with|in|for) (?P<x>.+)"), _work_place),
    (_rx(rf"{_SUBJ} {_ADV}(?:work|works)(?: (?:weekends|nights|evenings|mornings|days|shifts|part-time|full-time|"
         r"remotely|\w+days))? (?P<prep>at|for|in|on) (?P<x>.+)"), _work_place),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}working (?P<prep>at|for|in) (?P<x>.+)"), _work_place),
    (_rx(rf"{_SUBJ}(?:'ve been|'ve| have been| has been|{_BE}) {_ADV}(?:a )?(?:member|part) of (?P<x>.+)"), _member),
    (_rx(r".*\b(?:under|by|as|with) (?:the|my|a) (?P<kind>pen name|stage name|name|nickname|alias|username|handle|"
         r"pseudonym|screen name|gamertag) (?P<x>.+)"), _alias),
    (_rx(rf"{_SUBJ} {_ADV}(?:live|lives) (?:in|at|near|on|by|outside|close to|just outside) (?P<x>.+)"), _live),
    (_rx(rf"{_SUBJ}(?:'ve| have| has) {_ADV}lived (?:in|at|near|on|by|outside|close to) (?P<x>.+)"), _live),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?:living|based|settled) (?:in|at|near|on|outside) (?P<x>.+)"), _live),
    (_rx(rf"{_SUBJ}(?:'ve| have| has)? {_ADV}(?:moved|relocated) to (?P<x>.+)"), _moved),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?:moving|relocating) to (?P<x>.+)"), _moving),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?:going|heading|flying|travell?ing|off|driving|sailing) (?:back )?to "
         r"(?P<x>(?:the )?(?-i:[A-Z]).+)"), _trip),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}from (?P<x>.+)"), _from),
    (_rx(rf"{_SUBJ} {_ADV}(?:come|comes) from (?P<x>.+)"), _from),
    (_rx(rf"{_SUBJ} {_ADV}grew up (?:in|on|near|around|by|above|at|outside) (?P<x>.+)"), _grew_up),
    (_rx(rf"{_SUBJ}{_WAS} {_ADV}(?:raised|brought up) (?:in|on|near|around|by|above|at|outside) (?P<x>.+)"),
     _grew_up),
    (_rx(rf"{_SUBJ}{_WAS} {_ADV}born (?P<prep>in|on|at) (?P<x>.+)"), _born),
    (_rx(rf"{_SUBJ}(?:{_BE}|(?:'ve| have| has) been) {_ADV}(?:(?:very|severely|mildly|slightly) )?allergic to "
         r"(?P<x>.+)"), _allergic),  # "I've been allergic to penicillin since I was a kid"
    (_rx(rf"{_SUBJ}(?:'ve| have| has) {_ADV}been to (?P<x>(?-i:[A-Z]).+?)(?: (?:many|several|a few|(?:a )?couple of|"
         rf"{_NUM}) times| before| twice| once)?"), _visited),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?:(?:happily|newly) )?(?P<v>married to|engaged to|dating|in a relationship with) "
         r"(?P<x>.+)"), _partner),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?P<v>(?:a (?:big |huge |massive |lifelong )?fan of|into|passionate about|crazy about|"
         r"obsessed with|keen on)) (?P<x>.+)"), _like),
    (_rx(rf"{_SUBJ}(?:'s| is| are) {_ADV}(?:away|staying|holidaying|stationed|posted) (?:in|at) "
         r"(?P<x>(?-i:[A-Z]).+)"), _whereabouts),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?:(?:strictly|mostly|fully) )?(?P<x>vegetarian|vegan|pescatarian|teetotal|"
         r"gluten[- ]free|lactose[- ]intolerant|coeliac|celiac|diabetic|kosher|halal)(?:,.*)?"), _diet),
    (_rx(rf"{_SUBJ} {_ADV}(?:go|goes) to (?P<x>(?:the )?(?-i:[A-Z]).+)"), _goes_to),
    (_rx(rf"{_SUBJ}(?: got| were| was| have| 've| has)? {_ADV}(?:got )?(?P<ev>married|engaged) (?P<prep>in|at|on) "
         r"(?P<x>.+)"), _wedding),
    (_rx(rf"{_POS} (?P<np>{_NP})(?P<v> is| are| was| were|{_IS_S}) (?P<x>(?:on|at|in|this|next) .+)"), _event),
    (_rx(rf"{_SUBJ}(?P<be>{_BE}|{_WAS}) {_ADV}(?:a|an) (?P<x>.+)"), _a_something),
    (_rx(r"i(?:'m| am) (?P<x>[^\W\d_][\w'-]*(?: [^\W\d_][\w'-]*){0,2})"
         rf"(?:,? (?P<age>\d{{1,2}}|{_NUM}(?:-{_NUM})?)(?: (?:yrs?|years?) old| yo)?)?"
         r"(?:,\s+(?P<rest>.*))?"), _intro),
    (_rx(rf"{_SUBJ} {_ADV}(?P<v>like|likes|love|loves|enjoy|enjoys|prefer|prefers|adore|adores) (?P<x>.+)"), _like),
    (_rx(rf"{_SUBJ} {_ADV}(?:hate|hates|dislike|dislikes|detest|detests|can't stand|cannot stand|can't bear|"
         r"don't like|do not like|don't enjoy|doesn't like) (?P<x>.+)"), _dislike),
    # Not "I have to go", "I have been", "I have no idea", "I have tried ...": obligations and perfect tenses.
    (_rx(rf"{_SUBJ}(?:'ve got| {_ADV}(?P<v>have got|have|has|own|owns)) (?!(?:to|been|got to|no|a question|"
         r"a quick question|questions|a favou?r|an idea|done|never|always|just|already|seen|heard|read|had|made|met|"
         r"known|gone|\w{2,}ed)\b)(?P<x>.+)"), _have),
    (_rx(rf"{_SUBJ} {_ADV}(?P<v>speak|speaks|play|plays|drive|drives|study|studies|studied) (?P<x>.+)"), _activity),
    (_rx(rf"{_SUBJ}{_BE} {_ADV}(?P<v>studying|learning) (?P<x>.+)"), _activity),
    (_rx(rf"{_SUBJ} {_ADV}(?P<v>go|goes)(?P<rest> (?P<x>[a-z]+ing)\b.*)"), _go_doing),
    (_rx(rf"{_SUBJ}(?P<aux>'ve|'s| have| has| had) {_ADV}(?P<v>{_PP})(?P<rest> \w.*)"), _did),
    (_rx(rf"{_SUBJ}(?P<aux>{_BE}| was| were) {_ADV}(?P<v>{_ING})(?P<rest> \w.*)"), _did),
    (_rx(rf"{_SUBJ}(?P<aux>{_BE}| was| were| got| get| gets) {_ADV}(?P<v>{_PP})(?P<rest> \w.*)"), _did),
    (_rx(rf"{_SUBJ} {_ADV}(?P<aux>ended up|wound up) (?P<v>{_ING})(?P<rest> \w.*)"), _did),
    (_rx(rf"{_SUBJ} {_ADV}(?P<v>{_SIMPLE})(?P<rest> \w.*)"), _did),
    (_rx(rf"{_SUBJ}(?P<aux>'ve|'s| have| has| had) {_ADV}(?P<v>[a-z]+)(?P<rest> \w.*)"), _did_any),
    (_rx(rf"{_SUBJ}(?P<aux>{_BE}| was| were|(?:'ve| have| has| had) {_ADV}been) {_ADV}(?P<v>[a-z]+ing)"
         r"(?P<rest> \w.*)"), _did_any),
    (_rx(rf"{_SUBJ} {_ADV}(?P<v>[a-z]+)(?P<rest> \w.*)"), _did_any),
    (_rx(rf"(?:.* )?(?P<pos>my|our) (?P<np>{_NP})\s*:(?!\d)\s*(?P<x>\S.*)"), _my_np_is),  # not a time: "27:40"
    (_rx(rf"{_POS} (?P<np>{_NP})(?P<v> is| are| was| were|{_IS_S}) (?P<x>.+)"), _my_np_is),
    (_rx(rf"{_SUBJ}(?P<be>{_BE}|{_WAS}) {_ADV}(?P<rest>\w.*)"), _be_where),
]


# Read after the rule that matched a clause, for what that rule leaves out: the other phrases of "I moved to
# Edinburgh from Tampere in 2019" (from where, when), of "I work as a mechanical engineer at Bosch in Feuerbach"
# (where) or "I'm an architect at a small firm in Gastown". Their facts are kept when their keys are new.
_MORE_RULES: list[tuple[re.Pattern, Callable[[_Said], _Draft | list[_Draft] | None]]] = [
    (pattern, build) for pattern, build in _RULES if build in (_did, _did_any, _be_where)]


# --- names said in passing: "my sister Ines", "our accountant, Priya,", "Thea Brandt, my oldest friend," -------

_OF_MINE = (r"(?:a|an) (?P<np2>(?:(?:old|close|good|dear|best|childhood) )?(?:friend|colleague|neighbour|neighbor|"
            r"cousin|mate|pal|classmate)) of (?P<pos2>mine|ours)")
_APPOSITIONS = [
    # "my neighbour, a retired pilot called Sven,", "Our CTO, Wen Jie,", "an old friend of mine, Tariq Mansour,"
    _rx(rf"(?:(?P<pos>my|our) (?P<np>{_SNP})|{_OF_MINE})\s*(?:,|[—–]+|\s-)\s*(?:(?:a|an|the) [^,—–]{{1,60}}? "
        rf"(?:called|named) |the )?(?P<name>{_NAMES})\s*(?=,|[—–]|\s-|$)"),
    # "my sister Ines just moved", "my mum's cat Saffron had kittens", "my grandmother Ilse"
    _rx(rf"(?P<pos>my|our) (?P<np>{_SNP_WORD}(?: {_STOP_NP}{_SNP_WORD})?) (?P<name>{_NAMES})(?![\w'-])"),
    # "my cousin, who is called Mireille," / "my cousin whose name is Mireille"
    _rx(rf"(?P<pos>my|our) (?P<np>{_SNP}),? (?:who is|who's|whose name is) (?:called |named )?(?P<name>{_NAMES})"),
    # "Thea Brandt, my oldest friend, is ...", "takeout from Zaatar House, my favourite spot in the city"
    _rx(rf"(?P<name>{_NAMES}), (?P<pos>my|our) (?P<np>{_SNP})(?: (?:in|at|on|of|from) [^,]+)?\s*(?=,|$)"),
    # "plus a very elderly leopard tortoise called Oupa", "this place called Cosmic Bean": asked by the head noun
    _rx(rf"(?:.*?\b)?(?:a|an|this|that) (?:[\w'-]+ ){{0,3}}?(?P<np>(?!(?:and|or|the|of|with|very)\b)[a-z][\w'-]*) "
        rf"(?:called|named) (?P<name>{_NAMES})"),
]


def _names(said: str, core: str) -> list[_Draft]:
    """Facts about the names the user gives in passing, whatever else the clause says."""
    drafts: list[_Draft] = []
    seen: set[str] = set()
    for pattern in _APPOSITIONS:
        for m in pattern.finditer(core):
            name = said[m.start("name"):m.end("name")]
            groups = m.groupdict()
            np = " ".join((groups.get("np") or groups.get("np2") or "").split())
            pos = (groups.get("pos") or "").lower() or ("our" if (groups.get("pos2") or "").lower() == "ours"
                                                         or re.match(r"we\b", core, re.I) else "my")
            if (not np or not _is_name(core[m.start("name"):m.end("name")]) or name in seen  # "tomasz" typed lowercase
                    or np.lower().endswith("name")):  # "My name Piotr": the user's own, a rule of its own
                continue
            seen.add(name)
            plural = bool(re.search(r"\b(?:and|&)\b|,", name)) or (np.endswith("s") and not np.endswith(("ss", "sis")))
            if re.fullmatch(r"(?:favou?rite|fave)", np, re.I):  # "My favourite Alpine pass is ...": no name given
                continue
            if re.match(r"(?:favou?rite|fave)\b", np, re.I):  # "Zaatar House, my favourite spot in the city"
                thing = np.split(maxsplit=1)[1] if " " in np else "place"
                tail = core[m.end("np"):m.end()].strip(" ,")
                full = f"{thing} {tail}".strip()
                qs = _ME.ask(f"What's my favourite {full}?", f"What is my favourite {thing}?",
                             f"Which {thing} do I like best?", f"Do you remember my favourite {full}?")
                drafts.append(_Draft(_sentence(f"Your favourite {full} is {name}"), qs, _name_key(name)))
                continue
            draft = _name_of(np, name, plural, pos, key=_name_key(name))
            drafts.append(draft)
            if not plural and (age := _WHO_IS_AGE.match(core, m.end("name"))):  # "our daughter Meera, who is eight"
                who = _third(pos, np, False)
                drafts.append(_Draft(_sentence(f"{name} is {age.group('n')}"), who.ask(
                    "How old is {S}?", "How many years old is {S}?", "Do you remember how old {S} is?",
                    f"How old is {name}?"), age.group("n")))
    return drafts


_WHO_IS_AGE = _rx(rf",? (?:who is|who's|who turned|who just turned|aged|age) (?P<n>\d{{1,3}}|{_NUM}(?:[- ]{_NUM})?)"
                  r"(?: years? old| yrs? old| months? old)?(?=[,;.]|$| and\b)")


# --- hedged preferences: "if I had to pick one pastry, it'd be ...", a choice said as a hypothetical ------------

_HEDGED = _rx(
    r"(?:(?:i suppose|i guess|i think|i reckon|honestly|to be honest|tbh|well|ok|okay|hmm+)[,\s]+)*"
    r"(?:[^,]{1,40}?,\s*)?"  # "guinness obviously, if I had to pick one it's guinness"
    r"(?:but |though )?if (?P<subj>i|we) (?:really |absolutely |only )?"
    r"(?:had to|have to|gotta|must|could only|can only|"
    r"(?:were|was) (?:forced|made|asked) to|were to|got to|only got to|needed to)(?: only)? "
    r"(?P<verb>choose|pick|name|go with|keep|eat|have|listen to|watch|read|drink|take|select|save|play|visit)"
    r"(?: just| only)?(?: (?:(?:one|1|a|an|a single|only one|just one|my|our|the|single|favou?rite|fave|all-time) )*"
    r"(?P<np>[\w' -]+?)(?: (?:for (?:the rest of (?:my|our) li(?:fe|ves)|ever|life|good)|forever|ever again|again))?)?"
    r",? (?:then )?(?:(?:i suppose|i guess|i think|i reckon)[,\s]+)?"  # "..., I suppose it would be Carminho"
    r"(?:it(?:'d|d| would| will)(?: have to| probably| definitely)? be|it'?s|prob|probs|prolly|id say|"
    r"(?:i|we)(?:'d| would)(?: (?:probably|definitely|"
    r"have to|honestly|just))* (?:say|go with|go for|pick|choose|take|keep|eat|have)|that(?:'d| would) be|easily|"
    r"probably|definitely|hands down)(?: it'd be)? (?P<x>.+)")


_HEDGED_AFTER = _rx(
    r"(?:(?:i think|i guess|i suppose|honestly|probably)[,\s]+)*(?P<subj>i|we)(?:'d| would) (?:(?:probably|definitely|"
    r"have to|honestly|just) )*(?:say|go with|go for|pick|choose|take|keep) (?P<x>[^,]+?),? if (?:i|we) "
    r"(?:really |only )?(?:had to|have to|must|could only|can only|(?:were|was) (?:forced|made|asked) to|were to) "
    r"(?:choose|pick|name|select|keep|eat|have|go with)(?: just| only)? (?:(?:one|a|an|a single|only one|just one|"
    r"my|our|the|single|favou?rite|fave) )*(?P<np>[\w' -]+?)")


_WOULD_BE_MINE = _rx(r"(?:.*\W)?if (?:i|we) .+?, (?:(?:i suppose|i guess|i think|probably|then)[,\s]+)*"
                     r"(?P<x>[^,]+?) (?:would|will|'d) be (?:my|our) (?:favou?rite|fave|choice|pick)\b.*")
_TOPIC_BEFORE = _rx(r"(?:.*\W)?(?:favou?rite|favorite|fave|fav|best) (?P<np>[a-z][\w' -]{1,30}?)"
                    r"(?:\?|\.| is\b| would\b| on\b| of\b)")


def _hedged(said: str, core: str, before: str = "") -> _Draft | None:
    """ "If I had to choose one dessert, it'd be tiramisu" (or "I'd go with tiramisu if I had to choose one
    dessert"): a favourite, said as a forced choice; "favourite club? if I had to pick one it'd be Chelsea" names
    the kind in the text `before` it. Other hypotheticals ("If I had a dog I'd call it Rex") are no facts; the
    caller skips them."""
    if mine := _WOULD_BE_MINE.fullmatch(core):  # "..., I suppose linden honey would be my favourite": "it'd be ..."
        x = slice(mine.start("x"), mine.end("x"))
        core, said = core[:x.start] + "it'd be " + core[x], said[:x.start] + "it'd be " + said[x]
    m = _HEDGED.fullmatch(core) or _HEDGED_AFTER.fullmatch(core)
    if not m:
        return _answered(said, core, before)
    x = _value(said[m.start("x"):m.end("x")])
    np = _fav_np(m.group("np") or "one")  # "fave game?? if i had to choose prob mobile legends": said before
    # "one port from all those years", "one place I have done fieldwork": the kind, without what qualifies it
    np = re.split(r"\s+(?:from|of|in|at|on|for|that|which|where|i|we|you|i've|we've)\b", np, maxsplit=1, flags=re.I)[0]
    if np.lower() in ("one", "1", "thing", "only one", "only 1") and (topic := _TOPIC_BEFORE.match(before)):
        np = _fav_np(topic.group("np"))
    if not x or not np or len(np.split()) > 4 or np.lower() in ("one", "thing", "of them", "one of them"):
        return None  # "if I had to pick one, it'd be Naples": a favourite what?
    voice = _US if m.group("subj").lower() == "we" else _ME
    qs = voice.ask(f"What's {{P}} favourite {np}?", f"What is {{P}} favorite {np}?", f"Which {np} do {{S}} like best?",
                   f"Which {np} would {{S}} pick?", f"If {{S}} had to choose one {np}, what would it be?",
                   f"Do you remember {{P}} favourite {np}?")
    return _Draft(_sentence(to_second_person(f"{voice.p} favourite {np} is {x}")), qs, _key(x))


# "fave food? prob bunny chow if im honest": a favourite the user asks themselves and answers with a bare value
_FAV_ASKED = _rx(r"(?:.*\W)?(?:favou?rite|favorite|fave|fav|best(?! (?:way|time|place|thing|option|idea|advice)\b)|"
                 r"if (?:i|we) (?:had|have) to (?:pick|choose) (?:a|an|one|my|our)) (?P<np>[a-z][\w' -]{1,30}?)"
                 r"(?: of all time| ever| rn| atm| these days)?\s*(?:\?+|\.{2,}|…)\W*"
                 r"(?:(?:hmm+|uf+|ugh+|ooh+|oh+|well|ok|okay|so|hard|tough|good question)\W*)*")
_BARE_VALUE = _rx(r"(?:(?:hmm+|uf+|ooh+|oh+|easy|ok|okay|well|honestly|tbh|def|deffo|definitely|prob|probs|prolly|"
                  r"i think|i guess|i'd say|id say|ya|yeah|"
                  r"probably|maybe|obviously|obv|gotta be|has to be|it'?s|that'?s|easily|"
                  r"mine(?:'s| is| would be))[,.!\s]+)*"
                  r"(?P<x>[^\W\d_][\w'’.&-]*(?: [\w'’.&-]+){0,5}?)"
                  r"(?=\s*(?:,|\.\.|!|\?|$| if\b| tbh\b| i guess\b| i think\b| i suppose\b| honestly\b| tho\b|"
                  r" though\b| but\b| even\b| lol\b| haha\b| for sure\b| obv\b| no doubt\b| hands down\b| easily\b))")
_NO_ANSWER = re.compile(r"(?:i|we|my|our|you|it|idk|dunno|no|not|none|nothing|depends|hard|too|can'?t|cant|"
                        r"good|great|tough|hmm+|ugh+|lol|haha)\b", re.I)


def _answered(said: str, core: str, before: str) -> _Draft | None:
    """The value that answers a "fave <kind>?" the user asked just before ("fave team? cruzeiro i guess")."""
    topic = _FAV_ASKED.fullmatch(before.rstrip())
    m = _BARE_VALUE.match(core) if topic else None
    if not m or _NO_ANSWER.match(m.group("x")):
        return None
    x, np = _value(said[m.start("x"):m.end("x")]), _fav_np(topic.group("np")).lower()
    np = re.split(r"\s+(?:from|of|in|at|on|for|that|which|where|to)\b", np, maxsplit=1)[0]  # "horse at the farm"
    if not x or not np or len(np.split()) > 3:
        return None
    qs = _ME.ask(f"What's {{P}} favourite {np}?", f"What is {{P}} favorite {np}?", f"Which {np} do {{S}} like best?",
                 f"Do you remember {{P}} favourite {np}?")
    key = _key(re.split(r" by ", x, maxsplit=1)[0])  # "loveless by my bloody valentine": the album
    return _Draft(_sentence(to_second_person(f"my favourite {np} is {x}")), qs, key)


# --- fallback: any other first-person statement ------------------------------------------------------------------

_STOPWORDS = frozenset("""
    i me my mine myself you your yours a an the and or but so to of in on at for with from by about as is are was
    were am be been being have has had do does did don't doesn't didn't not no it its it's this that these those
    there here very really just also too quite much many some any all i'm i've i'd i'll he she they we his her
    their our them him us than then now still never always can can't will won't up out into over after before
    when while because since if get got lot lots everywhere anywhere somewhere nowhere together tonight both each
    way
""".split())
_MODIFIERS = frozenset("best old older oldest little younger youngest big new late ex favourite favorite first "
                       "second third other own".split())
_I_START = re.compile(r"(?:i|we)(?:'m|'ve|'re)?\s+\w", re.I)
_ABOUT_ME = re.compile(r"(?:i|we|my|our)\b|[\w'-]+ and i\b|me and\b", re.I)
_LEAD_WORDS = frozenset("just really also still actually always never usually often sometimes don't do dont "
                        "didn't did can't cannot".split())


def _my_topic(core: str) -> str:
    """The noun after "my" (or "our"): "sister", "best friend", "wife's cat", "our van"."""
    m = re.search(r"\b(my|our)\s+([\w'-]+(?:\s+[\w'-]+){0,3})", core, re.I)
    if not m:
        return ""
    words = m.group(2).split()
    topic = [words[0]]
    for w in words[1:]:
        if not (topic[-1].lower() in _MODIFIERS or topic[-1].endswith("'s")):
            break
        topic.append(w)
    return " ".join(topic) if m.group(1).lower() == "my" else "our " + " ".join(topic)


def _fallback_key(said: str, topic: str) -> str:
    """The last content word (or proper name) of the statement that is not part of the topic, nor its verb."""
    text = said
    while (trimmed := _KEY_TAIL.sub("", text)) != text:
        text = trimmed
    words = re.findall(r"[\w'’-]+", text)
    taken = {w.lower() for w in topic.split()}
    verb_at = 0
    if words and words[0].lower() in ("i", "we"):  # "I just bike everywhere": "bike" is what they do, not a value
        verb_at = 1
        while verb_at < len(words) - 1 and _norm(words[verb_at]).lower() in _LEAD_WORDS:
            verb_at += 1
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        if _norm(w).lower() in _STOPWORDS or w.lower() in taken or i == 0:
            continue
        if i <= verb_at:
            break  # the verb of "I like it" / "I love you" is no key: nothing was said about anything
        if w[0].isupper():  # extend a proper name backwards: "New York"
            j = i
            while j > 1 and words[j - 1][0].isupper() and words[j - 1].lower() not in taken:
                j -= 1
            return " ".join(words[j:i + 1])
        return w
    return ""


def _fallback(said: str, core: str) -> _Draft | None:
    """A statement about the user that no rule knows: "I don't eat meat", "I used to live in London"."""
    if len(core.split()) < 2 or not _ABOUT_ME.match(core) or not (_I_START.match(core) or _HAS_VERB.search(core)):
        return None
    if _UNFINISHED.search(core) or _episode(core):
        return None  # "I was born in": the value never came; "My phone died again": chit-chat, no fact
    if re.match(r"(?:i|we)\s+(?:\w+\s+){0,2}?(?:it|them|this|that|these|those)\b", core, re.I):
        return None  # "I put it in everything": about something said before, not a fact on its own
    topic = _my_topic(core)
    key = _fallback_key(said[:len(_without_correction(core))], topic)  # never the value being corrected
    if not key:
        return None
    if topic:
        topic = topic if topic.startswith("our ") else f"my {topic}"
        qs = [f"What did I tell you about {topic}?", f"What do you know about {topic}?",
              f"Do you remember what I said about {topic}?"]
    else:  # without "my", the main object is usually the answer itself, so ask about the user
        qs = ["What did I tell you about myself?", "What do you know about me?",
              "Do you remember what I told you about myself?"]
    return _Draft(_sentence(to_second_person(said)), qs, key)
