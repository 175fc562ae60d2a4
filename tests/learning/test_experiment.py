"""The forgetting experiment v2 (scripts/experiment.py): its held-out scenario, its scoring and metric formulas, and
a miniature run (tiny model, one round, the default gate) that keeps the script working. The full run is not in CI
(docs/experiment/README.md gives its time)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from chatbot.learning.rehearsal import load_prompts

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import bench_questions  # noqa: E402
import experiment  # noqa: E402
import recall_breakdown  # noqa: E402

MESSAGES = experiment.scenario(experiment.load_jsonl(experiment.FACTS), 5)
FACTS = experiment.gold_facts(MESSAGES)


def test_scenario_is_five_rounds_of_about_ten_facts_with_corrections_late():
    per_round = Counter(f["round"] for f in FACTS)
    assert sorted(per_round) == [1, 2, 3, 4, 5] and all(10 <= n <= 12 for n in per_round.values()), per_round
    corrections = [f for f in FACTS if f["corrects"]]
    assert corrections and all(f["round"] >= 3 for f in corrections)
    ids = {f["id"]: f for f in FACTS}
    for f in corrections:  # a correction points at an earlier fact of the same person
        old = ids[f["corrects"]]
        assert old["user"] == f["user"] and old["round"] < f["round"] and old["key"] != f["key"]
    assert len({m["persona"] for m in MESSAGES}) == 5


def test_the_corrected_fact_is_the_one_whose_value_the_correction_says_is_gone():
    """A correction names a message; of that message's facts, the one whose key is in the correction's not_facts is
    the old value (not its first fact: "alto" is no rehearsal night)."""
    messages = [{"id": "m1", "persona": "u", "round": 1, "not_facts": [],
                 "facts": [{"key": "alto", "questions": ["What do I sing?"]},
                           {"key": "Thursday", "questions": ["When does my choir rehearse?"]}]},
                {"id": "m2", "persona": "u", "round": 3, "not_facts": ["Thursday"],
                 "facts": [{"key": "Wednesday", "questions": ["On which evening is choir now?"], "corrects": "m1"}]}]
    facts = {f["id"]: f for f in experiment.gold_facts(messages)}
    assert facts["m2.0"]["corrects"] == "m1.1"
    messages[1]["not_facts"] = []  # nothing said gone, no question shared: the message's first fact, as before
    assert {f["id"]: f for f in experiment.gold_facts(messages)}["m2.0"]["corrects"] == "m1.0"


def test_named_users_replace_the_qualifying_personas():
    rows = experiment.load_jsonl(experiment.FACTS.with_name("facts-v2-dev.jsonl"))
    chosen = experiment.scenario(rows, 3, users=["q03", "q01"])
    assert {m["persona"] for m in chosen} == {"q01", "q03"} and max(m["round"] for m in chosen) == 3
    assert any(m["kind"] == "correction" for m in chosen)  # q01's and q03's corrections fall in round 3
    assert "q01" not in {m["persona"] for m in experiment.scenario(rows, 3)}  # q01 does not qualify by itself
    with pytest.raises(SystemExit, match="no persona q99"):
        experiment.scenario(rows, 3, users=["q99"])


@pytest.mark.parametrize("fact", FACTS, ids=[f["id"] for f in FACTS])
def test_questions_never_contain_the_answer(fact):
    assert len(fact["questions"]) >= 3
    assert not [q for q in fact["questions"] if fact["key"].lower() in q.lower()]


def test_general_probes_are_not_rehearsed():
    rehearsed = {p["prompt"].strip().lower() for p in load_prompts()}
    general = experiment.load_jsonl(experiment.GENERAL)
    assert general and not [g for g in general if g["question"].strip().lower() in rehearsed]


def test_scoring_of_recall_and_corrections_by_hand():
    facts = [{"id": "a", "user": "u", "round": 1, "key": "Rex", "questions": ["q1", "q2"], "corrects": None},
             {"id": "b", "user": "u", "round": 1, "key": "Oslo", "questions": ["q3"], "corrects": None},
             {"id": "c", "user": "u", "round": 2, "key": "Max", "questions": ["q4", "q5"], "corrects": "a"}]
    answers = {"a": ["Rex", "no"], "b": ["in Oslo"], "c": ["Max, not Rex", "Max"]}
    r1 = experiment.score_round(facts, 1, answers)
    assert r1["recall"] == round(2 / 3, 3) and r1["corrections"] == 0 and r1["correction_new"] is None
    r2 = experiment.score_round(facts, 2, answers)  # a is corrected by c: asked through c's questions only
    assert r2["facts_current"] == 2 and r2["recall"] == pytest.approx(3 / 3)
    assert r2["correction_new"] == 1.0 and r2["correction_old"] == 0.5 and r2["per_round"] == {1: 1.0, 2: 1.0}


def test_a_key_counts_only_as_a_word_of_the_answer():
    facts = [{"id": "a", "user": "u", "round": 1, "key": "ten", "questions": ["q1", "q2"], "corrects": None}]
    assert experiment.score_round(facts, 1, {"a": ["I often swim", "She is ten."]})["recall"] == 0.5


def test_recall_breakdown_splits_answers_by_what_the_rules_read():
    messages = [{"id": "m1", "persona": "u", "round": 1, "kind": "plain", "not_facts": [],
                 "message": "My dog is called Rex.", "facts": [{"key": "Rex", "questions": ["q1", "q2"]}]},
                {"id": "m2", "persona": "u", "round": 1, "kind": "chitchat", "not_facts": [],
                 "message": "ugh, long day. the boss is Marta btw", "facts": [{"key": "Marta", "questions": ["q3"]}]},
                {"id": "m3", "persona": "u", "round": 2, "kind": "correction", "not_facts": [],
                 "message": "Sorry, my dog is called Max, not Rex.",
                 "facts": [{"key": "Max", "questions": ["q1"], "corrects": "m1"}]}]
    read = recall_breakdown.read_by_rules(messages)
    assert read["m1.0"] and read["m3.0"]  # "My dog is called X" is the rules' home ground
    read["m2.0"] = False  # whatever the rules make of the chit-chat, count it as not read
    answers = [{"round": 1, "fact": "m1.0", "answer": "Rex."}, {"round": 1, "fact": "m1.0", "answer": "No idea."},
               {"round": 1, "fact": "m2.0", "answer": "Marta."},
               {"round": 2, "fact": "m1.0", "answer": "Rex."}, {"round": 2, "fact": "m2.0", "answer": "No."},
               {"round": 2, "fact": "m3.0", "answer": "Max."}]
    r1, r2 = recall_breakdown.breakdown(messages, answers, read)
    assert r1["facts"] == 2 and r1["recall"] == round(2 / 3, 3)
    assert r1["read"] == {"facts": 1, "answers": 2, "recalled": 1, "recall": 0.5}
    assert r1["unread"]["recall"] == 1.0
    # round 2: m1 is corrected by m3, so only m2 and m3 are current and m1's answers do not count
    assert r2["facts"] == 2 and r2["read"]["facts"] == 1 and r2["read"]["recall"] == 1.0
    assert r2["unread"]["recall"] == 0.0 and r2["recall"] == 0.5


def test_recall_breakdown_reads_with_the_names_a_person_gave_before():
    messages = [{"id": "m2", "persona": "u", "round": 2, "kind": "correction", "not_facts": ["violin"],
                 "message": "Zofia switched to the cello.", "facts": [{"key": "cello", "questions": ["q1"]}]},
                {"id": "m1", "persona": "u", "round": 1, "kind": "plain", "not_facts": [],
                 "message": "My daughter Zofia plays the violin.", "facts": [{"key": "violin", "questions": ["q1"]}]},
                {"id": "m3", "persona": "v", "round": 2, "kind": "plain", "not_facts": [],
                 "message": "Zofia switched to the cello.", "facts": [{"key": "cello", "questions": ["q2"]}]}]
    read = recall_breakdown.read_by_rules(messages)
    assert read == {"m1.0": True, "m2.0": True, "m3.0": False}  # v never said who Zofia is


def test_bench_questions_compares_what_is_asked_with_what_is_trained(tmp_path):
    from chatbot.learning.augment import extract_facts
    from chatbot.memory.embed import Embedder

    split = tmp_path / "split.jsonl"
    row = {"id": "m1", "persona": "u", "round": 1, "kind": "plain", "not_facts": [], "message": "My dog is called Rex.",
           "facts": [{"key": "Rex", "answer": "Your dog is called Rex.", "corrects": None,
                      "questions": ["What is my dog called?", "What's the weather like in Lima?",
                                    "What's the weather like in Lima?"]}]}
    split.write_text(json.dumps(row) + "\n", encoding="utf-8")
    # the forms trained are learning.mix's: the first four of the fact's five, one kept back for the acquisition probe
    questions = extract_facts(row["message"])[0].questions
    assert len(questions) == 5 and bench_questions.pairs([row], 4)["m1.0"][1] == list(questions[:4])
    result = bench_questions.coverage(split, Embedder().encode, 4, worst=2)
    assert result["facts_read"] == 1 and result["questions"] == 3
    assert result["covered"] == 0.333  # the trained question itself (cosine 1); twice one about something else
    assert result["worst"][0]["asked"] == "What's the weather like in Lima?" and result["worst"][0]["sim"] < 0.5
    assert result["mean_nearest"] == pytest.approx((1 + 2 * result["worst"][0]["sim"]) / 3, abs=0.01)  # rounded


def test_transfer_metrics_match_hand_computation():
    matrix = [[0.9], [0.6, 1.0], [0.5, 0.8, 1.0]]
    m = experiment.transfer_metrics(matrix)
    # BWT = ((0.5 - 0.9) + (0.8 - 1.0)) / 2 = -0.3 ; forgetting = ((0.9 - 0.5) + (1.0 - 0.8)) / 2 = 0.3
    assert m["bwt"] == pytest.approx(-0.3) and m["forgetting"] == pytest.approx(0.3)
    assert experiment.transfer_metrics([[1.0]]) == {"bwt": None, "forgetting": None}


def test_miniature_run_writes_table_csv_and_plot(tiny_model_dir, model_cache, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "experiment.py"), "--model", str(tiny_model_dir),
           "--cache-dir", str(model_cache), "--rounds", "1", "--personas", "2", "--strategies", "rebuild,continue",
           "--max-general", "3", "--train", json.dumps({"epochs": 1, "rehearsal_count": 2}),
           "--probes", json.dumps({"noise_runs": 0, "acquisition_max": 4}), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["strategy"], r["round"]) for r in rows] == [("rebuild", "1"), ("continue", "1")]
    assert all(r["status"] in ("promoted", "rejected") and 0.0 <= float(r["recall"]) <= 1.0 for r in rows)
    result = json.loads((out / "results.json").read_text())
    assert result["facts_file"]["path"] == "data/experiments/facts-v2-test.jsonl"
    assert result["general_suite"]["questions"] == 3 and result["probes"]["gate"] is True  # the default gate, on
    assert result["strategies"]["continue"] == {"strategy": "continue", "distill_weight": 0.0}
    assert (out / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| rebuild | 1 |" in (out / "results.md").read_text()
    said = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
    assert {x["strategy"] for x in said} == {"rebuild", "continue"}
    assert all(x["question"] and "answer" in x for x in said)
