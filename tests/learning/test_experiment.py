"""The forgetting experiment (scripts/experiment.py): its scenario data, its metric formulas, and a miniature run
(tiny model, one round) that keeps the script working. The full run is not in CI (49.6 min in one process on 2
quiet cores)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.learning.augment import extract_facts
from chatbot.learning.rehearsal import load_prompts

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import experiment  # noqa: E402

FACTS = experiment.load_jsonl(experiment.FACTS)


def test_scenario_has_three_rounds_of_ten_facts():
    rounds = {}
    for f in FACTS:
        rounds.setdefault(f["round"], []).append(f)
    assert len(rounds) >= 3 and all(len(v) >= 10 for v in rounds.values())
    assert len({f["id"] for f in FACTS}) == len(FACTS)


@pytest.mark.parametrize("fact", FACTS, ids=[f["id"] for f in FACTS])
def test_fact_is_learnable_and_questions_are_worded_differently(fact):
    user, bot = fact["messages"][0]["content"], fact["messages"][1]["content"]
    key = fact["key"].lower()
    assert key in user.lower() and key not in bot.lower(), "the bot must not repeat the fact back"
    extracted = extract_facts(user)
    assert any(key in f.answer.lower() for f in extracted), "the product's augmentation must find the fact"
    templates = {q.lower() for f in extracted for q in f.questions}
    for q in fact["questions"]:
        assert key not in q.lower()
        assert q.lower() not in templates, "test questions must not be the ones the bot is trained on"
        assert q.lower() not in user.lower()


def test_general_probes_are_not_rehearsed():
    rehearsed = {p["prompt"].strip().lower() for p in load_prompts()}
    general = experiment.load_jsonl(experiment.GENERAL)
    assert general and not [g for g in general if g["question"].strip().lower() in rehearsed]


def test_transfer_metrics_match_hand_computation():
    # R[i][j]: after round i, recall on the facts of round j
    matrix = [[0.9], [0.6, 1.0], [0.5, 0.8, 1.0]]
    m = experiment.transfer_metrics(matrix)
    # BWT = ((0.5 - 0.9) + (0.8 - 1.0)) / 2 = -0.3 ; forgetting = ((0.9 - 0.5) + (1.0 - 0.8)) / 2 = 0.3
    assert m["bwt"] == pytest.approx(-0.3) and m["forgetting"] == pytest.approx(0.3)
    assert experiment.transfer_metrics([[1.0]]) == {"bwt": None, "forgetting": None}
    # improvement after learning counts as positive transfer and no forgetting
    m = experiment.transfer_metrics([[0.5], [0.7, 0.9]])
    assert m["bwt"] == pytest.approx(0.2) and m["forgetting"] == pytest.approx(-0.2)


def test_miniature_run_writes_table_csv_and_plot(tiny_model_dir, model_cache, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "experiment.py"), "--model", str(tiny_model_dir),
           "--cache-dir", str(model_cache), "--rounds", "1", "--strategies", "naive,replay,retrieval",
           "--max-general", "3", "--train", json.dumps({"epochs": 1, "rehearsal_count": 2}), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["strategy"], r["round"]) for r in rows] == [("naive", "1"), ("replay", "1"), ("retrieval", "1")]
    assert all(0.0 <= float(r["recall"]) <= 1.0 for r in rows)
    result = json.loads((out / "results.json").read_text())
    assert result["facts_file"]["facts"] == 10 and result["general_suite"]["questions"] == 3
    assert result["strategies"]["retrieval"] is None and result["strategies"]["naive"]["augment"] is False
    assert (out / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| replay | 1 | 10 |" in (out / "results.md").read_text()


def test_merge_combines_runs_with_the_same_settings_only(tmp_path):
    pinned = {"model": {"source": "m"}, "train_defaults": {"learning_rate": 5e-4}, "decoding": {}, "facts_file": {},
              "general_suite": {}, "base_general": 0.5, "rounds": [1], "command": "c", "wall_seconds": 1.0}
    a = {**pinned, "rows": [{"strategy": "naive"}], "strategies": {"naive": {}}, "matrices": {"naive": [[0.0]]},
         "summary": {"naive": {"bwt": None}}}
    b = {**pinned, "rows": [{"strategy": "retrieval"}], "strategies": {"retrieval": None},
         "matrices": {"retrieval": [[1.0]]}, "summary": {"retrieval": {"bwt": None}}}
    files = []
    for name, data in (("a", a), ("b", b), ("c", {**b, "base_general": 0.6})):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(data))
    merged = experiment.merge(files[:2])
    assert [r["strategy"] for r in merged["rows"]] == ["naive", "retrieval"]
    assert set(merged["matrices"]) == {"naive", "retrieval"} and merged["merged_from"] == [str(f) for f in files[:2]]
    with pytest.raises(SystemExit, match="base_general differs"):
        experiment.merge([files[0], files[2]])
