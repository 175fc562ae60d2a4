import json
import re
from pathlib import Path

import pytest

from chatbot.learning.augment import MAX_QUESTIONS, Fact, extract_facts, names_in, qa_pairs, to_second_person
from chatbot.learning.augment.text import _repair

# (user message, [(answer, key), ...] in message order)
FACTS = [
    ("Oh, my dog’s name is Rex!", [("Your dog is called Rex.", "Rex")]),
    ("By the way, my cat is called Luna and my dog is named Bobby.",
     [("Your cat is called Luna.", "Luna"), ("Your dog is called Bobby.", "Bobby")]),
    ("Hi! I'm Anna. I live in Lisbon with my wife.",
     [("Your name is Anna.", "Anna"), ("You live in Lisbon with your wife.", "Lisbon"),
      ("You live in Lisbon with your wife.", "wife")]),
    ("Actually, I’m from Porto but I live in Berlin now.",
     [("You’re from Porto.", "Porto"), ("You live in Berlin now.", "Berlin")]),
    ("I was born in 1990. I grew up in a small town in Norway.",
     [("You were born in 1990.", "1990"), ("You grew up in a small town in Norway.", "Norway")]),
    ("I was born in Porto, Portugal.", [("You were born in Porto, Portugal.", "Porto")]),
    ("Well, I work as a nurse at St. Mary's Hospital.", [("You work as a nurse at St. Mary's Hospital.", "nurse"),
                                                         ("You work as a nurse at St. Mary's Hospital.",
                                                          "St. Mary's Hospital")]),
    ("I’m a software engineer at Google, and I’ve got three kids.",
     [("You’re a software engineer at Google.", "software engineer"),
      ("You’re a software engineer at Google.", "Google"), ("You’ve got three kids.", "three kids")]),
    ("My job is teaching kids to swim.", [("Your job is teaching kids to swim.", "teaching kids to swim")]),
    ("I work for a small startup.", [("You work for a small startup.", "small startup")]),
    ("My favourite colour is blue, by the way.", [("Your favourite colour is blue.", "blue")]),
    ("Blue is my favorite color.", [("Blue is your favorite color.", "Blue")]),
    ("I really love hiking in the mountains. I hate coriander!",
     [("You really love hiking in the mountains.", "hiking"), ("You hate coriander.", "coriander")]),
    ("I have two cats and a dog.", [("You have two cats and a dog.", "two cats and a dog")]),
    ("I've got a red bike.", [("You've got a red bike.", "red bike")]),
    ("I have pets.", [("You have pets.", "pets")]),  # "What pets do I have?" would give it away
    ("I like sushi.", [("You like sushi.", "sushi")]),
    ("I love my dog and my cat.", [("You love your dog and your cat.", "dog and your cat")]),  # key follows the answer
    ("I speak Portuguese and English fluently.",
     [("You speak Portuguese and English fluently.", "Portuguese and English")]),
    ("I play the piano every evening. I drive a Tesla.",
     [("You play the piano every evening.", "piano"), ("You play the piano every evening.", "every evening"),
      ("You drive a Tesla.", "Tesla")]),
    ("I'm studying medicine at the University of Porto.",
     [("You're studying medicine at the University of Porto.", "medicine"),
      ("You're studying medicine at the University of Porto.", "University of Porto")]),
    ("My birthday is on May 3rd.", [("Your birthday is on May 3rd.", "May 3rd")]),
    ("My kids are called Tom and Anna.", [("Your kids are called Tom and Anna.", "Tom and Anna")]),
    ("I'm 34 years old and I'm allergic to peanuts.",
     [("You're 34 years old.", "34"), ("You're allergic to peanuts.", "peanuts")]),
    ("No, my husband’s name is João, not Joao.", [("Your husband is called João.", "João")]),
    ("Please remember that my wife's cat is named O’Malley.",
     [("Your wife's cat is called O’Malley.", "O’Malley")]),
    ("Just so you know, I'm married to Sam.", [("You're married to Sam.", "Sam")]),
    ("I used to live in London, but now I live in Paris.",
     [("You used to live in London.", "London"), ("You live in Paris.", "Paris")]),
    ("My name is Anna Silva.", [("Your name is Anna Silva.", "Anna Silva")]),
    # no rule knows these: the fallback keeps the sentence and asks about the topic
    ("My sister lives in Berlin.", [("Your sister lives in Berlin.", "Berlin")]),
    ("I don't eat meat.", [("You don't eat meat.", "meat")]),
]

NOT_FACTS = [
    "What is my dog's name?",
    "what is my dog's name",
    "Do you remember where I live?",
    "Can you tell me my favourite colour",
    "Please tell me a joke about my job.",
    "Remind me to call my mom.",
    "Let's talk about my dog.",
    "Hi!",
    "Hello there, how are you?",
    "Thanks, that was helpful.",
    "I'm fine, thanks!",
    "If I had a dog, I'd call it Rex.",
    "If my dog was called Rex, that would be funny.",
    "I wish I lived in Paris.",
    "I would love a cat named Tom.",
    "I think my dog is cute.",
    "I want to learn Spanish.",
    "I have to go now.",
    "The weather in Lisbon is nice.",
    "I like it.",
]


def _facts(message: str) -> list[Fact]:
    return extract_facts(message)


@pytest.mark.parametrize("message, expected", FACTS, ids=[m for m, _ in FACTS])
def test_extracts_answers_and_keys(message, expected):
    assert [(f.answer, f.key) for f in _facts(message)] == expected


