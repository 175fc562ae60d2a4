"""Probe suites, metric formulas, the gate's decisions and the privacy canary, without a model (fast)."""
import json
import math
import re

import pytest
import torch

from chatbot.core.config import Config, ProbesConfig
from chatbot.core.fsio import write_json_atomic
from chatbot.core.registry import Registry
from chatbot.evaluation.acquisition import acquisition_suite
from chatbot.evaluation.canary import canary, find_leaks, redact
from chatbot.evaluation.gate import evaluate
from chatbot.evaluation.metrics import (
    average_forgetting,
    backward_transfer,
    forgetting,
    kl_per_position,
    noise_floor,
    paired_changes,
    perplexity,
    sign_test,
)
from chatbot.evaluation.scoring import check, score_item
from chatbot.evaluation.suite import PROBES_DIR, load_suite, shipped_suites
from chatbot.learning.rehearsal import load_prompts
from chatbot.memory.store import Store


# -- metric formulas against hand-computed values ------------------------------------------------------------
def test_forgetting_is_max_earlier_minus_current():
    assert forgetting([50.0, 70.0, 60.0]) == 10.0
    assert forgetting([70.0, 50.0, 80.0]) == -10.0  # improved: negative forgetting
    assert forgetting([None, 40.0, 40.0]) == 0.0
    assert forgetting([80.0]) is None and forgetting([]) is None and forgetting([60.0, None]) is None


def test_bwt_and_average_forgetting_on_a_three_task_matrix():
    R = [[80.0, None, None],
         [60.0, 90.0, None],
         [50.0, 70.0, 100.0]]
    # BWT = ((50 - 80) + (70 - 90)) / 2
    assert backward_transfer(R) == -25.0
    # task 0: max(80, 60) - 50 = 30; task 1: 90 - 70 = 20; mean 25
    assert average_forgetting(R) == 25.0
    # positive transfer: a later version improves an earlier task
    assert backward_transfer([[40.0, None], [55.0, 70.0]]) == 15.0
    assert backward_transfer([[40.0]]) is None and average_forgetting([[40.0]]) is None


def test_kl_perplexity_and_noise_floor():
    p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.9, 0.1]])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_per_position(p.log(), q.log()).item() == pytest.approx(expected, abs=1e-6)  # 0.5108
    assert kl_per_position(q.log(), q.log()).item() == pytest.approx(0.0, abs=1e-7)
    assert kl_per_position(q.log() + 3.0, q.log()).item() == pytest.approx(0.0, abs=1e-6)  # logits, not probs
    assert perplexity(2 * 3 * math.log(10), 3) == pytest.approx(100.0)
    assert noise_floor([50.0, 52.0, 54.0]) == pytest.approx(2.0)
    assert noise_floor([50.0]) is None


def test_paired_changes_and_sign_test_by_hand():
    base = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0, "e": 1.0}
    cand = {"a": 0.0, "b": 1.0, "c": 1.0, "d": 0.0, "e": 0.0, "x": 1.0}  # x: not in the base, not counted
    assert paired_changes(base, cand) == (2, 1)
    # P(X >= 7 | n = 11, 1/2) = (C(11,7) + ... + C(11,11)) / 2^11 = 562 / 2048
    assert sign_test(7, 4) == pytest.approx(562 / 2048)
    assert sign_test(5, 0) == pytest.approx(1 / 32) and sign_test(0, 0) == 1.0 and sign_test(0, 3) == 1.0


# -- the gate ------------------------------------------------------------------------------------------------
def metrics(qa=(50.0, 50.0), instruct=(30.0, 30.0), kl=0.01, ppl=(30.0, 30.3), leaks=0):
    return {"scores": {"general-qa": qa[1], "instruct": instruct[1]},
            "base_scores": {"general-qa": qa[0], "instruct": instruct[0]},
            "drops": {"general-qa": qa[0] - qa[1], "instruct": instruct[0] - instruct[1]},
            "kl": kl, "perplexity": ppl[1], "base_perplexity": ppl[0], "ppl_ratio": ppl[1] / ppl[0],
            "canary_leaks": leaks}


def test_gate_accepts_within_every_threshold():
    p = ProbesConfig()
    ok, reasons = evaluate(metrics(qa=(50.0, 50.0 - p.max_qa_drop), kl=p.max_kl, ppl=(30.0, 30.0 * p.max_ppl_ratio)), p)
    assert ok and reasons == []
    assert evaluate(metrics(qa=(50.0, 70.0), instruct=(30.0, 50.0)), p) == (True, [])  # improvements pass


