"""Corrections the extractor cannot read on its own (chatbot.learning.corrections): the old fact with its value
swapped, found by the value the message replaces or, after a cue, by the number it restates; nothing else."""
from __future__ import annotations

import pytest

from chatbot.learning.corrections import MAX_CHARS, corrected, gone_values, replaced_values, stated_as_new
from chatbot.learning.extract import RulesExtractor
from chatbot.learning.ledger import read_turn
from chatbot.memory.facts import FactStore, NewFact
from chatbot.memory.store import Store


def ledger(tmp_path, *facts: tuple[str, str, tuple[str, ...]]) -> FactStore:
    """A ledger holding `facts` (answer, key, questions) of user "ann", recorded as they are."""
    Store(tmp_path / "db.sqlite3").close()  # the facts table refers to the turns
    store = FactStore(tmp_path / "db.sqlite3")
    store.record("ann", None, [(NewFact(answer, answer, key, questions), []) for answer, key, questions in facts],
                 "test")
    return store


ARMY = ("You served seven years in the army.", "seven years", ("How long was I in the army?",))
BOAT = ("Your boat is 30 feet long.", "30 feet", ("How long is my boat?",))
SONS = ("You have 2 sons.", "2", ("How many sons do I have?",))
CITY = ("You and your partner live in leeds.", "leeds", ("Where do we live?",))
TRIP = ("You are going to Quito for the conference.", "Quito", ("Where is my conference?",))
DATE = ("Your dentist appointment is on the 4th of March.", "4th of March", ("When is my dentist appointment?",))
GYM = ("Your gym membership number is BN-0317.", "BN-0317", ("What is my gym membership number?",))
TEST = ("Your driving test is booked for 18 March.", "18 March", ("When is my driving test?",))
CHOIR = ("You rehearse on Wednesday evenings.", "Wednesday evenings", ("When do we rehearse?",))
AGE = ("Your granddaughter Meera is six.", "six", ("How old is my granddaughter?",))
NAME = ("Your granddaughter is called Meera.", "Meera", ("What is my granddaughter called?",))
SALON = ("You're a stylist at Golden Scissors in Leith.", "Golden Scissors", ("Where do I work?",))
SON = ("Your son Ravi works as a welder in Perth.", "Perth", ("Where does my son work?",))
GREW = ("You grew up in Leeds.", "Leeds", ("Where did I grow up?",))
TRAM = ("You take the 7:15 tram to work every weekday.", "7:15 tram", ("What do I take?",))
COWS = ("You're milking 140 cows.", "140", ("How many cows am I milking?",))
BUS = ("Your mom drives the 9250 bus, 20 years already.", "9250 bus, 20 years already", ("What does my mom drive?",))


