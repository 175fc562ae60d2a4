"""'Don't learn' is honoured by every data path: new data, Q/A augmentation, replay (both policies), rehearsal,
retrieval memory and `ask`. Canary strings are planted in don't-learn messages and conversations, written through
the real chat path, and must never come out anywhere."""
from collections import Counter

import pytest
from conftest import line

from chatbot.learning.consolidate import _mix
from chatbot.learning.extract import RulesExtractor
from chatbot.learning.ledger import sync
from chatbot.learning.rehearsal import load_prompts, rehearsal_examples
from chatbot.learning.replay import make_policy
from chatbot.memory.facts import FactStore

CANARIES = ("ZEBRA-7741", "OTTER-3390", "HERON-5512")


def chat(rt, user, text, cid=None):
    events = list(rt.chat.send(user, text, cid))
    return events[0], events[-1]


@pytest.mark.parametrize("strategy, policy", [("continue", "uniform"), ("continue", "nearest"), ("rebuild", None)])
def test_dont_learn_is_honoured_by_every_data_path(runtime, strategy, policy):
    rt = runtime
    # Consolidated earlier: one ordinary conversation, and one whose message is marked "don't learn" afterwards.
    old, _ = chat(rt, "ann", "My cat is called Tom.")
    late, _ = chat(rt, "ann", f"My locker code is {CANARIES[2]}.")
    rt.store.mark_consolidated(rt.store.turn_ids_in([old.conversation_id, late.conversation_id]), "v0001")
    rt.chat.set_learn("ann", late.user_turn_id, False)  # the user changes their mind after consolidation

    # New data: a normal statement, a don't-learn message (covers its reply), a don't-learn conversation.
    keep, _ = chat(rt, "ann", "My dog is called Rex.")
    secret, _ = chat(rt, "ann", f"My PIN is {CANARIES[0]}.", keep.conversation_id)
    rt.chat.set_learn("ann", secret.user_turn_id, False)
    quiet = rt.chat.new_conversation("ann", learn=False)
    chat(rt, "ann", f"My password is {CANARIES[1]}.", quiet)
    rt.buffer.wait_indexed()

    asked: list[str] = []
    shipped = {p["prompt"] for p in load_prompts()}
    rehearsal = rehearsal_examples(3, 0, None, lambda prompts: [asked.append(p) or "general answer" for p in prompts])
    cfg = rt.config
    cfg.train.strategy = strategy
    if strategy == "continue":
        cfg.train.replay_policy, cfg.train.replay_ratio = policy, 10.0
        mix = _mix(rt.store, FactStore(rt.paths.db), line(rt.paths.home, "ann"), cfg,
                   make_policy(policy, rt.buffer.index), rehearsal)
        assert {"new", "augment", "replay", "rehearsal"} <= set(mix.counts), mix.counts
    else:  # the ledger: facts read from the turns, then the facts of learnable turns only
        facts = FactStore(rt.paths.db)
        sync(facts, RulesExtractor())
        assert not [f for f in facts.current() if any(c in f.statement for c in CANARIES)]
        facts.close()
        mix = _mix(rt.store, FactStore(rt.paths.db), line(rt.paths.home, "ann"), cfg, None, rehearsal)
        assert {"augment", "rehearsal"} <= set(mix.counts), mix.counts
    text = "\n".join(e.text() for e in mix.examples)
    assert not [c for c in CANARIES if c in text]
    assert "Rex" in text and "Tom" in text  # the learnable turns are there
    canary_turns = {t.id for c in (late, secret) for t in rt.store.turns(c.conversation_id) if
                    any(x in t.text for x in CANARIES)} | set(rt.store.turn_ids_in([quiet]))
    lineage = set(mix.new_turn_ids) | set(mix.manifest()["replay_turn_ids"])
    assert not lineage & canary_turns
    assert set(asked) <= shipped and all(e.turn_ids == () for e in rehearsal)  # rehearsal never sees user data

    # Retrieval memory and `ask` never recall them either (same user, other conversation, directly asked).
    # (Asking logs the question, which names the canary, so each canary is checked before it is asked about.)
    for c in CANARIES:
        assert not [h for h in rt.buffer.search(f"code {c}", user="ann", k=20) if c in h.turn.text]
        assert not [m for m in rt.chat.ask(f"Tell me about {c}", user="ann")["memories"] if c in m]
        accepted, _ = chat(rt, "ann", f"What was {c} about?")
        assert not [m for m in accepted.memories if c in m.text]


def test_replies_to_dont_learn_messages_and_stopped_replies_are_not_learned(runtime):
    rt = runtime
    secret, done = chat(rt, "ann", f"Remember {CANARIES[0]} for me.")
    rt.chat.set_learn("ann", secret.user_turn_id, False)
    assert rt.store.turn(done.turn_id).learn is False
    rows = rt.store.learnable_turns(consolidated=False)
    assert not [t for _, t in rows if t.conversation_id == secret.conversation_id]
    assert Counter(u for u, _ in rows) == Counter()