@pytest.mark.parametrize("message", [m for m, _ in FACTS])
def test_questions_are_varied_and_never_give_the_answer_away(message):
    for fact in _facts(message):
        assert 3 <= len(fact.questions) <= MAX_QUESTIONS, fact
        assert len({q.lower() for q in fact.questions}) == len(fact.questions), fact
        for q in fact.questions:
            assert q.endswith(("?", ".")), q
            assert not re.search(rf"(?<!\w){re.escape(fact.key)}(?!\w)", q, re.I), (q, fact.key)
        assert fact.key.lower() in fact.answer.lower()
        assert fact.statement.strip() in message  # the statement is the user's words, as said


@pytest.mark.parametrize("message", NOT_FACTS)
def test_questions_requests_greetings_and_hypotheticals_are_not_facts(message):
    assert _facts(message) == []


@pytest.mark.parametrize("message, question", [
    ("Oh, my dog’s name is Rex!", "What is my dog's name?"),
    ("Oh, my dog’s name is Rex!", "What's the name of my dog?"),
    ("My kids are called Tom and Anna.", "What are the names of my kids?"),
    ("I have a cat named Luna.", "What is my cat called?"),
    ("I live in Lisbon.", "Where do I live?"),
    ("I was born in 1990.", "When was I born?"),
    ("I was born in Porto.", "Where was I born?"),
    ("I’m from Porto.", "Where am I from?"),
    ("I am a teacher.", "What do I do for a living?"),
    ("I work at Google.", "Where do I work?"),
    ("I have two cats.", "How many cats do I have?"),
    ("I have a dog.", "What do I have?"),
    ("I speak Portuguese.", "What language do I speak?"),
    ("I speak Portuguese and English.", "What languages do I speak?"),
    ("I drive a Tesla.", "What car do I drive?"),
    ("I love sushi.", "What do I like?"),
    ("My favourite colour is blue.", "What is my favourite colour?"),
    ("My favourite colour is blue.", "What is my favorite colour?"),  # the other spelling, asked either way
    ("My birthday is on May 3rd.", "When is my birthday?"),
    ("I'm 34.", "How old am I?"),
    ("My blood type is O negative.", "What is my blood type?"),
    ("My sister lives in Berlin.", "What did I tell you about my sister?"),
    ("I don't eat meat.", "What do you know about me?"),
])
def test_asks_the_way_the_user_will_ask(message, question):
    assert question in [q for f in _facts(message) for q in f.questions]


def test_statement_keeps_the_users_words_and_values_keep_their_spelling():
    [fact] = _facts("Well, my wife’s cat is named O’Malley.")
    assert fact.statement == "Well, my wife’s cat is named O’Malley."
    assert fact.key == "O’Malley"


def test_a_greeting_makes_im_capitalised_a_name_but_not_a_nationality():
    assert [f.answer for f in _facts("Hey there! I'm Maria Silva.")] == ["Your name is Maria Silva."]
    assert [f.answer for f in _facts("Hi, I'm Canadian.")] == ["You're Canadian."]
    assert [f.answer for f in _facts("I'm Maria.")] != ["Your name is Maria."]  # no greeting: too ambiguous


def test_a_sentence_without_a_verb_after_and_is_not_split():
    # "My wife and I" is one subject, not two clauses
    [fact] = _facts("My wife and I live in Lisbon.")
    assert fact.answer == "Your wife and you live in Lisbon."


def test_emoji_and_extra_spaces_do_not_hide_a_fact():
    assert [f.answer for f in _facts("😀 I live in   Lisbon 🇵🇹")] == ["You live in Lisbon."]
    assert [f.key for f in _facts("Oh 🙂 my dog is called Rex! 🐶")] == ["Rex"]


@pytest.mark.parametrize("message", ["I was born in", "I have a dog called", "My dog is called"])
def test_a_statement_cut_off_before_its_value_is_not_a_fact(message):
    assert _facts(message) == []


def test_the_same_fact_twice_in_a_message_is_kept_once():
    assert len(_facts("My dog is called Rex. My dog is called Rex!")) == 1


MESSAGE = "My dog is called Rex. I live in Lisbon. I have two cats. My favourite colour is blue."


def test_qa_pairs_is_deterministic_for_a_seed():
    assert qa_pairs(MESSAGE, seed=3) == qa_pairs(MESSAGE, seed=3)
    assert len({tuple(qa_pairs(MESSAGE, per_fact=2, seed=s)) for s in range(10)}) > 1  # the seed matters


@pytest.mark.parametrize("per_fact", [1, 2, 4])
def test_qa_pairs_respects_per_fact(per_fact):
    facts = _facts(MESSAGE)
    pairs = qa_pairs(MESSAGE, per_fact=per_fact, seed=0)
    assert len(pairs) == per_fact * len(facts)
    for fact in facts:
        chosen = [q for q, a in pairs if a == fact.answer]
        assert len(chosen) == per_fact
        assert set(chosen) <= set(fact.questions)


def test_qa_pairs_takes_every_question_when_per_fact_is_large():
    pairs = qa_pairs(MESSAGE, per_fact=100)
    assert len(pairs) == sum(len(f.questions) for f in _facts(MESSAGE))


def test_qa_pairs_rejects_a_non_positive_per_fact():
    with pytest.raises(ValueError, match="per_fact"):
        qa_pairs(MESSAGE, per_fact=0)


def test_qa_pairs_of_a_message_without_facts_is_empty():
    assert qa_pairs("What is my dog's name?") == []


