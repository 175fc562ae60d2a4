"""The knowledge ledger (chatbot.memory.facts) filled from real turns by the rules extractor: rows per fact with
owner and source turn, no rows for questions, negations and chit-chat, supersession, forget, eligibility follows
the turns' "don't learn" flags, and the served version's marks."""
from __future__ import annotations

import json

import pytest

from chatbot.learning.extract import RulesExtractor
from chatbot.learning.ledger import Knowledge, correct, sync
from chatbot.memory.facts import FactStore
from chatbot.memory.store import Store


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "chat.sqlite3"
    store, facts = Store(path), FactStore(path)
    yield store, facts
    facts.close()
    store.close()


def say(store: Store, user: str, *messages: str) -> list[int]:
    cid = store.new_conversation(user)
    ids = []
    for m in messages:
        ids.append(store.add_turn(cid, "user", m))
        store.add_turn(cid, "assistant", "I see.")
    return ids


def test_rows_from_turns_with_owner_source_and_no_rows_for_non_facts(db):
    store, facts = db
    [t1, t2, t3, t4] = say(store, "ann", "My dog is called Rex and we live in Bergen.",
                           "What's the capital of Peru?",  # a question
                           "I don't have a car.",  # a negation
                           "Lovely weather today, isn't it?")  # chit-chat
    assert sync(facts, RulesExtractor()) == 2
    rows = facts.facts("ann")
    assert {f.key for f in rows} == {"Rex", "Bergen"}
    assert all(f.owner == "ann" and f.turn_id == t1 and f.status == "pending" and f.extractor == "rules"
               for f in rows)
    rex = next(f for f in rows if f.key == "Rex")
    assert rex.answer == "Your dog is called Rex." and len(rex.questions) >= 3
    assert not any("Rex" in q for q in rex.questions)
    assert facts.unread_turns() == []  # every turn was read once, facts or not
    assert sync(facts, RulesExtractor()) == 0  # and is not read again
    assert {t2, t3, t4}.isdisjoint({f.turn_id for f in facts.facts()})


def test_a_later_statement_supersedes_and_a_repeat_is_not_duplicated(db):
    store, facts = db
    say(store, "ann", "My dog is called Rex.")
    say(store, "bob", "My dog is called Bolt.")  # another owner: never supersedes ann's fact
    sync(facts, RulesExtractor())
    say(store, "ann", "Sorry, I got that wrong: my dog is called Max, not Rex.", "My dog is called Max.")
    sync(facts, RulesExtractor())
    ann = {f.key: f for f in facts.facts("ann")}
    assert set(ann) == {"Rex", "Max"}  # the repeat of Max added nothing
    assert ann["Rex"].status == "superseded" and ann["Rex"].superseded_by == ann["Max"].id
    assert ann["Max"].supersedes == (ann["Rex"].id,) and ann["Max"].current
    assert [f.key for f in facts.current("bob")] == ["Bolt"]
    assert [f.key for f in facts.current("ann")] == ["Max"]


def test_dont_learn_hides_a_fact_and_brings_back_what_it_superseded(db):
    store, facts = db
    say(store, "ann", "I live in Oslo.")
    [later] = say(store, "ann", "Actually I live in Bergen now, not Oslo.")
    sync(facts, RulesExtractor())
    assert [f.key for f in facts.current("ann")] == ["Bergen"]
    store.set_turn_learn(later, False)
    statuses = {f.key: f.status for f in facts.facts("ann")}
    assert statuses == {"Oslo": "pending", "Bergen": "ineligible"}


def test_forget_erases_the_text_and_deleting_the_conversation_deletes_the_rows(db):
    store, facts = db
    say(store, "ann", "My dog is called Rex.")
    say(store, "ann", "My cat is called Tom.")
    sync(facts, RulesExtractor())
    rex = next(f for f in facts.facts("ann") if f.key == "Rex")
    assert facts.forget(rex.id)
    gone = facts.get(rex.id)
    assert gone.status == "forgotten" and gone.answer == gone.statement == gone.key == "" and not gone.current
    tom = next(f for f in facts.facts("ann") if f.key == "Tom")
    store.delete_conversations([store.owners([tom.turn_id])[tom.turn_id][1]])
    assert [f.id for f in facts.facts("ann")] == [rex.id]  # Tom's row went with its turn (ON DELETE CASCADE)
    store.delete_conversations([c.id for c in store.conversations("ann")])
    assert facts.facts("ann") == []


def test_correct_by_value_or_statement(db):
    store, facts = db
    say(store, "ann", "My dog is called Rex.")
    sync(facts, RulesExtractor())
    [rex] = facts.facts("ann")
    by_value = correct(facts, RulesExtractor(), rex.id, "Max")
    assert by_value.answer == "Your dog is called Max." and by_value.key == "Max" and by_value.turn_id is None
    assert by_value.questions == rex.questions and facts.get(rex.id).status == "superseded"
    by_statement = correct(facts, RulesExtractor(), by_value.id, "My dog is called Maximilian.")
    assert by_statement.key == "Maximilian" and set(rex.questions) <= set(by_statement.questions)
    assert [f.key for f in facts.current("ann")] == ["Maximilian"]


def test_recording_is_atomic(db, monkeypatch):
    """A crash while recording a turn's facts leaves the turn unread and no fact of it behind."""
    store, facts = db
    say(store, "ann", "My dog is called Rex and my cat is called Tom.")

    calls = {"n": 0}
    real = json.dumps

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(*a, **k)

    monkeypatch.setattr("chatbot.memory.facts.json.dumps", boom)
    with pytest.raises(RuntimeError):
        sync(facts, RulesExtractor())
    monkeypatch.undo()
    assert facts.facts() == [] and len(facts.unread_turns()) == 1
    assert sync(facts, RulesExtractor()) == 2


def test_knowledge_checks_the_owner_and_reads_in_the_background(db, tmp_path):
    from chatbot.core.config import Config

    store, facts = db
    say(store, "ann", "My dog is called Rex.")
    k = Knowledge(tmp_path / "chat.sqlite3", Config())
    try:
        k.refresh_soon()
        for _ in range(200):
            if k.listed("ann"):
                break
            import time
            time.sleep(0.02)
        [rex] = k.listed("ann")
        with pytest.raises(ValueError, match="no fact"):
            k.forget(rex.id, user="bob")
        with pytest.raises(ValueError, match="no fact"):
            k.correct(rex.id, "Max", user="bob")
        assert k.listed("bob") == [] and k.forget(rex.id, user="ann").key == "Rex"
        with pytest.raises(ValueError, match="already forgotten"):
            k.forget(rex.id)
    finally:
        k.close()
