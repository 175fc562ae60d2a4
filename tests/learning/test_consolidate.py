"""Consolidation end to end on the tiny model: real SQLite, FAISS, peft, Trainer, bitsandbytes 4-bit."""
import json
import os
import signal
import subprocess
import sys
import time

from conftest import chatbot, import_facts, line, tiny_config

from chatbot.core.config import Config
from chatbot.core.lock import is_running, run_lock
from chatbot.core.paths import Paths
from chatbot.evaluation.gate import default_gate
from chatbot.learning.consolidate import consolidate
from chatbot.memory.served import rollback
from chatbot.runtime import open_runtime

FACTS = [
    {"messages": [{"role": "user", "content": "My dog is called Rex."},
                  {"role": "assistant", "content": "Lovely name!"}]},
    {"messages": [{"role": "user", "content": "I live in Lisbon."}, {"role": "assistant", "content": "Sunny city."}]},
    {"user": "bob", "messages": [{"role": "user", "content": "My favourite colour is green."},
                                 {"role": "assistant", "content": "Nice."}]},
    {"learn": False, "messages": [{"role": "user", "content": "My password is hunter2."},
                                  {"role": "assistant", "content": "Keep it secret."}]},
]
MORE = [{"messages": [{"role": "user", "content": "I work as a nurse."},
                      {"role": "assistant", "content": "Great job."}]}]


def tiny_cfg(tiny_model_dir, **train) -> Config:
    return tiny_config(tiny_model_dir, model={"quantization": "4bit"},
                       train={"epochs": 1, "batch_size": 4, "rehearsal_count": 2, "max_seq_len": 128, **train})


def write_toml(path, tiny_model_dir, quantization="4bit", epochs=1, extra=""):
    path.write_text(f'[model]\nsource = "{tiny_model_dir}"\nquantization = "{quantization}"\n'
                    f'[decoding]\nmax_new_tokens = 8\n'
                    f'[train]\nepochs = {epochs}\nmin_steps = 0\nbatch_size = 4\nrehearsal_count = 2\n'
                    f'max_seq_len = 128\n{extra}'
                    '[probes]\nnoise_runs = 0\n')
    return path


def fresh_tiny(tiny_model_dir, quantization="4bit"):
    from chatbot.serving.model import load_model
    return load_model(str(tiny_model_dir), quantization=quantization)


def test_noop_without_new_data(tmp_path, tiny_model_dir, embedder):
    cfg = tiny_cfg(tiny_model_dir)
    result = consolidate(tmp_path / "home", cfg, gate=default_gate(tmp_path / "home", cfg), embedder=embedder,
                         show_progress=False)
    assert result.status == "noop" and "nothing to consolidate" in result.message
    assert line(tmp_path / "home").names() == []


def test_without_rehearsal_the_mitigations_are_off_not_anchored_on_the_new_facts(tmp_path, tiny_model_dir, embedder):
    """train.rehearsal_count = 0 (rebuild: nothing replayed): distillation and EWC have nothing the model knew to
    anchor on, so the run trains without them (they used to anchor on the new facts themselves)."""
    home = tmp_path / "home"
    import_facts(home, FACTS[:2], tmp_path)
    cfg = tiny_cfg(tiny_model_dir, rehearsal_count=0, ewc_lambda=10.0)
    result = consolidate(home, cfg, gate=default_gate(home, cfg), loaded=fresh_tiny(tiny_model_dir),
                         embedder=embedder, show_progress=False)
    assert result.version, result.message
    version = line(home).get(result.version)
    assert "rehearsal" not in version.manifest["counts"] and version.metrics["steps"] >= 1
    assert "distill_penalty" not in version.metrics and "ewc_penalty" not in version.metrics