@pytest.mark.parametrize("sentence, expected", [
    ("I live in Lisbon with my wife.", "You live in Lisbon with your wife."),
    ("I'm tired.", "You're tired."),
    ("I’m tired.", "You’re tired."),
    ("I am happy and I was there.", "You are happy and you were there."),
    ("I've got mine.", "You've got yours."),
    ("I wash myself.", "You wash yourself."),
    ("My dog likes me.", "Your dog likes you."),
    ("Oh, I live here. I like it.", "Oh, you live here. You like it."),
    ("i live in lisbon", "You live in lisbon"),
    ("MY DOG", "YOUR DOG"),
    ("I told you my name.", "You told me your name."),
    ("You are my best friend.", "I am your best friend."),
    ("The iPhone is mine.", "The iPhone is yours."),
    ("Rex is a dog.", "Rex is a dog."),
])
def test_to_second_person(sentence, expected):
    assert to_second_person(sentence) == expected


# --- the forms of facts-v2: we/our, names in apposition, "remember ...", hedged preferences, third parties,
# several facts in one message, facts inside chit-chat, corrections. (message, [(key, a question asked), ...])
NEW_FORMS = [
    # we / our: answered in the second person, asked in the user's "we" voice
    ("We bought a caravan and called it Dolly.", [("Dolly", "What did we call our caravan?")]),
    ("We named our son Tobiah.", [("Tobiah", "What is our son called?")]),
    ("We call our allotment shed the Bunker.", [("Bunker", "What do we call our allotment shed?")]),
    ("We live on a houseboat called Moorhen.", [("Moorhen", "What's the name of our houseboat?")]),
    ("My husband and I moved to Tartu in May.", [("Tartu", "Where did we move to?")]),
    ("We got married in Sintra.", [("Sintra", "Where did we get married?")]),
    ("Our landlady is Mrs Kowalczyk.", [("Kowalczyk", "Who is our landlady?")]),
    ("Our youngest goes to Brookfield Primary.", [("Brookfield Primary", "Which school does our youngest go to?")]),
    # a name given in apposition
    ("Our accountant, Priya, sent the forms.", [("Priya", "Who is our accountant?")]),
    ("I had coffee with my neighbour, a retired pilot called Sven.", [("Sven", "What's the name of my neighbour?")]),
    ("Marguerite, my piano teacher, retired last year.", [("Marguerite", "Who is my piano teacher?")]),
    ("I bumped into an old colleague of mine, Rashid Okafor, at the station.",
     [("Rashid Okafor", "What is my old colleague called?")]),
    # "remember ...", also without "I" or "my"
    ("remember this for me: my locker is 42B", [("42B", "What is my locker?")]),
    ("Please remember that my gym membership number is GM-7781.", [("GM-7781", "What is my gym membership number?")]),
    ("Can you remember for me that my passport expires in 2031?", [("2031", "When does my passport expire?")]),
    ("Note to self: the spare key is under the green gnome.", [("green gnome", "Where is the spare key?")]),
    # hedged preferences
    ("if I had to choose one dessert, it'd be tiramisu", [("tiramisu", "What's my favourite dessert?")]),
    ("I'd probably say my favourite band is The Marrow Kings.", [("Marrow Kings", "What is my favourite band?")]),
    ("I'd go with pistachio if I had to choose one flavour.", [("pistachio", "Which flavour do I like best?")]),
    ("Gun to my head, my favourite film is Paterson.", [("Paterson", "What is my favourite film?")]),
    # third parties, and their names
    ("My sister Ines just moved to Lyon.",
     [("Ines", "What is my sister's name?"), ("Lyon", "Where did my sister move to?")]),
    ("My uncle works at the Harwich lighthouse.", [("Harwich", "Where does my uncle work?")]),
    ("My daughter is allergic to kiwi.", [("kiwi", "What is my daughter allergic to?")]),
    ("My grandad was a miner in Ashington.", [("miner", "What did my grandad do for a living?")]),
    ("My mum is from Cork and my dad grew up in Derry.",
     [("Cork", "Where is my mum from?"), ("Derry", "Where did my dad grow up?")]),
    ("I've a cousin in Perth, Declan.",
     [("Declan", "What is my cousin called?"), ("Perth", "Where does my cousin live?")]),
    # several facts in one message, a subject shared by two verbs
    ("I'm a nurse, my husband Tom is from Cork and we live in Galway.",
     [("nurse", "What do I do for a living?"), ("Tom", "Who is my husband?"), ("Cork", "Where is my husband from?"),
      ("Galway", "Where do we live?")]),
    ("I was born in Gdynia and raised in Leeds.", [("Gdynia", "Where was I born?"), ("Leeds", "Where was I raised?")]),
    ("New job: I volunteer at the Westgate food bank on Fridays.", [("Westgate", "Where do I volunteer?")]),
    # facts inside chit-chat
    ("Ugh, long day 😩 my flatmate Jorge made paella though", [("Jorge", "Who is my flatmate?")]),
    ("I'm Ravi btw, nice to meet you", [("Ravi", "What is my name?")]),
    # corrections: the new value is the key, never the old one
    ("Sorry, the nursery is Little Oaks, not Little Acorns.", [("Little Oaks", "What is the nursery called?")]),
    ("my locker is 17C, not 42B", [("17C", "What is my locker?")]),
    ("I was wrong about my PIN hint — it's Bramble.", [("Bramble", "What is my PIN hint?")]),
    # any verb lemminflect knows, not only the closed list's (written before facts-v2-devb was read)
    ("I inherited my grandfather's piano from my uncle in Bergen.",
     [("Bergen", "Where did I inherit my grandfather's piano?")]),
    ("We've been fostering kittens for the Ashby shelter.",
     [("Ashby", "What have we been fostering kittens for?")]),
    ("My landlord repainted the hallway in April.", [("April", "When did my landlord repaint the hallway?")]),
    # every phrase of a statement is a fact of its own, also beside the rule that matched it
    ("I moved to Edinburgh from Tampere in 2019.",
     [("Edinburgh", "Where did I move to?"), ("Tampere", "Where did I move from?"), ("2019", "When did I move?")]),
    ("I taught French at a girls' school in Harrogate for thirty-two years.",
     [("Harrogate", "Where did I teach French?"), ("thirty-two years", "How long did I teach French?")]),
    ("I retired from Panasonic in 2015 after thirty-eight years on the line.",
     [("Panasonic", "Where did I retire from?"), ("2015", "When did I retire?")]),
    ("I work as a mechanical engineer at Bosch in Feuerbach.",
     [("mechanical engineer", "What do I do for a living?"), ("Bosch", "Where do I work as a mechanical engineer?")]),
    # where someone is what they are
    ("I'm an architect at a small firm in Gastown.",
     [("architect", "What do I do for a living?"), ("Gastown", "Where am I an architect?")]),
    ("I'm at Malmö Borgarskola.", [("Malmö Borgarskola", "Where am I?")]),
    # a habit said before the subject, and counts that stand
    ("Every Sunday I run with the Cubbon Park Runners.", [("Cubbon Park Runners", "What do I run with?")]),
    ("My dad keeps 40 hives near Ronda.",
     [("Ronda", "Where does my dad keep 40 hives?"), ("40", "How many hives does my dad keep?")]),
    # chat as typed: names in lowercase, no apostrophes, no "my", no subject, the kind said before a hedge
    ("my husband tomasz is driving the bus for first bus company", [("tomasz", "What is my husband called?")]),
    ("we got a cavoodle named biscuit last xmas", [("biscuit", "What did we name our cavoodle?")]),
    ("im a caregiver here in mississauga", [("caregiver", "What do I do for a living?"),
                                            ("mississauga", "Where am I a caregiver?")]),
    ("wife's name is carol. works at the co-op grocery", [("carol", "What is my wife called?")]),
    ("me mam runs a b&b in dingle", [("dingle", "Where does my mam run a b&b?")]),
    ("moved to leeds in 2019 for work", [("leeds", "Where did I move to?"), ("2019", "When did I move?")]),
    ("fav cricketer is tough bro.. if i had to pick one it'd be dhoni only",
     [("dhoni", "What's my favourite cricketer?")]),
    # (session 22, tuned on the read splits) a negation only in the tail leaves the statement before it a fact
    ("My mother still lives in Chennai and won't hear of moving to Canada.",
     [("Chennai", "Where does my mother live?")]),
    ("I'm allergic to shellfish, so please never suggest shrimp.", [("shellfish", "What am I allergic to?")]),
    # a list about the user without "I'm" or "my"
    ("ok quick stuff abt me: allergic to peanuts, birthday is feb 29, fav food is migas",
     [("peanuts", "What am I allergic to?"), ("feb 29", "When is my birthday?"), ("migas", "What is my fav food?")]),
    # names given without "I'm", or typed in lowercase after a greeting, and the age said with them
    ("yo im mads, 24, i work at a coffee place", [("mads", "What is my name?"), ("24", "How old am I?")]),
    ("Hiya, Fiona here. Staff nurse on a cardiology ward.", [("Fiona", "What is my name?")]),
    ("My name Piotr, I am from Poland.", [("Piotr", "What is my name?"), ("Poland", "Where am I from?")]),
    # hedges without "it'd be", with the kind said before or qualified
    ("fave game?? hmm if i had to choose prob mobile legends", [("mobile legends", "What's my favourite game?")]),
    ("It's hard to choose, but if I had to pick one breed I'd say the Huntaway.",
     [("Huntaway", "What's my favourite breed?")]),
    ("If I had to pick one port from all those years, it would be Valparaíso, without hesitation.",
     [("Valparaíso", "What's my favourite port?")]),
    # a name given in passing to something of theirs, a relation without "my", a pronoun repeating the subject
    ("At home I have two dogs, plus a very elderly leopard tortoise called Oupa.",
     [("Oupa", "What is my tortoise called?")]),
    ("grandson dustin works at the john deere plant in ankeny", [("dustin", "What is my grandson called?")]),
    ("my brother mwangi he drive matatu in thika", [("mwangi", "What is my brother called?"),
                                                    ("matatu", "What does my brother drive?")]),
    ("my brother, he is a doctor in Leeds", [("doctor", "What does my brother do for a living?")]),
    ("Originally I am from Chennai; I moved to Switzerland in 2020.", [("Chennai", "Where am I from?")]),
    # session 23: asked in the kind of question people ask — a date said as a holiday or "the Nth of Month" is a
    # when, "to" a place after a verb of travel a where, a count with more said after it a how many
    ("my birthday is on the twenty-third of October", [("twenty-third of October", "When is my birthday?")]),
    ("Our anniversary is on Valentine's Day.", [("Valentine's Day", "When is our anniversary?")]),
    ("My boss is retiring at Easter after thirty years.", [("Easter", "When is my boss retiring?")]),
    ("We bring the boat to Kinsale every June.", [("Kinsale", "Where do we bring the boat?")]),
    ("We switched our energy supplier to Voltane last spring.",
     [("Voltane", "What did we switch our energy supplier to?")]),
    ("we have 3 cats, all of them rescues", [("3 cats", "How many cats do we have?")]),
    ("i have 2 sons, tomasz is 9 and the other one 14", [("2 sons", "How many sons do I have?")]),
    ("We keep six goats, both of the old ones are deaf.", [("six", "How many goats do we keep?")]),
    # an introduction's list after the name and age: the job and where, or where from
    ("hiya im tendai, 31, welder at Mbare Steel in harare", [("tendai", "What is my name?"),
                                                            ("welder", "What do I do for a living?"),
                                                            ("Mbare Steel", "Where do I work?")]),
    ("hey im kofi, 22, from kumasi", [("kumasi", "Where am I from?")]),
    ("Good morning. I'm Siobhán Ní Bhriain, fifty-eight, and I keep bees near Dingle.",
     [("Siobhán Ní Bhriain", "What is my name?"), ("fifty-eight", "How old am I?")]),
    # a hedge before "it would be" or before a favourite; a name's thing after "remember"
    ("If I had to pick one poet, I suppose it would be Heaney, though my wife says Yeats.",
     [("Heaney", "What's my favourite poet?")]),
    ("I guess my favourite season is autumn, even with the rain.", [("autumn", "What is my favourite season?")]),
    ("If pressed, I'd say my favourite gin is probably Dingle.", [("Dingle", "What is my favourite gin?")]),
    ("Please remember that Tariq's dentist appointment is on March 3.",
     [("March 3", "When is Tariq's dentist appointment?")]),
    # a fact after a concession, somewhere visited, an allergy since childhood, a thing named a sentence later,
    # "she" for the person the sentence before was about
    ("I have never been to Chile, even though my uncle Tomás has lived in Santiago for years.",
     [("Santiago", "Where does my uncle live?")]),
    ("I have been to Lapland three times.", [("Lapland", "Where have I been?")]),
    ("been allergic to peanuts since i was small", [("peanuts", "What am I allergic to?")]),
    ("we adopted a greyhound last month!! named him Bolt 🐕", [("Bolt", "What is our greyhound called?")]),
    ("My sister lives in Tromsø. She's a midwife at the university hospital.",
     [("midwife", "What does my sister do for a living?")]),
    # session 24: what someone does habitually beside where; an age said with "turned" or before "lol"; a
    # favourite the user asks themselves and answers bare; "X would be my favourite" after a hedge; an
    # introduction split by an emoji, or said as "<name> here" or "soy <name>"; "who is eight" after a name
    ("I coach hockey at a club in Leuven.", [("hockey", "What do I coach?"), ("Leuven", "Where do I coach hockey?")]),
    ("My grandad turned 90 in June.", [("90", "How old is my grandad?")]),
    ("I turned forty last week.", [("forty", "How old am I?")]),
    ("im 33 lol, dont tell anyone", [("33", "How old am I?")]),
    ("fave biscuit?? hmm prob hobnobs tbh", [("hobnobs", "What's my favourite biscuit?")]),
    ("Favourite opera? Tosca, no contest.", [("Tosca", "What's my favourite opera?")]),
    ("If I had to name one river, I think the Shannon would be my favourite.",
     [("Shannon", "What's my favourite river?")]),
    ("hey im oskar 🙂 26, barista in gdansk", [("26", "How old am I?"), ("barista", "What is my job?")]),
    ("czesc! kasia here, 35, nurse from lodz", [("kasia", "What is my name?"), ("35", "How old am I?"),
                                               ("lodz", "Where am I from?"), ("nurse", "What is my job?")]),
    ("hola soy lucia, 22, chef in sevilla", [("lucia", "What is my name?"), ("22", "How old am I?")]),
    ("I live with my nephew Tobi, who is nine, and his mum.", [("nine", "How old is my nephew?")]),
    ("Sorry, I'm not 44 but 45.", [("45", "How old am I?")]),  # "not X but Y": Y holds
    ("wait im 27 not 26, forgot my bday lol", [("27", "How old am I?")]),
    # a name's thing typed in lowercase after "remember"; a calendar date is a when
    ("pls remember: tomek's bday is 3 june", [("3 june", "When is tomek's bday?")]),
    ("Remember this: the boiler service is the 12th of May.", [("12th of May", "When is the boiler service?")]),
    ("fav city... hmm prob lisbon? ya lisbon", [("lisbon", "What's my favourite city?")]),
    ("if i had to pick a pasta shape... prob rigatoni?", [("rigatoni", "What's my favourite pasta shape?")]),
]


