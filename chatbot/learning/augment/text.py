"""Text normalisation for fact extraction: apostrophes, sentences and clauses (with a subject two verbs share),
fillers, labels and lead-ins ("New job: ...", "remember this for me: ...", "I'd probably say ...", "I meant ..."),
what is not a fact (questions, requests, hypotheticals, negations, chit-chat and one-off episodes), and the values
and keys a rule reads from a match."""
from __future__ import annotations

import contextvars
import functools
import re
import unicodedata

from lemminflect import getAllLemmas

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})  # one char for one: spans map


def _norm(text: str) -> str:
    """The matching copy of a text: typographic apostrophes as "'", and names typed in lowercase capitalised
    (`_truecase`); one character for one, so spans of it are spans of the text as said."""
    return _truecase(text.translate(_APOSTROPHES))


# --- chat as typed: "im", "ive", "dont"; names in lowercase ("we moved to leeds last yr") -------------------------

_CONTRACTIONS = {
    "im": "I'm", "ive": "I've", "id've": "I'd've", "dont": "don't", "doesnt": "doesn't", "didnt": "didn't",
    "cant": "can't", "wont": "won't", "isnt": "isn't", "arent": "aren't", "wasnt": "wasn't", "werent": "weren't",
    "havent": "haven't", "hasnt": "hasn't", "hadnt": "hadn't", "couldnt": "couldn't", "wouldnt": "wouldn't",
    "shouldnt": "shouldn't", "thats": "that's", "whats": "what's", "theyre": "they're", "youre": "you're",
    "weve": "we've", "theyve": "they've", "u": "you", "ur": "your", "yr": "year", "yrs": "years",
    "bc": "because", "cuz": "because", "coz": "because", "w/": "with", "bf": "boyfriend", "gf": "girlfriend",
}
# Chat words a dictionary does not know that are no names: never capitalised as one in a lowercase message.
_SLANG = frozenset("""
    lol lmao lmfao rofl omg omfg ngl tbh tbf imo imho idk idc btw fyi rn atm irl smh fr ikr pls plz thx ty np nvm
    ok okay kk ya yea yeah yep yup nah nope haha hahaha hehe aww ugh meh hmm hm wow yay oops brb gonna wanna gotta
    kinda sorta dunno lemme gimme bestie hubby wifey bro sis fam mate mum mom dad grandma grandpa nan gran
    xx xoxo pic pics vid vids uni abt bday tmrw tmr tho thru cos
""".split())


def _repair(text: str) -> str:
    """Chat as typed, made readable to the rules: contractions without their apostrophe ("im" -> "I'm", "dont")
    and common abbreviations ("yr", "bc", "w/"). Statements and answers quote the repaired text."""
    def fix(m: re.Match) -> str:
        word = m.group(0)
        low = word.lower()
        return _CONTRACTIONS[low] if low in _CONTRACTIONS and word.islower() else word

    text = re.sub(r"[\w'’]+(?:/(?=\s))?", fix, text)
    # "me mam runs a b&b", "the husband huw does ...", "wife's name is carol", "son tyler is a mechanic": my
    text = re.sub(rf"\b(?:me|the|The) (?={_RELATIONS}\b)", "my ", text)
    # "my brother mwangi he drive matatu", "my husband, julien, he do the deliveries": the pronoun repeats the subject
    text = re.sub(rf"\b((?:[Mm]y|[Oo]ur) (?:(?:best|older|younger|little|big|eldest|youngest|oldest) )?"
                  rf"(?:{_RELATIONS}|{_PEOPLE_TOO})(?P<name>,? (?!(?:he|she|they)\b)[A-Za-z][\w'-]*)?)(?P<comma>,?) "
                  r"(?:(?:he|she|they) (?=[a-z])(?!(?:said|says|told|thinks|thought)\b)|(?P<be>he's|she's|they're) )",
                  lambda m: m.group(1) + (m.group("comma") if m.group("name") else "") + " "
                  + {"": "", "they're": "are "}.get(m.group("be") or "", "is "), text)
    # "Knopf is not eleven but thirteen": the value that holds first, as every other correction says it
    text = re.sub(r"\b(is|are|am|was|were|'s|'m|'re) not (?!(?:just|only|merely|simply)\b)([\w'’ -]{1,30}?),? "
                  r"but (?:rather |actually )?([\w'’ -]{1,30}?)(?=[.!?,;]|$)", r"\1 \3, not \2", text)
    return re.sub(rf"(^|[.!?,;:]\s+|\b(?:and|but|so) )((?i:{_RELATIONS})(?:'?s)?)"
                  r"(?= (?:[A-Za-z]+ )?(?:is|are|was|were|name|names|just|also|still|[a-z]+s|[a-z]+ed)\b)",
                  lambda m: f"{m.group(1)}my {m.group(2).lower()}", text)


