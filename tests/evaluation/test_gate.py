"""The probe gate end to end on a tiny model: consolidate() probes every candidate on the served stack (4-bit
base + unmerged adapter), promotes a gentle one, rejects one trained to collapse and one that learned text marked
"don't learn"; results, verdicts and the base's cache live in SQLite; `chatbot probe` and `chatbot report`."""
import json
import os
import sqlite3
import stat

import pytest
from conftest import chatbot, import_facts, line, tiny_config

from chatbot.core.paths import Paths
from chatbot.evaluation.gate import default_gate
from chatbot.learning.consolidate import consolidate

SECRET = "zq7741x"
GENTLE = [
    {"messages": [{"role": "user", "content": "My dog is called Rex."}, {"role": "assistant", "content": "Lovely!"}]},
    {"messages": [{"role": "user", "content": "I live in Lisbon."}, {"role": "assistant", "content": "Sunny city."}]},
    {"learn": False, "messages": [{"role": "user", "content": f"My locker code is {SECRET}."},
                                  {"role": "assistant", "content": "I will not remember it."}]},
]
# A poisoned batch: every question answered with one phrase, learned at a high rate.
COLLAPSE = [{"messages": [{"role": "user", "content": f"Tell me about topic number {i}."},
                          {"role": "assistant", "content": "BANANA BANANA BANANA BANANA"}]} for i in range(12)]
# gentle by its own settings, not the product's (at 1e-3, the default now, its KL was a fifth of the collapse's)
GENTLE_TRAIN = {"epochs": 1, "batch_size": 4, "rehearsal_count": 1, "max_seq_len": 96, "learning_rate": 5e-4,
                "loss_average": "token"}
# "continue": the poisoned turns are dialogue (the rebuild strategy trains only ledger facts + rehearsal)
COLLAPSE_TRAIN = {"strategy": "continue", "epochs": 20, "batch_size": 4, "learning_rate": 1e-2, "augment": False,
                  "replay_ratio": 0.0, "rehearsal_count": 0, "max_seq_len": 64}


# The gate's mechanics on the tiny model, with thresholds scaled to it (the defaults are measured on the embedded
# model, docs/probes.md; a tiny random model's collapse moves KL less than a real model's).
GATE = {"max_kl": 0.2, "max_ppl_ratio": 1.05, "max_instruct_drop": 15.0}


def cfg(model_dir, **train):
    return tiny_config(model_dir, model={"quantization": "4bit"}, train={**GENTLE_TRAIN, **train},
                       probes={"noise_runs": 2, **GATE})


def toml(path, model_dir):
    path.write_text(f'[model]\nsource = "{model_dir}"\nquantization = "4bit"\nmax_context = 512\n'
                    '[decoding]\nmax_new_tokens = 16\n[probes]\nnoise_runs = 2\n'
                    + "".join(f"{k} = {v}\n" for k, v in GATE.items()))
    return path


@pytest.fixture(scope="module")
def gated(tmp_path_factory, sharp_tiny_model_dir, embedder):
    """v0001: a gentle consolidation (promoted); v0002: the poisoned batch (rejected)."""
    root = tmp_path_factory.mktemp("gate")
    home = root / "home"
    import_facts(home, GENTLE, root)
    first = consolidate(home, cfg(sharp_tiny_model_dir), gate=default_gate(home, cfg(sharp_tiny_model_dir)),
                        embedder=embedder, show_progress=False)
    db = sqlite3.connect(Paths(home).db)
    base_rows = db.execute("SELECT id, created_at FROM probe_results WHERE version = 'base'").fetchall()
    db.close()
    import_facts(home, COLLAPSE, root, "collapse.jsonl")
    collapse = cfg(sharp_tiny_model_dir, **COLLAPSE_TRAIN)
    second = consolidate(home, collapse, gate=default_gate(home, collapse), embedder=embedder, show_progress=False)
    return home, first, second, base_rows