@pytest.mark.parametrize("message, expected", NEW_FORMS, ids=[m for m, _ in NEW_FORMS])
def test_new_forms_are_found_and_asked_specifically(message, expected):
    facts = _facts(message)
    for key, question in expected:
        found = [f for f in facts if f.key == key]
        assert found, (key, [(f.key, f.answer) for f in facts])
        assert any(question in f.questions for f in found), (question, [f.questions for f in found])


@pytest.mark.parametrize("message", [m for m, _ in NEW_FORMS])
def test_new_forms_keep_the_invariants(message):
    for fact in _facts(message):
        assert 3 <= len(fact.questions) <= MAX_QUESTIONS, fact
        assert fact.key.lower() in fact.answer.lower()
        assert fact.statement.strip() in _repair(message)  # "im" is quoted as "I'm"
        for q in fact.questions:
            assert q.endswith(("?", ".")) and "{" not in q, q
            assert not re.search(rf"(?<!\w){re.escape(fact.key)}(?!\w)", q, re.I), (q, fact.key)


def test_we_statements_are_answered_in_the_second_person_and_asked_in_the_we_voice():
    [fact] = _facts("We bought a caravan and called it Dolly.")
    assert fact.answer == "You bought a caravan and called it Dolly."
    assert all(" I " not in f" {q} " and " my " not in q for q in fact.questions)