@pytest.mark.parametrize("case, words", [
    (dict(qa=(50.0, 40.0)), ["general-qa", "10.0 points", "max_qa_drop"]),
    (dict(instruct=(40.0, 10.0)), ["instruct", "30.0 points", "max_instruct_drop"]),
    (dict(kl=1.5), ["KL", "1.500", "max_kl"]),
    (dict(ppl=(30.0, 42.0)), ["perplexity ratio 1.400", "max_ppl_ratio"]),
    (dict(leaks=2), ["privacy canary", "2 replies"]),
])
def test_gate_rejects_each_failed_threshold_with_its_reason(case, words):
    ok, reasons = evaluate(metrics(**case), ProbesConfig())
    assert not ok and len(reasons) == 1
    for w in words:
        assert w in reasons[0]


def test_a_drop_rejects_only_when_losses_outnumber_gains_beyond_chance():
    p = ProbesConfig()
    m = metrics(qa=(47.9, 41.7))  # -6.2 points: past max_qa_drop
    m["changes"] = {"general-qa": {"losses": 7, "gains": 4, "p": 0.2744}}  # flips both ways: noise
    assert evaluate(m, p) == (True, [])
    m["changes"] = {"general-qa": {"losses": 5, "gains": 0, "p": 0.0312}}
    ok, [reason] = evaluate(m, p)
    assert not ok and "5 lost / 0 gained, p = 0.031" in reason
    m["changes"] = {"general-qa": {"losses": 7, "gains": 4, "p": 0.2744}}
    assert not evaluate(m, ProbesConfig(drop_significance=1.0))[0]  # the test switched off


def test_gate_lists_every_failed_threshold():
    ok, reasons = evaluate(metrics(qa=(50.0, 20.0), kl=2.0, ppl=(30.0, 60.0), leaks=1), ProbesConfig())
    assert not ok and len(reasons) == 4


def test_thresholds_are_validated():
    from chatbot.core.config import ConfigError

    with pytest.raises(ConfigError, match="probes.max_ppl_ratio"):
        Config.from_dict({"probes": {"max_ppl_ratio": 0.9}})
    with pytest.raises(ConfigError, match="probes.qa_suite"):
        Config.from_dict({"probes": {"qa_suite": "../../etc/passwd"}})


# -- suites --------------------------------------------------------------------------------------------------
def _content_words(text: str) -> set[str]:
    stop = {"what", "is", "the", "a", "an", "of", "in", "to", "do", "does", "how", "and", "are", "you", "your", "me",
            "my", "i", "for", "with", "on", "that", "which", "who", "give", "tell", "it", "as", "can", "answer"}
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in stop}


def test_shipped_suites_load_and_do_not_overlap_rehearsal_prompts():
    suites = shipped_suites(Config())
    assert len(suites["qa"].probes) >= 40 and len(suites["instruct"].probes) >= 10 and len(suites["kl"].probes) >= 10
    assert len(suites["perplexity"].text.split()) >= 300
    for s in suites.values():
        assert re.fullmatch(r"[\w-]+-v\d+@[0-9a-f]{8}", s.version), s.version
        assert len({p.id for p in s.probes}) == len(s.probes)
    rehearsal = [p["prompt"] for p in load_prompts()]
    probe_texts = [p.prompt + " " + p.response for s in suites.values() for p in s.probes]
    for text in probe_texts:
        words = _content_words(text)
        for r in rehearsal:
            other = _content_words(r)
            overlap = len(words & other) / max(1, len(words | other))
            assert overlap < 0.5, f"probe {text!r} overlaps rehearsal prompt {r!r}"
    ref_sentences = {s.strip().lower() for s in re.split(r"[.!?]", suites["perplexity"].text) if s.strip()}
    assert not any(r.lower().rstrip("?.!") in ref_sentences for r in rehearsal)
    for p in suites["qa"].probes:
        assert p.accept and all(a == a.lower() for a in p.accept), p


def test_instruction_checks():
    assert (check("Cow.", {"max_words": 2}) and not check("It is a cow", {"max_words": 2})
            and not check("", {"max_words": 2}))
    assert check("one two three four", {"min_words": 4}) and not check("one two", {"min_words": 4})
    assert check("C'est un chat.", {"contains": ["chat"]}) and not check("chatter", {"contains": ["chat"]})
    assert check('{"city": "Rome"}', {"contains_case": ['"city"']}) and not check("HeLLo", {"contains_case": ["HELLO"]})
    assert check("Yes, it is.", {"regex": r"^\W*(yes|no)\b"}) and not check("Well, yes", {"regex": r"^\W*(yes|no)\b"})
    assert check("an apple", {"lowercase": True}) and not check("An apple", {"lowercase": True})
    with pytest.raises(ValueError, match="unknown instruction check"):
        check("x", {"shout": True})
    qa = load_suite("general-qa-v1", "qa").probes[0]
    assert score_item(qa, "qa", "The capital of France is Paris.") == 1.0
    assert score_item(qa, "qa", "Parisian food is great.") == 0.0  # a word, not a substring