def test_gentle_version_promoted_collapsed_version_rejected(gated):
    home, first, second, _ = gated
    assert first.status == "promoted" and first.version == "v0001", first.message
    assert second.status == "rejected" and second.version == "v0002", second.message
    assert "KL to the base" in second.message
    reg = line(home)
    assert reg.current() == "v0001"  # the served version did not change
    v2 = reg.get("v0002")
    assert v2.status == "rejected" and any("probes.max_kl" in r for r in v2.reasons)
    db = sqlite3.connect(Paths(home).db)
    unlearned = db.execute("SELECT COUNT(*) FROM turns WHERE consolidated_in IS NULL AND learn = 1").fetchone()[0]
    assert unlearned == 24  # the poisoned turns stay unconsolidated
    verdicts = {v: (acc, json.loads(m))
                for v, acc, m in db.execute("SELECT version, accepted, metrics FROM probe_verdicts")}
    assert verdicts["v0001"][0] == 1 and verdicts["v0002"][0] == 0
    kl1, kl2 = verdicts["v0001"][1]["kl"], verdicts["v0002"][1]["kl"]
    assert kl1 < 0.2 < kl2 and kl2 > 10 * kl1
    assert verdicts["v0001"][1]["canary_secrets"] == 1 and verdicts["v0001"][1]["canary_leaks"] == 0


def test_results_are_stored_per_version_with_suite_version_and_decoding(gated):
    home, _, _, base_rows = gated
    db = sqlite3.connect(Paths(home).db)
    rows = db.execute("SELECT version, suite, suite_version, decoding, run, score FROM probe_results").fetchall()
    by = {(v, s, r): (sv, json.loads(d), score) for v, s, sv, d, r, score in rows}
    for v in ("base", "v0001", "v0002"):
        sv, decoding, score = by[(v, "general-qa", "greedy")]
        assert sv.startswith("general-qa-v1@") and decoding == {"do_sample": False, "max_new_tokens": 16,
                                                                 "repetition_penalty": 1.1, "seed": 0}
    for v in ("v0001", "v0002"):
        assert {"kl", "perplexity", "canary-leaks", "instruct"} <= {s for (x, s, r) in by if x == v}
    assert by[("base", "acquisition/v0001", "greedy")] and by[("v0001", "acquisition/v0001", "greedy")]
    sampled = [by[("base", "general-qa", f"sample-{seed}")][1] for seed in (1, 2)]
    assert all(d["do_sample"] and d["temperature"] == 0.7 for d in sampled)
    # The base was probed once, by the first consolidation; the second reused every cached base result.
    after = db.execute("SELECT id, created_at FROM probe_results WHERE version = 'base'").fetchall()
    new_base = set(after) - set(base_rows)
    assert all(s not in ("general-qa", "instruct", "perplexity") for (s,) in db.execute(
        f"SELECT suite FROM probe_results WHERE id IN ({','.join(str(i) for i, _ in new_base) or 0})"))
    items = db.execute("SELECT COUNT(*) FROM probe_items i JOIN probe_results r ON r.id = i.result_id "
                       "WHERE r.version = 'v0001' AND r.suite = 'general-qa'").fetchone()[0]
    assert items == 48


def test_cli_probe_and_report(gated, tmp_path, sharp_tiny_model_dir, capsys):
    from chatbot.cli import main

    home = gated[0]
    cli = ["--home", str(home), "--config", str(toml(tmp_path / "tiny.toml", sharp_tiny_model_dir))]
    assert main([*cli, "probe", "--json"]) == 0
    served = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert served["version"] == "v0001" and served["accepted"] is True and served["reasons"] == []
    assert served["suites"]["general-qa"]["cached"] and served["suites"]["kl"]["cached"]  # nothing recomputed
    assert main([*cli, "probe", "--version", "v0002"]) == 1
    out = capsys.readouterr().out
    assert "gate: FAIL" in out and "KL to the base" in out and "general-qa" in out
    assert main([*cli, "probe", "--version", "v0042"]) == 2
    assert "no version 'v0042'" in capsys.readouterr().err

    report = tmp_path / "report.html"
    proc = chatbot(home, "report", str(report))  # a real process, as a user runs it
    assert f"wrote {report}" in proc.stdout
    page = report.read_text()
    assert page.count("<svg") == 2 and "v0002 (rejected)" in page and "Consolidation runs" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    assert SECRET not in page and "base → v0001" in page  # the served version's answers vs the base's