def test_a_name_in_apposition_and_what_its_person_did_are_two_facts():
    facts = _facts("My sister Ines just moved to Lyon.")
    assert [(f.answer, f.key) for f in facts] == [("Your sister is called Ines.", "Ines"),
                                                 ("Your sister Ines just moved to Lyon.", "Lyon")]
    assert "What did I tell you about my sister?" in facts[1].questions  # the topic, as the fallback asked it


NEW_NOT_FACTS = [
    "Is Lisbon nice in winter?",  # questions
    "Can you recommend a book for my nephew Tomás?",
    "Do you think my son Elias should learn the cello?",
    "how long can a husky stay outside in winter",
    "I don't have a car.",  # negations
    "We don't live in Leeds anymore.",
    "I've never owned a Mac.",
    "i dont have facebook",
    "I'm not on Instagram at all.",
    "I have no siblings.",
    "If I had a dog I'd call it Rex.",  # hypotheticals that are no forced choice
    "If we lived in Rome we'd eat out every night.",
    "Honestly I think if I had to pick one it'd be Naples.",  # a favourite what?
    "My train was late again this morning.",  # chit-chat, opinions, episodes
    "We had such a lovely weekend.",
    "My kids are driving me mad.",
    "I love that idea!",
    "Students are more engaged than we were.",
    "Frankly, I find opera overrated.",
    "The restaurant is called La Bodega.",  # "the ..." without "remember" or a correction is about the world
    "I think I left my keys at Jo's.",  # verbs the open rule leaves alone, and what it reads as no fact
    "I just bike everywhere.",
    "Every time I visit, it rains.",
    "I ate two pizzas.",
    "tell me a joke about my mum",  # a request without a subject is no statement
    "went to the shops today",  # nor is an episode without one
    "hi im tired",  # a greeting makes no word a dictionary knows a name
    "Weather is nice today.",  # a list item without "my" only for what is about a person
    "I'm not married any more, no.",  # the negation is the statement itself, not a tail
    "fave pizza? idk tbh",  # a favourite asked, and no answer given
    "favourite band? ugh too many to choose",
    "whats the best way to descale a kettle? mine is crusty",  # "the best way" asks for advice, no favourite
]