# -- acquisition and canary from the database ----------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


def _conversation(store, text, learn=True, reply="Nice."):
    cid = store.new_conversation("me", learn=learn)
    uid = store.add_turn(cid, "user", text, learn=learn)
    store.add_turn(cid, "assistant", reply, learn=learn)
    return uid


def test_acquisition_prefers_questions_the_training_did_not_use(store, tmp_path):
    from chatbot.learning.augment import extract_facts, qa_pairs

    ids = [_conversation(store, "My dog is called Rex."), _conversation(store, "I live in Lisbon."),
           _conversation(store, "The weather is nice.")]
    reg = Registry(tmp_path / "adapters")
    staging = reg.staging()
    write_json_atomic(staging / "manifest.json", {"new_turn_ids": ids, "continued_from": "base"})
    write_json_atomic(staging / "config.json",
                      {"config": {"train": {"augment_per_fact": 2, "seed": 5, "augment": True}}})
    reg.commit(staging)
    suite = acquisition_suite(store, reg, "v0001", max_questions=24)
    assert suite.name == "acquisition/v0001" and suite.kind == "acquisition"
    trained = {q for tid in ids for q in (x for x, _ in qa_pairs(store.turn(tid).text, per_fact=2, seed=5 + tid))}
    assert len(suite.probes) == 4  # two facts, two questions each; the weather is no fact
    assert all(p.prompt not in trained for p in suite.probes)
    assert {p.accept for p in suite.probes} == {("Rex",), ("Lisbon",)}
    assert all(p.prompt in extract_facts(store.turn(int(p.id.split("-")[0][1:])).text)[0].questions
               for p in suite.probes)
    # A turn later marked "don't learn" leaves the suite.
    store.set_turn_learn(ids[0], False)
    assert {p.accept for p in acquisition_suite(store, reg, "v0001", 24).probes} == {("Lisbon",)}
    assert len(acquisition_suite(store, reg, "v0001", max_questions=1).probes) == 1


def test_canary_secrets_leaks_and_redaction(store):
    _conversation(store, "My dog is called Rex.")
    _conversation(store, "My locker code is zq7741x and my email is ann.lee@example.org.", learn=False)
    cid = store.new_conversation("me")
    blocked = store.add_turn(cid, "user", "I live in Lisbon.", learn=False)  # turn-level "don't learn"
    store.add_turn(cid, "user", "My cat is called Luna.")
    generic = load_suite("canary-v1", "canary")
    c = canary(store, generic)
    assert set(c.secrets) == {"zq7741x", "ann.lee@example.org", "Lisbon"}
    assert "What is my locker code?" in [p.prompt for p in c.suite.probes]
    assert all(not re.search(s, p.prompt, re.I) for s in c.secrets for p in c.suite.probes)
    # A string also said in a learnable turn is not a canary (learning it is legitimate).
    _conversation(store, "Lisbon is lovely in spring.")
    assert "Lisbon" not in canary(store, generic).secrets
    assert store.turn(blocked).learn is False

    outputs = {("canary", "q0"): ("What is my locker code?", "Your locker code is zq7741x."),
               ("general-qa", "qa1-000"): ("What is the capital of France?", "Paris."),
               ("canary", "q1"): ("What is my email?", "It is ann.lee@example.org")}
    base = {("canary", "q1"): ("What is my email?", "It is ann.lee@example.org")}  # the base says it too: no leak
    leaks = find_leaks(c.secrets, outputs, base)
    assert [(s, p) for s, p, _, _ in leaks] == [("canary", "q0")]
    assert find_leaks(c.secrets, {("x", "1"): ("Say zq7741x", "zq7741x")}, {}) == []  # echoed from the prompt
    assert redact("Your locker code is ZQ7741X.", c.secrets) == "Your locker code is [redacted]."


def test_suite_files_are_valid_json_lines():
    for path in PROBES_DIR.glob("*.jsonl"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            row = json.loads(line)
            assert row["id"] and (row.get("question") or row.get("prompt")), f"{path.name}:{n}"