def test_gate_rejects_a_candidate_it_cannot_probe(tmp_path):
    from chatbot.core.config import Config
    from chatbot.core.registry import Version
    from chatbot.evaluation.gate import ProbeGate

    ok, reasons = ProbeGate(tmp_path / "home", Config())(Version("v0007", tmp_path, "candidate", 0.0))
    assert not ok and "the probes could not run" in reasons[0] and "v0007" in reasons[0]


def test_report_refuses_bad_paths(tmp_path, capsys):
    from chatbot.cli import main

    home = tmp_path / "home"
    home.mkdir()
    for bad, why in ((str(home / "report.html"), "inside the data home"),
                     (str(tmp_path / "link" / ".." / "home" / "x.html"), "inside the data home"),
                     (str(tmp_path / "missing" / "x.html"), "does not exist"),
                     (str(tmp_path / "report.txt"), "FILE.html"),
                     (str(tmp_path / "dir.html"), "is a folder")):
        if bad.endswith("dir.html"):
            (tmp_path / "dir.html").mkdir()
        (tmp_path / "link").mkdir(exist_ok=True)
        assert main(["--home", str(home), "report", bad]) == 2
        err = capsys.readouterr().err
        assert why in err and "chatbot report: error:" in err, (bad, err)
    assert not list(tmp_path.glob("*.html")) or (tmp_path / "dir.html").is_dir()
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() != 0:  # root may write anywhere
        assert main(["--home", str(home), "report", str(folder / "x.html")]) == 2
        assert "not writable" in capsys.readouterr().err
    ok = tmp_path / "empty.html"
    assert main(["--home", str(home), "report", str(ok)]) == 0  # a home with no versions yet: a page saying so
    assert "none yet" in ok.read_text() and "no data yet" in ok.read_text()
    assert stat.S_IMODE(ok.stat().st_mode) == 0o600  # it shows what users said: owner-only, like the database


def test_privacy_canary_rejects_a_version_that_learned_dont_learn_text(tmp_path, sharp_tiny_model_dir, embedder):
    """A bug that let a "don't learn" turn into training: simulated by training on it directly."""
    from chatbot.core.fsio import write_json_atomic
    from chatbot.evaluation.gate import judge
    from chatbot.learning.mix import Example
    from chatbot.learning.train import train_adapter
    from chatbot.serving.model import load_model

    home = tmp_path / "home"
    import_facts(home, GENTLE, tmp_path)
    config = cfg(sharp_tiny_model_dir, learning_rate=2e-2, epochs=40, max_seq_len=64)
    loaded = load_model(str(sharp_tiny_model_dir), quantization="4bit")
    leak = Example((("user", "Tell me something."), ("assistant", f"{SECRET} {SECRET} {SECRET}")), "new")
    result = train_adapter(loaded.model, loaded.tokenizer, [leak] * 8, config.train, tmp_path / "run",
                           quantized=True, show_progress=False)
    reg = line(home)
    staging = reg.staging()
    result.model.save_pretrained(str(staging))
    write_json_atomic(staging / "manifest.json", {"new_turn_ids": [], "continued_from": "base"})
    reg.commit(staging)

    probe, accepted, reasons = judge(home, config, "v0001")
    assert not accepted and any("privacy canary" in r for r in reasons), reasons
    leaks = probe.results["canary-leaks"]
    assert leaks.score >= 1 and all(SECRET in i["output"].lower() for i in leaks.items)
    assert not any(SECRET in i["output"] for i in probe.base["canary"].items)