@pytest.mark.parametrize("message", NEW_NOT_FACTS)
def test_questions_negations_hypotheticals_and_chitchat_are_not_facts(message):
    assert _facts(message) == []


@pytest.mark.parametrize("message, not_key", [
    ("I don't have a car, I cycle everywhere.", "car"),
    ("Sorry, the nursery is Little Oaks, not Little Acorns.", "Little Acorns"),
    ("my plate is KV 48 217 not 211", "211"),
    ("Correction: my locker is not 14 but 41.", "14"),
    ("Scratch that, we ended up buying in Riverdale instead of Leslieville.", "Leslieville"),
])
def test_a_negated_or_corrected_value_never_becomes_a_key(message, not_key):
    assert all(not_key.lower() not in f.key.lower() for f in _facts(message))


@pytest.mark.parametrize("message, not_key", [
    ("My favourite Alpine pass to drive is the Furka.", "Alpine"),  # "my favourite Alpine" gives no name
    ("news: we bought a new oven bongard, julien's mother moved with us", "you"),  # a pronoun is no value
])
def test_words_that_are_no_value_never_become_a_key(message, not_key):
    facts = _facts(message)
    assert facts and all(f.key.lower() != not_key.lower() for f in facts), [(f.key, f.answer) for f in facts]


@pytest.mark.parametrize("message, question", [
    ("my shoe size is ten", "How old is my shoe size?"),
    ("My student number is 1008847213.", "How old is my student number?"),
    ("My birthday is on St Piran's Day.", "Where is my birthday?"),
    ("We switched our broadband to Fibrelink.", "Where did we switch our broadband?"),
    ("yo im mads, 24, just got back from the gym", "Where am I mads, 24, just got from?"),
    ("Hi, I'm Bea, an architect from Porto.", "Where am I Bea, an architect from?"),
    ("we train every tuesday at the leisure centre", "What do we train?"),  # when, not what
    ("I work nights at the depot.", "What do I work?"),
    ("my locker is 41", "How old is my locker?"),  # a number of a thing is no age
    ("my locker is 41", "When is my locker?"),  # nor a date
    ("My anniversary is March 5.", "What is my anniversary called?"),  # a date is no name
])
def test_never_asks_the_wrong_kind_of_question(message, question):
    facts = _facts(message)
    assert facts and question not in [q for f in facts for q in f.questions], [f.questions for f in facts]


def test_every_message_of_the_dev_set_keeps_the_invariants():
    path = Path(__file__).resolve().parents[2] / "data" / "experiments" / "facts-v2-dev.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)["message"]
        for fact in _facts(message):
            assert 3 <= len(fact.questions) <= MAX_QUESTIONS, fact
            assert fact.key.lower() in fact.answer.lower(), fact
            assert fact.statement.strip() in _repair(message), fact  # "if u wanna know" is quoted as "you"
            assert not any(re.search(rf"(?<!\w){re.escape(fact.key)}(?!\w)", q, re.I) for q in fact.questions), fact