@pytest.mark.parametrize("message, facts, old_key, new_key, answer", [
    ("Sorry, small slip: it was nine years in the army, not seven.", [ARMY, CITY], "seven years", "nine years",
     "You served nine years in the army."),
    ("My mistake, the boat is actually 34 feet, I measured it again", [BOAT, SONS], "30 feet", "34 feet",
     "Your boat is 34 feet long."),
    ("oops i said leeds but were actually in york now, moved in june", [CITY, SONS], "leeds", "york",
     "You and your partner live in york."),
    ("Change of plan: we're flying to Lima for the conference, not Quito.", [TRIP, CITY], "Quito", "Lima",
     "You are going to Lima for the conference."),
    ("I got muddled, the dentist is on the 11th of March, not the 4th.", [DATE, SONS], "4th of March",
     "11th of March", "Your dentist appointment is on the 11th of March."),
    # a value with a hyphen inside is one value; a day moved with its month; "from X to Y"
    ("new gym number btw, they changed systems — it's BN-5529 now, not BN-0317", [GYM, CITY], "BN-0317", "BN-5529",
     "Your gym membership number is BN-5529."),
    ("test got moved!! it's 2 April now, same centre", [TEST, SONS], "18 March", "2 April",
     "Your driving test is booked for 2 April."),
    ("I need to correct myself: the choir has moved its rehearsals from Wednesdays to Thursday evenings", [CHOIR, CITY],
     "Wednesday evenings", "Thursday evenings", "You rehearse on Thursday evenings."),
    # session 23: the value said to be wrong decides between it and a name the message also mentions; a renamed
    # place keeps the words it shares with its old name; where someone lives or works ends when they move away
    ("I got that wrong before. Meera is seven, not six; her birthday was in May.", [AGE, NAME], "six", "seven",
     "Your granddaughter Meera is seven."),
    ("sorry, salon is Golden Shears not Golden Scissors 🤦 new owner", [SALON, CITY], "Golden Scissors",
     "Golden Shears", "You're a stylist at Golden Shears in Leith."),
    ("News about my son: Ravi has moved from Perth to Darwin for a better contract.", [SON, CITY], "Perth", "Darwin",
     "Your son Ravi works as a welder in Darwin."),
    # session 26: a time is one number; of a key's numbers, the one the correction names is the one replaced
    ("Small correction: I no longer catch the 7:15 tram. My rota changed, so it's the 6:40 now.", [TRAM, CITY],
     "7:15 tram", "6:40", "You take the 6:40 tram to work every weekday."),
    ("correction: my mom's been driving 25 yrs, not 20 yrs. she heard me say 20 and got mad lol", [BUS, CITY],
     "9250 bus, 20 years already", "25", "Your mom drives the 9250 bus, 25 years already."),
    ("We're down to 118 cows after I sold part of the herd to my cousin in Joure.", [COWS, CITY], "140", "118",
     "You're milking 118 cows."),
])
def test_a_correction_swaps_the_value_of_the_fact_it_names(tmp_path, message, facts, old_key, new_key, answer):
    store = ledger(tmp_path, *facts)
    old = next(f for f in store.facts("ann") if f.key == old_key)
    fix = corrected(message, store.current("ann"))
    assert fix is not None, message
    new, old_id = fix
    assert (old_id, new.key, new.answer, new.questions) == (old.id, new_key, answer, old.questions)
    assert new.statement == message


@pytest.mark.parametrize("message", [
    "Actually I took the 25 bus to work today, it was packed",  # a cue and a number, but no fact of that topic
    "Actually we walked 40 feet along the quay, it was windy",  # the unit of a fact, not its topic
    "We have a dog too, she is 4.",  # no cue, nothing replaced
    "My mistake, I meant to ask you something else.",  # a cue, no value
    "Update: we now have 3 chickens and 2 goats",  # a cue and numbers, but no fact of theirs to restate
    "We moved house in 2019, it took 3 days",  # "moved", but two numbers and none beside a fact's unit
    "We drove down to 118 Main Street for lunch",  # "down to" and a number, but no fact of that topic
])
def test_no_correction_without_a_named_value_or_a_restated_number_on_topic(tmp_path, message):
    store = ledger(tmp_path, ARMY, CITY, BOAT)
    assert corrected(message, store.current("ann")) is None


def test_a_restated_number_must_be_the_only_fit(tmp_path):
    """Two facts the message could restate: it is left to the extractor."""
    store = ledger(tmp_path, ("Your boat is 30 feet long.", "30 feet", ("How long is my boat?",)),
                   ("Your mast is 40 feet tall.", "40 feet", ("How tall is my mast?",)))
    assert corrected("Actually it's 34 feet, I measured it again", store.current("ann")) is None


def test_moving_away_ends_where_someone_lives_not_where_they_grew_up(tmp_path):
    store = ledger(tmp_path, GREW, SONS)
    assert corrected("My sister moved from Leeds to York last year.", store.current("ann")) is None
    store = ledger(tmp_path / "trip", SON, CITY)
    assert corrected("Ravi went from Perth to Broome for the weekend.", store.current("ann")) is None