# People (and pets) chat names without "my": "wife's name is carol", "son tyler is a mechanic", "me mam".
_RELATIONS = (r"(?:mum|mom|mam|ma|dad|da|mother|father|wife|husband|hubby|wifey|son|daughter|kids|twins|brother|"
              r"sister|bro|sis|partner|boyfriend|girlfriend|bf|gf|fiance|fiancee|grandma|grandpa|nan|gran|granny|"
              r"cousin|uncle|aunt|auntie|niece|nephew|boss|landlord|landlady|neighbour|neighbor|flatmate|roommate|"
              r"grandson|granddaughter|grandkids|grandchildren|stepson|stepdaughter|dog|cat|puppy|kitten)")


_PEOPLE_TOO = (r"(?:friend|bff|colleague|apprentice|manager|supervisor|customer|client|teacher|student|mate|kuya|ate|"
               r"tito|tita)")


# Whether the message being read was typed without capitals (set by extract_facts for the message as a whole: a
# clause of a well-cased message has no capitals either, and its lowercase words are no names).
CASELESS: contextvars.ContextVar[bool] = contextvars.ContextVar("caseless", default=False)


def _caseless(text: str) -> bool:
    """No capitals but "I" and sentence starts: "my dog is called bruno. we moved to leeds"."""
    return not re.search(r"[A-Z]", re.sub(r"(?:^|[.!?]\s+)[A-Z]|\bI(?:'\w+)?\b", "", text))


def _truecase(text: str) -> str:
    """In a message typed without capitals (`CASELESS`), the words no dictionary knows capitalised, as the names
    they mostly are ("my dog is called bruno", "we moved to leeds"), so that the rules that look for a name see
    one. Only the matching copy (`_norm`) and name searches use it: one character for one, so keys and answers
    keep the user's spelling."""
    if not CASELESS.get():
        return text
    text = re.sub(r"(?<=\bnamed )[a-z]+|(?<=\bcalled )[a-z]+", lambda m: m.group(0).capitalize(), text)
    # right after a possessive or an article comes a noun, however spelt ("my roomate, joana"), not a name
    return re.sub(r"(?<![\w'-])(?<!\bmy )(?<!\bour )(?<!\byour )(?<!\bhis )(?<!\bher )(?<!\ba )(?<!\ban )"
                  r"(?<!favourite )(?<!favorite )[a-z]{3,}(?![\w'-])",
                  lambda m: m.group(0).capitalize() if _unknown(m.group(0)) else m.group(0), text)


@functools.lru_cache(maxsize=65536)
def _unknown(word: str) -> bool:
    """Not in lemminflect's dictionary (nouns, verbs, adjectives, adverbs), nor a function word or chat slang."""
    return word not in _SLANG and word not in _FUNCTION_WORDS and not getAllLemmas(word)


# Words a dictionary of content words leaves out (lemminflect has nouns, verbs, adjectives and adverbs only).
_FUNCTION_WORDS = frozenset("""
    the a an and or but nor for yet so of in on at to from by with about into onto over under after before since
    until while because although though if unless than that this these those there here who whom whose which what
    when where why how my your his her its our their mine yours hers ours theirs me him them us myself yourself
    himself herself ourselves themselves itself you he she it we they i am is are was were be been being have has
    had do does did will would shall should can could may might must not no yes all any some each every both
    either neither few many much more most other another such own same too very just also only even still already
    again ever never always sometimes often usually one two three four five six seven eight nine ten eleven twelve
    thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand million first second third
""".split())


_ABBREVIATION_END = re.compile(r"\b(?:mr|mrs|ms|dr|st|jr|sr|prof|mt|vs|etc|e\.g|i\.e|no)\.$", re.I)