def test_chat_repairs_keep_a_well_cased_message_as_it_is():
    assert _repair("im 34, ive got a dog and dont drink") == "I'm 34, I've got a dog and don't drink"
    assert _repair("me mam runs a b&b") == "my mam runs a b&b"
    # lowercase words of a well-cased message are no names; a lowercase message's unknown words are
    assert [f.key for f in extract_facts("My favourite dessert is tiramisu.")] == ["tiramisu"]
    assert [f.key for f in extract_facts("my dog is called bruno")] == ["bruno"]


@pytest.mark.parametrize("sentence, expected", [
    ("We live in Lisbon with our kids.", "You live in Lisbon with your kids."),
    ("Our cat likes us.", "Your cat likes you."),
    ("We were there and we're staying.", "You were there and you're staying."),
    ("We've got ours.", "You've got yours."),
    ("My wife and I moved to the US.", "Your wife and you moved to the US."),
])
def test_to_second_person_in_the_we_voice(sentence, expected):
    assert to_second_person(sentence) == expected


# Questions people ask in other words than the statement's: each is one the consolidation trains on (the first
# forms of a fact, one kept back for the acquisition probe: learning.mix.split_questions).
@pytest.mark.parametrize("message, key, question", [
    ("Hello. I am Kwame, a paediatrician in Kumasi.", "Kumasi", "Where do I work?"),
    ("Hello. I am Kwame, a paediatrician in Kumasi.", "Kumasi", "In which city am I a paediatrician?"),
    ("My elder son Callum is a paramedic in Adelaide.", "Adelaide", "In which city is my elder son a paramedic?"),
    ("My elder son Callum is a paramedic in Adelaide.", "Adelaide", "Where is Callum a paramedic?"),
    ("My fiancee, Neema, is a nurse in Arusha.", "nurse", "What does Neema do for a living?"),
    ("My brother Arne runs a bakery in Tromsø.", "bakery", "What does Arne run?"),
    ("my boyfriend Bartek is 31", "31", "How old is Bartek?"),
    ("I was a ferry captain in Tromsø.", "Tromsø", "Where was I based?"),
    ("I teach chemistry at a gymnasium in Varaždin.", "Varaždin", "In which city do I teach chemistry?"),
    ("I farm sheep near Tarras.", "Tarras", "Where do I work?"),
    ("I work at a bakery in Porto.", "Porto", "In which city do I work?"),
    ("I work in Lisbon.", "Lisbon", "Where am I based?"),
    ("my noona is a nurse in Seoul", "nurse", "What does my older sister do for a living?"),
    ("my gogo turned 78 on saturday", "78", "How old is my grandmother?"),
    ("we named our kucing Mochi", "Mochi", "What did we name our cat?"),
    ("I have over 40 roses in my garden.", "40", "How many roses do I have?"),
    ("We have two shops in Lagos.", "two", "How many shops do we have?"),
    ("I have a Yamaha upright piano in the living room.", "Yamaha", "What kind of piano do I have?"),
    ("I inherited a Bösendorfer grand piano from my aunt.", "Bösendorfer", "What kind of piano did I inherit?"),
    # session 26: a count after a lead-in, and one before any modifier ("behind", ",", "aged")
    ("At the moment I'm milking 140 cows.", "140", "How many cows am I milking?"),
    ("I keep bees; I have six hives behind the house.", "six", "How many hives do I have?"),
    ("My husband and I have two daughters, aged eleven and seven.", "two", "How many daughters do we have?"),
    ("we have 3 children, two boys one girl", "3", "How many children do we have?"),
    ("I coach an under-12 hockey team called the Saskatoon Blizzard", "Saskatoon", "What kind of team do I coach?"),
    ("My best time is 27:40.", "27:40", "What is my best time?"),  # a time, not "my X: Y"
    # "she" after a pet, or after a family word in the user's language, is who the sentence before was about
    ("My cat is called Kinako. She is three years old.", "three", "How old is my cat?"),
    ("My obaachan lives alone in Kagoshima. She is 88 and still grows her own daikon.", "88",
     "How old is my obaachan?"),
    # a name with an age needs no greeting, nor a capital where the word can be a name ("jay")
    ("I'm Luana, 24, a nurse in Porto.", "Luana", "What is my name?"),
    ("I'm Luana, 24, a nurse in Porto.", "24", "How old am I?"),
    ("yo im jay, 19, first year mech eng at manchester uni", "jay", "What is my name?"),
    ("im actually 31, not 29 lol", "31", "How old am I?"),
    # session 27: when a habit recurs ("every Wednesday"), what someone goes and does, the age of someone named
    ("I swim at Warrender Baths every Friday morning.", "Friday", "What day do I swim?"),
    ("We play doubles tennis at the club every Saturday morning.", "Saturday", "When do we play doubles tennis?"),
    ("i call my mum every day", "every day", "How often do I call my mum?"),
    ("My son Jobin phones me every Friday.", "Friday", "When does my son phone me?"),
    ("I go bouldering every Wednesday after work, at a gym in Namba.", "bouldering", "What do I do every Wednesday?"),
    ("I go bouldering every Wednesday at a gym in Namba.", "Wednesday", "When do I go bouldering?"),
    ("We go camping in Wales every summer.", "every summer", "How often do we go camping?"),
    ("Survived the school run. Poppy is seven and has opinions about my parking.", "seven", "How old is Poppy?"),
    ("Jack is 25 and works as an electrician near Kalgoorlie.", "25", "How old is Jack?"),
    # session 28: "he" or "she" after a clause about someone, a count said roughly, what someone switched to
    ("My daughter doesn't play the violin any more — she switched to the cello.", "cello",
     "What did my daughter switch to?"),
    ("my brother doesn't live in Leeds anymore, he moved to York", "York", "Where did my brother move to?"),
    ("My neighbour Astrid is a retired midwife, and she feeds Brahms whenever I go away.", "Brahms",
     "What does Astrid feed?"),
    ("my brother Thiago moved to Lisbon last month, he's 30 and works as a tester there", "30",
     "How old is my brother?"),
    ("my brother Thiago moved to Lisbon last month, he's 30 and works as a tester there", "tester",
     "What does my brother do for a living?"),
    ("We sell around 400 baguettes each day.", "400", "How many baguettes do we sell?"),
    ("I keep about 200 Blackface ewes.", "200", "How many Blackface ewes do I keep?"),
    ("My daughter Zofia is nine. Zofia plays the violin.", "violin", "What does my daughter play?"),
])
def test_a_fact_is_trained_on_the_words_people_ask_it_in(message, key, question):
    facts = [f for f in _facts(message) if key.lower() in f.key.lower()]
    assert facts, [f.key for f in _facts(message)]
    trained = [q for f in facts for q in f.questions[:min(4, len(f.questions) - 1)]]
    assert question in trained, [f.questions for f in facts]


