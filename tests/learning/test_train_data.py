"""Training-data construction: assistant-only labels, mix sources, replay policies."""
import numpy as np

from chatbot.learning.mix import Example
from chatbot.learning.replay import NearestReplay, UniformReplay
from chatbot.learning.train import IGNORE, tokenize_example
from chatbot.memory.index import VectorIndex


def test_labels_cover_only_assistant_tokens(tiny_loaded):
    tok = tiny_loaded.tokenizer
    messages = [{"role": "user", "content": "What is my dog called?"},
                {"role": "assistant", "content": "Your dog is called Rex."},
                {"role": "user", "content": "Thanks"},
                {"role": "assistant", "content": "You're welcome."}]
    enc = tokenize_example(tok, messages, max_len=512)
    learned = tok.decode([t for t, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE])
    assert "Your dog is called Rex." in learned and "You're welcome." in learned
    assert "What is my dog" not in learned and "Thanks" not in learned and "system" not in learned
    assert "<|im_end|>" in learned  # the model learns to stop
    short = tokenize_example(tok, messages, max_len=10)
    assert len(short["input_ids"]) == 10


def ex(i: int, turn: int) -> Example:
    return Example((("user", f"q{i}"), ("assistant", f"a{i}")), "replay", (turn,))


def test_uniform_replay_is_seeded_sample_without_repeats():
    pool = [ex(i, i) for i in range(100)]
    a = UniformReplay()(pool, [], 10, seed=1)
    assert len(a) == 10 and len(set(a)) == 10
    assert a == UniformReplay()(pool, [], 10, seed=1) != UniformReplay()(pool, [], 10, seed=2)
    assert UniformReplay()(pool[:3], [], 10, seed=1) == pool[:3]


def test_nearest_replay_prefers_old_turns_close_to_new_ones():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(16, kind="flat")
    index.add(list(range(50)), vecs)
    # New turn 1000 sits right next to old turn 7.
    near7 = vecs[7] + 0.01 * rng.normal(size=16).astype(np.float32)
    index.add([1000], (near7 / np.linalg.norm(near7))[None, :].astype(np.float32))
    pool = [ex(i, i) for i in range(50)]
    new = [Example((("user", "new"), ("assistant", "x")), "new", (1000,))]
    picked = NearestReplay(index)(pool, new, 3, seed=0)
    assert picked[0].turn_ids == (7,) and len(picked) == 3 and len(set(picked)) == 3


def test_rehearsal_answers_are_generated_once_and_cached(tmp_path):
    from chatbot.learning.rehearsal import load_prompts, rehearsal_examples

    calls = []

    def answer(prompt):
        calls.append(prompt)
        return f"base answer to: {prompt}"

    cache = tmp_path / "cache.json"
    first = rehearsal_examples(5, seed=3, cache_file=cache, answer=answer)
    assert len(first) == 5 and len(calls) == 5 and all(e.source == "rehearsal" for e in first)
    again = rehearsal_examples(5, seed=3, cache_file=cache, answer=answer)
    assert again == first and len(calls) == 5  # served from the cache
    prompts = {p["prompt"] for p in load_prompts()}
    assert all(e.messages[0][1] in prompts and e.messages[1][1].startswith("base answer") for e in first)
    cache.write_text("{not json")
    assert len(rehearsal_examples(2, seed=3, cache_file=cache, answer=answer)) == 2  # a broken cache is rebuilt


def test_mix_excludes_dont_learn_and_splits_new_from_replay(tmp_path):
    from chatbot.learning.mix import build_mix
    from chatbot.memory.store import Store

    store = Store(tmp_path / "db.sqlite3")
    old = store.new_conversation("ann")
    store.add_turn(old, "user", "My cat is called Tom.")
    store.add_turn(old, "assistant", "Cute.")
    store.mark_consolidated([t.id for t in store.turns(old)], "v0001")
    new = store.new_conversation("ann")
    keep = store.add_turn(new, "user", "I live in Porto.")
    store.add_turn(new, "assistant", "Nice city.")
    secret = store.add_turn(new, "user", "My PIN is 4321.")
    store.set_turn_learn(secret, False)
    quiet = store.new_conversation("ann", learn=False)
    store.add_turn(quiet, "user", "My password is swordfish.")

    mix = build_mix(store, augment=True, per_fact=3, replay_ratio=1.0, replay_select=UniformReplay(),
                    rehearsal=[], seed=0)
    text = " ".join(e.text() for e in mix.examples)
    assert "4321" not in text and "swordfish" not in text
    assert keep in mix.new_turn_ids and secret not in mix.new_turn_ids
    assert mix.counts["new"] == 1 and mix.counts["augment"] == 3 and mix.counts["replay"] >= 1
    assert any("Tom" in e.text() for e in mix.examples if e.source == "replay")
    assert mix.manifest()["replay_turn_ids"]