def test_continue_strategy_versions_hot_swap_and_replay(tmp_path, tiny_model_dir, tiny_loaded, embedder):
    """train.strategy = "continue": each version trains the served adapter further on new turns + replay."""
    home = tmp_path / "home"
    import_facts(home, FACTS, tmp_path)
    # The app is already running (base) when consolidation happens.
    rt = open_runtime(home, tiny_config(tiny_model_dir), loaded=fresh_tiny(tiny_model_dir, "none"), embedder=embedder)
    assert rt.chat.generator.adapter == "base"

    cfg = tiny_cfg(tiny_model_dir, strategy="continue")
    result = consolidate(home, cfg, gate=default_gate(home, cfg), loaded=fresh_tiny(tiny_model_dir),
                         embedder=embedder, show_progress=False)
    # One adapter per user, one after another (sorted by name), each through its own gate.
    assert result.status == "promoted", result.message
    assert [(r.user, r.status, r.version) for r in result.per_user] == [("bob", "promoted", "v0001"),
                                                                        ("me", "promoted", "v0002")]
    bob, mine = result.per_user
    assert bob.counts["new"] == 1 and mine.counts["new"] == 2 and mine.counts["augment"] >= 2
    assert mine.counts["rehearsal"] == 2 and "replay" not in mine.counts  # nothing old to replay yet
    reg = line(home)
    v1 = reg.get("v0002")
    assert reg.current() == "v0002" and v1.status == "promoted" and line(home, "bob").current() == "v0001"
    for f in ("adapter_model.safetensors", "adapter_config.json", "config.json", "manifest.json", "metrics.json"):
        assert (v1.path / f).exists(), f
    secret_ids = {t.id for t in rt.store.turns(4)}
    bob_ids = {t.id for t in rt.store.turns(3)}
    assert not (secret_ids | bob_ids) & set(v1.manifest["new_turn_ids"])  # neither "don't learn" nor bob's turns
    assert set(line(home, "bob").get("v0001").manifest["new_turn_ids"]) == bob_ids
    assert v1.metrics["steps"] >= 1 and 0 <= v1.metrics["padding_waste"] < 1
    assert json.loads((v1.path / "config.json").read_text())["base_model"]["quantization"] == "4bit"
    assert rt.store.counts()["unlearned"] == 0

    # The running app picks up each user's version before that user's next reply, without restart.
    events = list(rt.chat.send("me", "hello again"))
    assert events[0].adapter == "v0002"
    assert list(rt.chat.send("bob", "hi", conversation_learn=False))[0].adapter == "v0001"
    assert rt.chat.generator.loaded_adapters == ["v0002", "v0001"]

    # A second run continues from me's v0002 and replays old data; EWC on. Bob has nothing new: not retrained.
    import_facts(home, MORE, tmp_path, "more.jsonl")
    cfg2 = tiny_cfg(tiny_model_dir, ewc_lambda=10.0, replay_policy="nearest", strategy="continue")
    result2 = consolidate(home, cfg2, gate=default_gate(home, cfg2), loaded=fresh_tiny(tiny_model_dir),
                          embedder=embedder, show_progress=False)
    assert result2.status == "promoted" and result2.version == "v0003" and result2.user == "me", result2.message
    v2 = reg.get("v0003")
    assert v2.manifest["continued_from"] == "v0002" and v2.manifest["counts"]["replay"] >= 1
    assert v2.metrics["ewc_penalty"] > 0  # the adapter moved away from v0002 where the Fisher saw it matter
    assert set(v2.manifest["replay_turn_ids"]) <= set(v1.manifest["new_turn_ids"])
    assert list(rt.chat.send("me", "and again"))[0].adapter == "v0003"
    assert rollback(rt.store, reg) == "v0002"
    assert {t.consolidated_in for t in rt.store.turns_by_ids(v2.manifest["new_turn_ids"]).values()} == {None}
    assert list(rt.chat.send("me", "after rollback"))[0].adapter == "v0002"
    assert line(home, "bob").current() == "v0001"  # another user's rollback never touches bob's line
    rt.close()


def test_dry_run_and_lock_refusal_via_cli(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    import_facts(home, FACTS, tmp_path)
    cfg = write_toml(tmp_path / "tiny.toml", tiny_model_dir)
    proc = chatbot(home, "consolidate", "--dry-run", config=cfg)
    assert "would train on" in proc.stdout and "mix: " in proc.stdout and "[augment]" in proc.stdout
    assert line(home).names() == []

    with run_lock(home):
        assert is_running(home)
        proc = chatbot(home, "consolidate", config=cfg, check=False)
    assert proc.returncode == 2 and "already running" in proc.stderr
    assert not is_running(home)


def test_killed_run_leaves_served_version_untouched(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    import_facts(home, FACTS * 1, tmp_path)
    long_cfg = write_toml(tmp_path / "long.toml", tiny_model_dir, quantization="none", epochs=400)
    proc = subprocess.Popen([sys.executable, "-m", "chatbot", "--home", str(home), "--config", str(long_cfg),
                             "consolidate", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = Paths(home).runs
    deadline = time.time() + 180
    step = 0
    while time.time() < deadline and step < 2:
        for p in runs.glob("*/progress.json"):
            try:
                step = json.loads(p.read_text()).get("step") or 0
            except ValueError:
                pass
        time.sleep(0.2)
    assert step >= 2, "training never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for user in ("bob", "me"):
        assert line(home, user).current() == "base" and line(home, user).names() == []
    assert not is_running(home)  # the kernel released the lock

    ok = chatbot(home, "consolidate", "--json", "--quiet", config=write_toml(tmp_path / "short.toml", tiny_model_dir))
    result = json.loads(ok.stdout)  # stdout is the JSON object alone (no per-step Trainer logs)
    assert result["status"] == "promoted" and [r["version"] for r in result["per_user"]] == ["v0001", "v0002"]
    assert not list(Paths(home).adapters.rglob(".staging-*"))


def test_accelerate_launch_single_process_cpu(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    import_facts(home, FACTS, tmp_path)
    cfg = write_toml(tmp_path / "tiny.toml", tiny_model_dir, quantization="none")
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    proc = subprocess.run([accelerate, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "chatbot", "--home", str(home),
                           "--config", str(cfg), "consolidate", "--json", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1])["status"] == "promoted"