@pytest.mark.parametrize("message, question", [
    ("I work at Google in Dublin.", "In which city do I work?"),  # the key is the company
    ("We sing in the choir at St Mary's.", "Where do we work?"),  # singing is no living
    ("I ate pizza at Luigi's in Naples.", "Where was I based?"),  # an episode
    ("I have a lot of work.", "What kind of lot do I have?"),
    ("I ate the cake.", "What did I older sister?"),
    ("we have about eleven", "What kind of eleven do we have?"),  # a number is no kind
    ("we have eleven now, after the bear", "What kind of bear do we have?"),  # the bear came after
    ("my cousin keoni is in hilo this week", "Where is keoni Keoni?"),  # the question names them already
    ("we adopt a cat last weekend!!", "What kind of weekend do we adopt?"),  # a time word ends the noun phrase
    ("I sold the Honda last year.", "What kind of year did I sell?"),
    ("My shift ended late. She was angry.", "What was my shift?"),  # "she" is no shift
    ("im tired, 3 kids and no sleep", "What is my name?"),  # no adjective is a name
    ("im actually 31, not 29 lol", "What is my name?"),  # nor an adverb
    ("My mother lives in Valdivia and phones me every Sunday.", "When does my mother live?"),  # the next clause's
    ("Our book club meets on the last Friday of every month.", "How often does our book club meet?"),
    ("I buy two every Saturday, one for me and one for Mrs Hofer.", "When do I buy two, one?"),
    # session 28: how someone is, not who they are or what they are called
    ("Our dog is jealous.", "What is our dog called?"),
    ("My husband is very proud of the new car.", "Who is my husband?"),
    ("My dog is deaf.", "What is my dog called?"),
    ("My daughter stopped the violin, she switched to the cello.", "Where did my daughter switch to?"),
])
def test_the_words_people_ask_in_fit_the_fact(message, question):
    assert question not in [q for f in _facts(message) for q in f.questions]


def test_a_role_after_a_name_and_an_age_keeps_one_article():
    assert {f.answer for f in _facts("I'm Luana, 24, a nurse in Porto.") if f.key == "nurse"} == {
        "You're a nurse in Porto."}


@pytest.mark.parametrize("message, keys", [
    ("My brother Karl, who is 40, lives in Oslo.", ["Karl", "40", "Oslo"]),
    ("my sister, who lives in Lyon, is a nurse.", ["Lyon", "nurse"]),
    ("Our neighbour Priya, who's a vet, looks after the cat.", ["Priya", "vet"]),
    ("my dad, who was a pilot, retired in 2010", ["pilot", "2010"]),
])
def test_a_clause_between_commas_about_someone_is_read_as_well(message, keys):
    found = [f.key for f in _facts(message)]
    assert all(any(k.lower() in f.lower() for f in found) for k in keys), found
    assert all(f.statement == message for f in _facts(message) if "the cat" not in message)


@pytest.mark.parametrize("message", ["It is 141, not 114.", "Monday is 5.", "My Enkel Jonas plays. He is nine."])
def test_only_a_name_has_an_age_without_my(message):
    assert not any(f.questions[0].startswith(("How old is It", "How old is Monday", "How old is My "))
                   for f in _facts(message)), [f.questions for f in _facts(message)]


def test_an_opinion_between_commas_is_no_fact():
    assert [f.key for f in _facts("My boss, who is awful, wants a report.")] == []


def test_names_given_before_say_who_a_name_is():
    named = names_in(_facts("My daughter Zofia plays the violin and my sons are called Cathal and Darragh."))
    assert named == {"zofia": "my daughter", "cathal": "my son", "darragh": "my son"}
    later = extract_facts("Zofia switched to the cello.", named)
    assert [(f.key, f.questions[0]) for f in later if f.key == "cello"] == [
        ("cello", "What did my daughter switch to?")]
    assert not extract_facts("Zofia switched to the cello.")  # nobody said who Zofia is


@pytest.mark.parametrize("message", ["my wife ngozi is a teacher, she dey enjoy am", "Zofia dey enjoy am"])
def test_a_pronoun_or_name_is_read_as_someone_only_before_a_verb(message):
    keys = [f.key for f in extract_facts(message, {"zofia": "my daughter"})]
    assert not any("dey" in k or k == "am" for k in keys), keys