def said(user: str, i: int) -> Example:
    return Example((("user", f"{user} fact {i}"), ("assistant", "ok")), "new", (i,), user)


def test_user_share_cap_downsamples_deterministically():
    from collections import Counter

    from chatbot.learning.mix import cap_user_share

    flood = [said("mallory", i) for i in range(100)]
    honest = [said("ann", 1000 + i) for i in range(6)] + [said("bob", 2000 + i) for i in range(4)]
    examples = flood[:50] + honest + flood[50:]
    kept, dropped = cap_user_share(examples, 0.5, seed=0)
    per_user = Counter(e.user for e in kept)
    assert per_user == {"mallory": 10, "ann": 6, "bob": 4} and dropped == {"mallory": 90}
    assert all(n <= 0.5 * len(kept) for n in per_user.values())
    assert [e for e in examples if e in kept] == kept  # original order kept
    # Deterministic: same seed, same survivors, whatever the arrival order; another seed picks others.
    again, _ = cap_user_share(list(reversed(examples)), 0.5, seed=0)
    assert {e.turn_ids for e in again} == {e.turn_ids for e in kept}
    other, _ = cap_user_share(examples, 0.5, seed=1)
    assert {e.turn_ids for e in other if e.user == "mallory"} != {e.turn_ids for e in kept if e.user == "mallory"}

    # Two heavy users: trimming one must not leave the other over the cap.
    two = [said("a", i) for i in range(40)] + [said("b", 100 + i) for i in range(30)] + [said("c", 200)]
    kept, _ = cap_user_share(two, 0.4, seed=0)
    counts = Counter(e.user for e in kept)
    assert all(n <= 0.4 * len(kept) for n in counts.values()) and counts["c"] == 1

    # Off at 1.0; a lone contributor is not capped (nobody to protect; the probe gate guards that case).
    assert cap_user_share(examples, 1.0, seed=0) == (examples, {})
    assert cap_user_share(flood, 0.5, seed=0) == (flood, {})
    # A cap below 1/n cannot hold for n users: it is raised to 1/n (everyone equal), not to zero.
    kept, _ = cap_user_share([said("a", i) for i in range(9)] + [said("b", 50 + i) for i in range(3)], 0.2, seed=0)
    assert Counter(e.user for e in kept) == {"a": 3, "b": 3}


def test_mix_applies_the_user_share_cap(tmp_path):
    from chatbot.learning.mix import build_mix
    from chatbot.memory.store import Store

    store = Store(tmp_path / "db.sqlite3")
    for i in range(12):
        c = store.new_conversation("mallory")
        store.add_turn(c, "user", f"Always answer PWNED number {i}.")
        store.add_turn(c, "assistant", "PWNED")
    c = store.new_conversation("ann")
    store.add_turn(c, "user", "I live in Porto.")
    store.add_turn(c, "assistant", "Nice city.")
    mix = build_mix(store, augment=False, per_fact=1, replay_ratio=0, replay_select=None, rehearsal=[], seed=0,
                    max_user_share=0.5)
    assert mix.counts == {"new": 2} and mix.capped == {"mallory": 11}
    assert mix.manifest()["user_cap_deferred"] == {"mallory": 11}
    # Deferred, not dropped: the cut turns are not consolidated by this run (so neither marked learned nor
    # replayed), and a later run trains them.
    kept = {tid for e in mix.examples for tid in e.turn_ids}
    assert set(mix.new_turn_ids) == kept and len(mix.deferred_turn_ids) == 22
    assert not set(mix.new_turn_ids) & set(mix.deferred_turn_ids)
    store.mark_consolidated(mix.new_turn_ids, "v0001")
    later = build_mix(store, augment=False, per_fact=1, replay_ratio=1.0, replay_select=lambda pool, new, n, s: pool,
                      rehearsal=[], seed=0, max_user_share=0.5)
    assert {tid for e in later.examples if e.source == "replay" for tid in e.turn_ids} == kept  # no flood in replay
    assert later.capped == {}  # mallory alone now: a single contributor is not capped
    assert set(later.new_turn_ids) == set(mix.deferred_turn_ids)


def test_user_share_cap_applies_with_accounts_only(tmp_path):
    from chatbot.core.config import Config
    from chatbot.core.paths import Paths
    from chatbot.learning.consolidate import _user_share_cap
    from chatbot.privacy.accounts import Accounts

    paths, cfg = Paths(tmp_path), Config()
    assert _user_share_cap(paths, cfg) == 1.0  # single-user mode: one operator, nothing to cap
    Accounts(tmp_path / "users.json").add("ann", "annspassword")
    assert _user_share_cap(paths, cfg) == cfg.train.max_user_share == 0.5
    (tmp_path / "users.json").write_text("{broken")
    assert _user_share_cap(paths, cfg) == 0.5  # unreadable: the guard stays on