def test_replaced_values_and_the_new_value_of_a_plain_correction():
    assert replaced_values("i said alfama but the cafe moved") == ["alfama"]
    assert replaced_values("update - left infosys last month, now at razorpay") == ["infosys"]
    assert replaced_values("I'm not on cardiology anymore") and replaced_values("My dog is called Rex.") == []
    assert replaced_values("We've switched Meera from swimming to water polo") == ["swimming"]
    # "moved from X to" says X is gone only beside a cue: "I grew up in Leeds" stays true of someone who moved
    assert replaced_values("I moved from Leeds to York last year.") == []
    assert replaced_values("Update: we moved from Leeds to York.") == ["Leeds"]
    # session 26: what someone quit or left, up to a comma too; what they sold, said goodbye to; not a trip
    assert replaced_values("quit the Crooked Spoon, I'm pulling shots at Tinderbox Coffee now") == ["Crooked Spoon"]
    assert replaced_values("Big news: I left Le Cerf-Volant! I'm head pastry chef at Maison Brûlée now.") == [
        "Le Cerf-Volant"]
    assert replaced_values("we moved again lol, bye Nadodrze, now in Ołbin") == ["Nadodrze"]
    assert replaced_values("new phone who dis, got a pixel 8, rip iphone 11") == ["iphone 11"]
    assert replaced_values("sold the niva finally, got a used Toyota Hilux") == ["niva"]
    assert replaced_values("I left for Paris on Monday, my flight was BA304.") == []
    assert stated_as_new("we're flying to Lima for the conference, not Quito", "Lima")
    assert not stated_as_new("we're flying to Lima for the conference, not Quito", "Quito")


def test_who_or_what_is_gone():
    """Names a message says are gone; only a fact of the same message replaces theirs (ledger.superseded)."""
    assert gone_values("Uldis has retired, bless him, so a young chap named Rainer does my roof now.") == ["Uldis"]
    assert gone_values("Correction on the accountant: Marc-André has retired, so his daughter does our books.") == [
        "Marc-André"]
    assert gone_values("Some sad news: Marmalade passed away in the spring, and we adopted Pepper.") == ["Marmalade"]
    assert gone_values("ok so salt flats is no more lol, we renamed the band to Low Tide") == ["salt flats"]
    assert gone_values("Bessie Mae finally gave up the ghost, so I bought a 2016 Silverado.") == ["Bessie Mae"]
    assert gone_values("My dog is called Rex.") == [] and gone_values("I left for Paris on Monday.") == []


def test_the_new_value_before_now_follows_where_it_is(tmp_path):
    """"I'm pulling shots at Tinderbox Coffee now": the value is the phrase after "at", not the first words after
    the subject ("pulling shots")."""
    store = ledger(tmp_path, SALON, CITY)
    fix = corrected("quit Golden Scissors, I'm doing hair at Blue Comb now", store.current("ann"))
    assert fix is not None and fix[0].key == "Blue Comb", fix
    assert fix[0].answer == "You're a stylist at Blue Comb in Leith."
    # where first: "at the nandos on oxford road now" is the nandos (a held-out split's correction, after reading)
    shop = ("You work saturdays at a bike shop called spokes.", "spokes", ("Where do I work?",))
    store = ledger(tmp_path / "shop", shop, CITY)
    fix = corrected("quit spokes lol. working at the nandos on oxford road now, thurs and fri nights",
                    store.current("ann"))
    assert fix is not None and fix[0].key == "nandos", fix


def test_the_ledger_records_the_swapped_fact_and_supersedes_the_old(tmp_path):
    """Through read_turn with the real rules: the old fact is superseded by the fact with the new value, asked
    with the old questions, and no other fact of the message replaces it."""
    store = ledger(tmp_path, ARMY, CITY)
    read_turn(store, RulesExtractor(), "ann", None, "Sorry, small slip: it was nine years in the army, not seven.")
    current = {f.key: f for f in store.current("ann")}
    assert "seven years" not in current and "leeds" in current
    assert current["nine years"].questions == ARMY[2]
    assert [f.status for f in store.facts("ann") if f.key == "seven years"] == ["superseded"]


def test_a_long_message_is_left_to_the_extractor(tmp_path):
    """The patterns backtrack on long text; a correction is a sentence or two, so a long message is not read as
    one (and a correction inside it still is, when it is short enough)."""
    store = ledger(tmp_path, CITY)
    said = "i said leeds but " + "now in " * 3000
    assert len(said) > MAX_CHARS and corrected(said, store.current("ann")) is None
    assert corrected("i said leeds but we're in york now", store.current("ann"))[0].key == "york"