# Sentence punctuation, line breaks, and emoji followed by more text: in chat an emoji often ends a sentence
# ("the rain never stops 🙄 anyway my flatmate ...").
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n+\s*|(?<=[\U0001F300-\U0001FAFF\u2600-\u27BF])\s+(?=\w)")


def _sentences(text: str) -> list[str]:
    """Split on sentence punctuation, line breaks and emoji, without breaking "St. Louis" or "Dr. Smith"."""
    pieces = [re.sub(r"\s+", " ", p.strip()) for p in re.split(_SENTENCE_END, text) if p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged and _ABBREVIATION_END.search(merged[-1]):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return merged


# What is said without "I'm" or "my" in a list about the user: "20 yrs old", "allergic to peanuts", "originally from
# Accra", "fav food is migas", "birthday is feb 29". Only words that are about a person, so "weather is nice" is not.
_MY_THING = re.compile(r"(?:(?:fav|fave|favou?rite|all-time favou?rite) [\w' -]{1,30}?|"
                       r"(?:full |first |last |nick)?name|birthday|bday|b-day|job|hometown|home town|age|star sign|"
                       r"blood type|shoe size|height) "
                       r"(?:is|'s|are) \w", re.I)
_SAID_OF_ME = re.compile(
    _MY_THING.pattern + r"|(?:\d{1,3}|[a-z]+-[a-z]+) (?:years?|yrs?|yo|y/o)(?: old)?\b"
    r"|(?:(?:very|severely|mildly|deathly) )?allergic to \w|originally from \w|(?:happily )?married to \w", re.I)


# Clause boundaries inside a sentence: "..., and I live in Lisbon", "... but my cat is Tom", "...; I ...",
# "... — we ...".
# Not before "we named her Fig" / "we're called Soggy Toast": that clause names what the first one introduced.
_SUBJECT_AHEAD = (r"(?=(?:i|i'm|i've|my|we|we're|we've|our|he|she)\b|" + _SAID_OF_ME.pattern + ")"
                  r"(?!(?:we|i)(?:'re| are|'m| am)? (?:called|named|call|name)\b)")
_CLAUSE_BREAK = re.compile(
    r"\s*;\s*|\s+(?:[—–]+|-{1,2})\s+(?!(?:it's|it is|it was|that's|that is|she's|he's|they're)\b)"
    r"|\s*,\s*(?:(?:and|but|plus|so|also)\s+)?(?:(?:now|then|also|today|currently)\s+)?" + _SUBJECT_AHEAD +
    r"|\s+(?:and|but|plus)\s+(?:(?:now|then|also|today|currently)\s+)?" + _SUBJECT_AHEAD
    + r"|\s+(?:btw|by the way)\s*[,;:]?\s+(?=\w)"  # "im in grade 10 at Ateneo btw, math is killing me"
    # "I have never been to Brazil, even though my cousin has lived in Recife ...": a fact after a concession
    + r"|\s*,\s*(?:even though|although|whereas)\s+" + _SUBJECT_AHEAD, re.I)
# A clause needs a verb to stand on its own; otherwise "My wife and I live here" would split after "My wife".
_HAS_VERB = re.compile(
    r"'(?:m|ve|re)\b|\b(?:is|are|was|were|am|have|has|had|live|lives|work|works|like|likes|love|loves|enjoy|"
    r"prefer|speak|speaks|play|plays|drive|drives|study|studies|grew|born|got|own|owns|hate|hates|called|named|"
    r"moved|go|goes|went|do|does|did|don't|can't|lost|made|took|gave|came|saw|said|told|found|left|bought|sold|"
    r"ran|won|met|sent|began|broke|fell|felt|kept|paid|wrote|drove|flew|grew|knew|spent|built|taught|brought|"
    r"\w{2,}ed)\b", re.I)
# "I was born in Ibadan but raised in Croydon", "My father was born in Alexandria and moved to Manchester": the
# second verb has no subject of its own; it borrows the first clause's (and its "was" before a participle).
_SHARED_SUBJECT = re.compile(
    r"\s+(?:and|but)\s+(?:then\s+|later\s+|now\s+)?(?=(?:raised|brought up|educated|moved|relocated|grew up|lived|"
    r"studied|worked|married|settled|live|lives|work|works|teach|teaches|run|runs|own|owns)\b)", re.I)
_CLAUSE_SUBJECT = re.compile(
    r"(?P<s>i|we|he|she|(?:my|our) [\w'-]+(?: (?!(?:was|were|is|are|has|have|had)\b)[\w'-]+)?(?: (?-i:[A-Z][\w'-]+))?)"
    r"(?P<aux> (?:was|were))?\b", re.I)
_PARTICIPLE = re.compile(r"(?:raised|brought up|educated|married)\b", re.I)


def _has_verb(text: str) -> bool:
    """A clause with a verb of its own; "I keep bees" has one even though "keep" is not in _HAS_VERB."""
    return bool(_HAS_VERB.search(text) or re.match(r"\W*(?:i|we|you|he|she|they)\s+\w", text, re.I))


def _clauses(sentence: str) -> list[tuple[str, str]]:
    """The sentence's clauses as (clause as said, the subject it borrows as said: "" when it has its own)."""
    norm = _norm(sentence)
    clauses: list[tuple[str, str]] = []
    start = 0
    for m in _CLAUSE_BREAK.finditer(norm):
        left, right = norm[start:m.start()], norm[m.end():]
        comma = m.group(0).lstrip().startswith(",")
        if m.group(0).strip() in (";", "—", "–", "-", "--") or (
                (_has_verb(left) or (comma and len(left.split()) >= 3)) and _has_verb(right)):
            clauses.append((sentence[start:m.start()], ""))
            start = m.end()
    clauses.append((sentence[start:], ""))
    out: list[tuple[str, str]] = []
    for clause, _ in clauses:
        out += _shared_subject(clause)
    return [(c.strip(), s) for c, s in out if c.strip()]


def _shared_subject(clause: str) -> list[tuple[str, str]]:
    norm = _norm(clause)
    m = _SHARED_SUBJECT.search(norm)
    subject = _CLAUSE_SUBJECT.match(_core(norm)) if m else None
    if not m or not subject:
        return [(clause, "")]
    lead = _core_span(norm)[0]
    borrowed = clause[lead + subject.start("s"):lead + subject.end("s")]
    if subject.group("aux") and _PARTICIPLE.match(norm, m.end()):
        borrowed += clause[lead + subject.start("aux"):lead + subject.end("aux")]
    return [(clause[:m.start()], ""), (clause[m.end():], borrowed + " ")]


# Words that open a sentence without carrying content; stripped repeatedly ("Oh, well, by the way, ...").
_FILLER = re.compile(
    r"(?:oh|ah|ooh+|aw+|well|so|and|also|plus|now|btw|by the way|actually|anyway|anyways|um+|uh+|hmm+|ok|okay|yeah|"
    r"yes|yep|no|nope|fyi|for the record|fun fact|to be honest|honestly|frankly|tbh|funnily enough|at least|"
    r"originally(?= (?:i|we)\b)|"
    r"ugh+|pf+t?|phew|haha+|lol|sorry|oops|whoops|my mistake|my bad|ah no|correction|small correction|update|"
    r"quick update|scratch that|good news(?: though)?|wait|hang on|"
    r"(?:hi+|hey+|hello+|helo|hiya|howdy|yo|bonjour|hola+|ciao|hallo|halo|salut|g'day|eai|e a[ií]|ol[aá])(?: there)?|"
    r"good (?:morning|afternoon|evening))"
    r"\b[\s,!.:;—–-]*", re.I)
# A short label before a colon: "New job: I'm ...", "Note for later: my ...". Not "My locker: 42B" (that is the fact).
_LABEL = re.compile(r"(?!(?:my|our|i|we)\b)[^\W\d][\w']*(?:[ ,]+[\w']+){0,4}\s*:\s+", re.I)
# An explicit request to remember: what follows is a fact even without "I" or "my" ("the boat licence renews ...").
_REMEMBER = (r"(?:(?:please|pls|plz|porfa|can you|could you|would you|will you|i need you to|i'd like you to|"
             r"i want you to)\s+)*"
             r"(?:remember|note|make a note|keep in mind|don't forget|do not forget|never forget|don't let me forget|"
             r"note for later|note to self|for future reference|save this|store this|memori[sz]e)"
             r"(?:\s+(?:this|that|it|of this))?(?:\s+for\s+(?:me|later|us))?(?:\s+that)?(?:[\s,:—–-]+|$)")
# Lead-ins that wrap a statement: "Please remember that my dog is Rex", "As I said, I live in Lisbon", "I'd say ...".
_LEAD_IN = re.compile(
    _REMEMBER +
    r"|(?:as\s+|like\s+)?i\s+(?:already\s+|just\s+)?(?:told you|said|mentioned)(?:\s+(?:before|earlier|already))?"
    r"(?:\s+that)?[\s,:]+"
    r"|(?:just\s+)?so\s+you\s+know(?:\s+that)?[\s,:]*|for your information[\s,:]*|you should know(?:\s+that)?\s+"
    r"|i\s+(?:want|wanted)\s+you\s+to\s+know(?:\s+that)?\s+|i\s+(?:should|must)\s+tell\s+you(?:\s+that)?\s+"
    # hedges that wrap a plain statement: "I'd probably say my favourite band is ...", "Gun to my head, ..."
    r"|i(?:'d| would)\s+(?:(?:probably|honestly|definitely|have to|just|still|also)\s+)*(?:say|go with)(?:\s+that)?"
    r"[\s,:]+|gun to (?:my|our) head[\s,:]+|if (?:i'm|i am) (?:being )?honest[\s,:]+|if (?:pushed|pressed)[\s,:]+"
    # "I suppose my favourite season is the monsoon": a favourite after a hedge ("I think my boss hates me" is not)
    r"|i (?:suppose|guess|think|reckon)(?: that)?[\s,]+(?=(?:my|our)\s+(?:all-time\s+)?(?:favou?rite|fave|fav)\b)"
    # corrections: "I meant I study ...", "I misspoke earlier."
    r"|i\s+(?:meant|mean)(?:\s+(?:to say|that))?[\s,:]+(?=i\b|my\b|we\b|our\b)|to correct myself[\s,:]+"
    r"|i\s+(?:got|had)\s+(?:it|that|this)\s+wrong[\s,:—–-]+|i\s+(?:misspoke|mixed (?:it|that|them) up|"
    r"told you wrong|wrote wrong|got (?:muddled|confused|mixed up))(?:\s+(?:before|earlier))?[\s,:—–-]+", re.I)
# Habits said before the subject: "Every Sunday I run with ...", "These days I work nights ...", "For work I drive ...".
_HABIT_LEAD = re.compile(
    r"(?:every|each|most)\s+(?:other\s+)?(?!time\b)\w+(?:\s+(?:morning|evening|night|afternoon))?|these days|nowadays|"
    r"at the moment|at present|currently|for now|right now|"
    r"(?:on|at) (?:the )?(?:weekends?|weekdays|(?:mon|tues|wednes|thurs|fri|satur|sun)days)|for work|"
    r"in the (?:mornings?|evenings?|summers?|winters?)|"
    r"during the week|(?:once|twice|three times) a (?:week|month|year)"
    r"(?=[\s,]+(?:i|we)\s)[\s,]+", re.I)
_GREETING = re.compile(
    r"(?:hi+|hey+|hello+|helo|hiya|howdy|yo|sup|bonjour|hola+|ciao|hallo|salut|g'day|privet|salaam?|namaste|oi|"
    r"hej|hei|ahoj|merhaba|sawubona|kia ora|aloha|shalom|jambo|habari|halo|eai|e a[ií]|ol[aá]|selam|salve|cze[sś][cć]|"
    r"(?:good )?(?:morning|afternoon|evening))\b", re.I)
_TRAILING_PUNCT = " \t.!?…,;:\"”»)]"
# Asides at the end of a statement: "... btw if u wanna know", "..., believe it or not", "..., no contest".
_TRAILING_ASIDE = re.compile(
    r"[\s,]+(?:btw|by the way|if (?:u|you) (?:wanna|want to|must|need to) know|if (?:i'm|i am) (?:being )?honest|"
    r"for what it's worth|fwiw|believe it or not|funnily enough|to be honest|tbh|lol|haha+|lmao|no contest|"
    r"hands down|for sure|without (?:a )?(?:hesitation|doubt)|no question|"
    r"if that makes sense|as they say|just so you know|if you're curious|probably|maybe|perhaps|"
    r"i think|i guess|i reckon|i suppose|nice to meet you|pleased to meet you|both of us|all of us)$", re.I)



def _decoration(c: str) -> bool:
    """Emoji and other symbols around a statement ("😀 I live in Lisbon 🇵🇹")."""
    return c.isspace() or unicodedata.category(c) in ("So", "Sk", "Cf", "Mn")


def _core_span(norm: str) -> tuple[int, int]:
    """Span of the statement proper: fillers, lead-ins and emoji off the front, punctuation and emoji off the end."""
    start, end = 0, len(norm)
    while True:
        while start < end and _decoration(norm[start]):
            start += 1
        m = (_FILLER.match(norm, start) or _LEAD_IN.match(norm, start) or _LABEL.match(norm, start)
             or _HABIT_LEAD.match(norm, start))
        if not m or m.end() == start:
            break
        start = m.end()
    while True:
        while end > start and (norm[end - 1] in _TRAILING_PUNCT or _decoration(norm[end - 1])):
            end -= 1
        if not (m := _TRAILING_ASIDE.search(norm, start, end)):
            break
        end = m.start()
    return start, end


def _remembered(norm: str, start: int) -> bool:
    """Whether the user asked for what follows to be remembered ("remember this for me: ...")."""
    asked = r"\b(?:remember|note|keep in mind|forget|future reference|save this|store this|memori[sz]e)\b"
    return bool(re.search(asked, norm[:start], re.I))


def _core(norm: str) -> str:
    s, e = _core_span(norm)
    return norm[s:e]


# --- what is not a fact ---------------------------------------------------------------------------------------

# A wh-word asks; an auxiliary asks when a subject follows it ("Is Lisbon nice?", "do you remember"), not in a
# chatty ellipsis ("Had a lovely chat with my neighbour", "Was great").
_QUESTION_START = re.compile(
    r"(?:what|who|whom|whose|where|when|why|how|which)\b"
    r"|(?:do|does|did|can|could|would|will|should|shall|may|is|are|am|was|were|have|has|had|isn't|aren't|don't|"
    r"doesn't|didn't)\s+(?:i|you|we|he|she|they|it|my|your|his|her|our|their|the|this|that|these|those|there|"
    r"anyone|anybody|someone|somebody|any|people|everyone|(?-i:[A-Z]))", re.I)
_REQUEST_START = re.compile(
    r"(?:please|pls|plz|can you|could you|would you|will you|tell me|remind me|let me|let's|lets|help me|give me|"
    r"show me|teach me|explain|describe|list|write|find|make|call|go|stop|try|translate|summari[sz]e|recommend|"
    r"suggest|imagine|pretend|forget|guess|say|check|look|ask|answer|don't|do not)\b", re.I)
_HYPOTHETICAL_START = re.compile(r"(?:if|unless|suppose|supposing|imagine|what if|in case)\b", re.I)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|unless|wish|would|could|might|maybe|perhaps|someday|hypothetically|(?:i|you|we|he|she|they)'d)\b", re.I)
_I_AM = r"(?:i(?:'m| am)|we(?:'re| are))"
# Conversation, moods, opinions, wants, plans and remarks about the conversation itself: first person, but nothing
# worth learning as a fact. "I'm going to Oslo" is a plan with a place; "I'm going to try" is not.
_CHITCHAT = re.compile(
    _I_AM + r" (?:fine|good|ok|okay|great|well|alright|all right|doing (?:well|good|fine|great|ok|okay|alright)|"
    r"sorry|sure|not sure|back|here|glad|happy|excited|confused|curious|wondering|so|done|ready|listening|"
    r"kidding|joking|a bit|a little|going to(?!\s+(?-i:[A-Z]))|going \w+ing|gonna|about to|trying to|looking for|"
    r"thinking|tired|"
    r"exhausted|knackered|shattered|starving|stressed|freezing|dying|feeling|having|hungry|bored|"
    r"sad|sick|busy|late|lost|stuck|home|in|out|off|free|available|leaving|on my way|on our way)\b"
    r"|(?:i|we) (?:think|thought|guess|see|know|knew|mean|agree|disagree|understand|wonder|hope|suppose|believe|bet|"
    r"find|reckon|feel|feel like|don't know|do not know|dunno|want|wanted|need|needed|will|'ll|should|must|"
    r"just wanted|was wondering|have a question|have a quick question|have no idea|told you|said|mentioned|forgot|"
    r"remember|appreciate|apologi[sz]e|am wondering|see what you mean|can't believe|"
    r"love (?:that|this|it|how|when|your)|"
    r"misspoke|mixed (?:it|that|this|them) up|got (?:it|that|this) wrong|got (?:muddled|confused|mixed up)|"
    r"told you wrong|wrote wrong|made a mistake|was wrong(?! (?:about|with) (?:my|our)))\b"
    r"|i(?: have|'ve got| need) to\b|i(?: have|'ve) been (?:thinking|wondering|meaning|trying|looking)\b"
    r"|i'(?:ll|ve got a question)\b|me too\b|my bad\b|my pleasure\b|thank", re.I)
_FIRST_PERSON = re.compile(
    r"\b(?:i|i'm|i've|i'd|i'll|my|me|mine|myself|we|we're|we've|we'd|we'll|our|ours|us|ourselves)\b", re.I)
# A negated statement says what is not so: "I don't have a car" must not teach "car" as something the user has.
# A correction's tail ("Bobby, not Rex") is no negation; dislikes and what someone does not eat or drink are facts.
_NEGATION = re.compile(
    r"\b(?:not|never|no longer|nor|cannot|dont|doesnt|didnt|cant|wont|isnt|arent|wasnt|werent|havent|hasnt)\b"
    r"|n't\b|\b(?:have|has|had|got|own|owns)\s+no\b", re.I)
# The user says a value they gave before was wrong; "the <thing> is ..." then restates one of their facts.
_CORRECTING = re.compile(
    r"\b(?:correction|i (?:got|had) (?:it|that|this) wrong|i was wrong|my mistake|my bad|i misspoke|"
    r"i mixed (?:it|that|this|them) up|i got (?:muddled|confused|mixed up)|i told you wrong|i wrote wrong|"
    r"scratch that|i meant|sorry,? i (?:meant|said))\b", re.I)
_CORRECTION_TAIL = re.compile(r",?\s+(?:not|rather than|instead of)\s", re.I)
_NEGATION_KEPT = re.compile(
    r"\b(?:don't|dont|do not|doesn't|doesnt|does not|can't|cant|cannot|never)\s+(?:really\s+)?"
    r"(?:like|enjoy|stand|bear|eat|drink|smoke)\b", re.I)


_AUXILIARY_END = re.compile(
    r"(?:'m|'s|'re|\bam|\bis|\bare|\bwas|\bwere|\bdo|\bdoes|\bdid|\bhave|\bhas|\bhad|\bcan|\bcould|\bwill|"
    r"\bwould|\bshould|\bi|\bwe|\breally|\bjust|\bcertainly|\bdefinitely|\babsolutely)$", re.I)


def _without_correction(core: str) -> str:
    """The core without a correction's tail: "KV 48 217 not 211" -> "KV 48 217"; "I'm not from ..." keeps its not."""
    for m in _CORRECTION_TAIL.finditer(core):
        if not _AUXILIARY_END.search(core[:m.start()]):
            return core[:m.start()]
    return core


def _negated(core: str) -> bool:
    core = _without_correction(core)
    return bool(_NEGATION.search(core)) and not _NEGATION_KEPT.search(core)


# Where a clause's tail begins: a comma, or a conjunction that adds a remark of its own.
_TAIL_BREAK = re.compile(r"\s*,\s*|\s+(?=(?:and|but|so|though|although|because|even though|since|plus)\b)", re.I)


def _affirmed_head(core: str) -> str:
    """A negated clause whose negation comes only in a tail after its statement ("My mother lives in Chennai and
    won't hear of moving", "I'm allergic to shellfish, so never suggest shrimp", "my favourite bake is rye
    sourdough, though my pretzels aren't bad"): the statement before that tail; "" when the statement itself is
    negated ("I don't have a car", "I'm not married any more")."""
    kept = _without_correction(core)
    m = _NEGATION.search(kept)
    if not m or _NEGATION_KEPT.search(kept):
        return core
    breaks = list(_TAIL_BREAK.finditer(kept, 0, m.start()))
    head = kept[:breaks[-1].start()] if breaks else ""
    return head if len(head.split()) >= 3 and not _NEGATION.search(head) else ""


# A one-off episode rather than a standing fact: "My train was late again this morning", "My back is killing me".
_EPISODE_TIME = re.compile(
    r"\b(?:today|tonight|this (?:morning|afternoon|evening)|last night|yesterday|right now|at the moment|"
    r"again|just now)\b", re.I)
_PAST_EPISODE = re.compile(
    r"(?:i|we|(?:my|our) [\w'-]+(?: [\w'-]+)?)\s+(?:(?:just|really|finally|totally|completely)\s+)*"
    r"(?:was|were|had|went|got|made|lost|slept|ate|drank|saw|took|came|left|felt|fell|broke|ran|won|spent|bought|"
    r"met|did|said|told|thought|forgot|woke|caught|found|died|\w+ed|(?:is|are|'s|'re|was|were)\s+\w+ing)\b", re.I)


def _episode(core: str) -> bool:
    """Chit-chat about what just happened: no fact for the fallback to keep ("I used to live in ..." is one)."""
    return bool(_EPISODE_TIME.search(core) or (_PAST_EPISODE.match(core) and not re.search(r"\bused to\b", core)))


def _is_statement(said: str, core: str, remembered: bool = False) -> bool:
    """First-person (or, when asked to remember, any) statement that is no question, request, hypothetical,
    negation or chit-chat."""
    if not remembered and re.search(r"\?[\s\"'”)\]]*$", said):
        return False
    if _QUESTION_START.match(core) or _REQUEST_START.match(core):
        return False
    if _HYPOTHETICAL_START.match(core) or _HYPOTHETICAL.search(core) or _CHITCHAT.match(core) or _negated(core):
        return False
    return remembered or bool(_FIRST_PERSON.search(core))


# --- values and keys ------------------------------------------------------------------------------------------

# Where a value ends: an aside, a subordinate clause or a new subject ("Rex, who is three", "sushi because ...").
_VALUE_TAIL = re.compile(
    r"\s*[;(].*$|\s+[-–—]+\s.*$"
    r"|,?\s+(?:not|rather than|instead of)\s.*$"  # a correction: "Bobby, not Rex"
    r"|,?\s+(?:because|since|although|though|but|which|who|whom|whose|where|while|whereas|unless|when|whenever|"
    r"wherever)\b.*$"
    r"|,?\s+(?:and|so|plus|or)\s+(?:he|she|it|they|we|you|i|his|her|its|their|our|that|this|there)\b.*$"
    r"|,\s*(?:he|she|it|they|we|you|i|his|her|its|their|our|that's|it's|this|by the way|btw|haha|lol|actually|"
    r"though|you know|thanks|thank you|is|was|every|each|most|since|until|no contest|hands down|all|both|"
    r"the others?|my|mine|even)\b.*$"
    # "3 kids, deniz is 3, ...": the count, not who is what
    r"|,\s*(?!(?:now|then|today|currently|still)\b)[\w'-]+ (?:is|are|was|were)\b.*$", re.I)
# Trailing time and degree words belong in the answer but not in the key: "tennis every Sunday" -> "tennis".
_KEY_TAIL = re.compile(
    r"\s+(?:now|too|also|only|as well|these days|nowadays|at the moment|right now|currently|actually|anyway|though|"
    r"lately|recently|anymore|a lot|so much|very much|quite a bit|sometimes|often|usually|always|fluently|well|"
    r"by the way|btw|every \w+|each \w+|on \w+days|on (?:the )?weekends?|at (?:the )?weekends?|"
    r"in my (?:free|spare) time|for (?:\w+ )?(?:years|months|weeks|days)|since \w+|last \w+|this \w+|next \w+|"
    r"(?:\w+ )?(?:years|months|weeks|days) ago|ago|yesterday|today|once|twice|(?:\w+ )?times)$", re.I)
_KEY_HEAD = re.compile(
    r"^(?:(?:a|an|the|my|some|being|to|on|now|currently|still|officially|probably|definitely|easily)\s+)+", re.I)
_CAPITALISED_RUN = re.compile(
    r"[A-Z][\w'’.-]*(?:\s+(?:(?:de|da|do|dos|das|del|la|le|of|upon|am|van|von|der|&)\s+)?(?:[A-Z][\w'’.-]*|\d+\b))*")
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
    m = _CAPITALISED_RUN.search(_truecase(value))
    return value[m.start():m.end()].rstrip(".") if m else _key(value)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
