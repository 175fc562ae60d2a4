"""Supersession (chatbot.learning.ledger): a correction names what it replaces, the same slot replaces, a cue-only
correction replaces the most similar value, nothing else does; measured on the development set."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chatbot.learning.extract import RulesExtractor, grounded, make_extractor
from chatbot.learning.ledger import replaced_values, sync
from chatbot.memory.facts import FactStore
from chatbot.memory.store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import bench_ledger  # noqa: E402


def ledger_of(tmp_path, said: list[tuple[str, str]]) -> FactStore:
    store, facts = Store(tmp_path / "db.sqlite3"), FactStore(tmp_path / "db.sqlite3")
    for user, text in said:
        store.add_turn(store.new_conversation(user), "user", text)
        sync(facts, RulesExtractor())
    store.close()
    return facts


@pytest.mark.parametrize("first, then, replaced", [
    ("I work as a radiographer.", "Sorry, I mixed that up — I'm actually a sonographer, not a radiographer.",
     "radiographer"),
    ("My dog is called Rex.", "My dog is called Bruno.", "Rex"),  # same slot, no cue
    ("My staff ID is HT-4410.", "I was wrong about my staff ID — it's HT-4401, I transposed the digits.", "HT-4410"),
    ("We bought a house in Leslieville.", "Scratch that, we ended up buying in Riverdale instead of Leslieville.",
     "Leslieville"),
    # session 26: who is gone, and a fact the same message states about the one after them
    ("My roofer is called Uldis.", "Uldis has retired, so my roofer is Rainer now.", "Uldis"),
    ("Our cat is called Marmalade.", "Marmalade passed away in the spring, and we've adopted a grey cat called "
     "Pepper.", "Marmalade"),
    ("i work weekends as a barista in the Crooked Spoon", "quit the Crooked Spoon, I'm pulling shots at Tinderbox "
     "Coffee now instead", "Crooked Spoon"),
])
def test_corrections_supersede(tmp_path, first, then, replaced):
    facts = ledger_of(tmp_path, [("ann", first), ("ann", then)])
    old = [f for f in facts.facts("ann") if f.key == replaced]
    assert old and old[0].status == "superseded", [(f.key, f.status) for f in facts.facts("ann")]
    assert facts.current("ann") and all(f.key != replaced for f in facts.current("ann"))


def test_a_name_given_in_an_earlier_turn_says_who_a_later_turn_is_about(tmp_path):
    facts = ledger_of(tmp_path, [("ann", "My daughter Zofia plays the violin."),
                                 ("bob", "Zofia switched to the cello."),  # bob never said who Zofia is
                                 ("ann", "Zofia switched to the cello.")])
    assert not facts.facts("bob")
    cello = [f for f in facts.current("ann") if f.key == "cello"]
    assert cello and "What did my daughter switch to?" in cello[0].questions, [
        (f.key, f.questions) for f in facts.facts("ann")]


def test_unrelated_facts_and_other_owners_are_kept(tmp_path):
    facts = ledger_of(tmp_path, [("ann", "My sister lives in Porto."), ("ann", "My brother lives in Lyon."),
                                 ("ann", "I'm a nurse."), ("ann", "I'm from Canada."),
                                 ("bob", "Actually my sister lives in Rome, not Porto.")])
    assert all(f.current for f in facts.facts("ann"))
    assert [f.key for f in facts.current("bob")] == ["Rome"]


def test_a_job_somewhere_does_not_correct_where_someone_lives(tmp_path):
    # both are asked "Where am I based?"; a question form shared by the two is no slot
    facts = ledger_of(tmp_path, [("ann", "I live in Bergen, on the west coast of Norway."),
                                 ("ann", "I work nights at an observatory in the Atacama Desert."),
                                 ("bob", "I live in Accra."), ("bob", "I'm a paediatrician in Kumasi.")])
    for user in ("ann", "bob"):
        assert all(f.current for f in facts.facts(user)), [(f.key, f.status) for f in facts.facts(user)]
    assert {"Accra", "Kumasi"} <= {f.key for f in facts.current("bob")}


def test_of_several_facts_that_replace_one_the_likest_is_its_successor(tmp_path):
    """"im actually 31, not 29, i just like saying 29 jaja": both facts of the message name 29 as gone; the ledger
    shows the number as what replaced it, not the last fact read ("jaja")."""
    facts = ledger_of(tmp_path, [("ann", "I'm 29."), ("ann", "im actually 31, not 29, i just like saying 29 jaja")])
    by_id = {f.id: f for f in facts.facts("ann")}
    [old] = [f for f in by_id.values() if f.key == "29"]
    assert old.status == "superseded" and by_id[old.superseded_by].key == "31", [
        (f.key, f.status, f.superseded_by) for f in by_id.values()]


def test_replaced_values():
    assert replaced_values("the nursery is Little Oaks, not Little Acorns.") == ["Little Acorns"]
    assert "Juniper" in replaced_values("Ugh, I got it wrong: the rabbits are Clover and Maple. Juniper is the "
                                        "neighbours' guinea pig.")
    assert replaced_values("My dog is called Rex.") == []


def test_supersession_on_the_development_set():
    """Tuned on this set (docs/extraction.md): at least 20 of its 22 corrections found, no false supersession.
    A regression check with the benchmark's own code (scripts/bench_ledger.py), not the held-out measure."""
    rows = [json.loads(x) for x in (ROOT / "data/experiments/facts-v2-dev.jsonl").read_text().splitlines() if x]
    m = bench_ledger.measure(rows)
    assert m["corrections"] == 22 and m["found"] >= 20 and m["false_supersessions"] == 0, m


def test_model_extractor_output_is_grounded_in_the_message():
    text = "We adopted a greyhound and named her Pixel."
    kept = grounded(text, [
        {"key": "Pixel", "answer": "Your greyhound is called Pixel.", "questions": ["What is our dog called?",
                                                                                  "Is Pixel our dog?"]},
        {"key": "Rex", "answer": "Your dog is Rex.", "questions": ["What is my dog called?"]},  # not said
        {"key": "greyhound", "answer": "You have a dog.", "questions": ["What dog do we have?"]},  # key not in answer
    ])
    assert [(f.key, f.questions) for f in kept] == [("Pixel", ("What is our dog called?",))]


def test_make_extractor(tiny_loaded):
    assert make_extractor("rules").name == "rules"
    assert make_extractor("auto", tiny_loaded).name == "rules"  # a tiny model is below the `auto` threshold
    assert make_extractor("model", tiny_loaded).name.startswith("model:")
    with pytest.raises(ValueError, match="needs a model"):
        make_extractor("model")
    with pytest.raises(ValueError, match="must be one of"):
        make_extractor("gpt")


def test_model_extractor_decodes_valid_json(tiny_loaded):
    """Constrained decoding: whatever a (random) model writes parses as the schema; grounding then drops what the
    message does not say."""
    extractor = make_extractor("model", tiny_loaded)
    extractor.max_new_tokens = 48
    raw = extractor.raw("My dog is called Rex.")
    assert raw.lstrip().startswith("{")
    assert extractor.extract("My dog is called Rex.") == [] or all(
        f.key.lower() in "my dog is called rex." for f in extractor.extract("My dog is called Rex."))
