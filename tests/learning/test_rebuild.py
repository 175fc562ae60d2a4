"""The default strategy, rebuild, on the tiny model: each version is a fresh LoRA on the base trained from the
knowledge ledger; a correction replaces the old value in the training data, the weights and the probes; a forgotten
fact is dropped by the next run; the acquisition probes never ask a question the training saw."""
from __future__ import annotations

import json

import pytest
from conftest import chatbot, import_facts, line, tiny_config

from chatbot.core.paths import Paths
from chatbot.evaluation.acquisition import FRAMES, acquisition_suite
from chatbot.evaluation.gate import default_gate
from chatbot.learning import consolidate as consolidate_module
from chatbot.learning.consolidate import consolidate
from chatbot.memory.facts import FactStore
from chatbot.memory.served import rollback
from chatbot.memory.store import Store


def conv(user: str, text: str) -> dict:
    return {"user": user, "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]}


ROUND1 = [conv("ann", "My dog is called Rex."), conv("ann", "I live in Bergen."), conv("bob", "My cat is called Tom."),
          conv("bob", "What's the capital of Peru?")]
ROUND2 = [conv("ann", "Sorry, I got that wrong: my dog is called Max, not Rex.")]


def cfg(tiny_model_dir, **train):
    # lr and epochs high enough that the random 2-layer model memorises the Q/A pairs; rehearsal small
    return tiny_config(tiny_model_dir, train={"epochs": 12, "batch_size": 4, "rehearsal_count": 2,
                                              "max_seq_len": 96, "learning_rate": 3e-3, **train})


@pytest.fixture
def spy_training(monkeypatch):
    """Record the examples each run trains on (the real training still runs)."""
    seen: list[list] = []
    real = consolidate_module.train_adapter

    def recording(model, tokenizer, examples, *args, **kwargs):
        seen.append(list(examples))
        return real(model, tokenizer, examples, *args, **kwargs)

    monkeypatch.setattr(consolidate_module, "train_adapter", recording)
    return seen


def answer_logprob(tiny_model_dir, home, question: str, answer: str, user: str = "ann") -> float:
    """log p(answer | question) under the served weights (base + promoted adapter), closed book."""
    import torch
    from peft import PeftModel

    from chatbot.serving.model import load_model

    loaded = load_model(str(tiny_model_dir), quantization="none")
    model = PeftModel.from_pretrained(loaded.model, str(line(home, user).current_path())).eval()
    tok = loaded.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                     add_generation_prompt=True)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = tok(prompt + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1], -1)
    targets = ids[0, 1:]
    return float(logp[torch.arange(len(p_ids) - 1, len(targets)), targets[len(p_ids) - 1:]].sum())


def test_a_correction_is_learned_and_the_old_value_dropped(tmp_path, tiny_model_dir, embedder, spy_training):
    home = tmp_path / "home"
    config = cfg(tiny_model_dir)
    import_facts(home, ROUND1, tmp_path)
    r1 = consolidate(home, config, gate=default_gate(home, config), embedder=embedder, show_progress=False)
    assert r1.status == "promoted", r1.message
    assert [(x.user, x.version) for x in r1.per_user] == [("ann", "v0001"), ("bob", "v0002")]
    registry = line(home, "ann")
    v1 = registry.get("v0001")
    assert v1.manifest["strategy"] == "rebuild" and v1.manifest["continued_from"] == "base"
    assert len(v1.manifest["fact_ids"]) == 2  # Rex, Bergen: ann's facts only
    assert len(line(home, "bob").get("v0002").manifest["fact_ids"]) == 1  # Tom; bob's question is no fact
    trained1 = {e.messages[1][1] for e in spy_training[0] if e.source != "rehearsal"}
    assert "Your dog is called Rex." in trained1 and not any("Tom" in a for a in trained1)
    assert "Your cat is called Tom." in {e.messages[1][1] for e in spy_training[1]}

    import_facts(home, ROUND2, tmp_path, "round2.jsonl")
    r2 = consolidate(home, config, gate=default_gate(home, config), embedder=embedder, show_progress=False)
    assert r2.status == "promoted" and r2.user == "ann" and r2.version == "v0003", r2.message  # bob: nothing new
    v2 = registry.get("v0003")
    assert v2.manifest["continued_from"] == "base" and v2.manifest["rebuilt_after"] == "v0001"
    trained2 = [e.messages[1][1] for e in spy_training[2] if e.source != "rehearsal"]
    assert "Your dog is called Max." in trained2 and not any("Rex" in a for a in trained2)
    assert any("Bergen" in a for a in trained2)  # the other facts are trained again: the version holds them all

    facts = FactStore(Paths(home).db)
    by_key = {f.key: f for f in facts.facts()}
    assert by_key["Rex"].status == "superseded" and by_key["Max"].learned_in == "v0003"
    assert by_key["Rex"].learned_in is None  # v0001 held it, but the served rebuild dropped it
    assert by_key["Tom"].learned_in == "v0002"  # bob's line
    store = Store(Paths(home).db)
    assert store.counts()["unlearned"] == 0  # every turn is held by v0003 or bob's v0002 (held_turn_ids)

    # the probe of the corrected fact wants the new value and fails on the old one; no probe reuses a trained question
    suite = acquisition_suite(store, registry, "v0003", 24)
    max_probe = next(p for p in suite.probes if p.accept == ("Max",))
    assert max_probe.reject == ("Rex",) and max_probe.id.endswith("-corrected")
    trained_questions = {e.messages[0][1] for run in spy_training for e in run}
    for p in suite.probes:
        assert p.prompt not in trained_questions
        inner = next(p.prompt.replace(f.split("{q}")[0], "").replace(f.split("{q}")[1], "")
                     for f in FRAMES if p.prompt.startswith(f.split("{q}")[0]) and p.prompt.endswith(f.split("{q}")[1]))
        assert inner not in trained_questions, (inner, p.prompt)

    # closed book, the served weights prefer the new value (a random 2-layer model cannot be asked to generate it
    # reliably; tests/test_integration.py asks the embedded model)
    question = "What is my dog called?"
    assert answer_logprob(tiny_model_dir, home, question, "Your dog is called Max.") > \
        answer_logprob(tiny_model_dir, home, question, "Your dog is called Rex.")

    # rollback serves v0001 again: the correction's turn is new again and Rex is what v0001 holds
    assert rollback(store, registry) == "v0001"
    by_key = {f.key: f for f in facts.facts()}
    assert by_key["Max"].learned_in is None and by_key["Rex"].learned_in == "v0001"
    assert store.counts()["unlearned"] == 2  # the correction's turns (message and reply) are new again
    facts.close()
    store.close()


def test_forgetting_a_fact_rebuilds_without_it(tmp_path, tiny_model_dir, embedder, spy_training):
    home = tmp_path / "home"
    config = cfg(tiny_model_dir, epochs=1)
    import_facts(home, ROUND1, tmp_path)
    assert consolidate(home, config, gate=None, embedder=embedder, show_progress=False).status == "promoted"
    facts = FactStore(Paths(home).db)
    tom = next(f for f in facts.facts() if f.key == "Tom")
    out = chatbot(home, "facts", "forget", str(tom.id), "--json")
    assert out.returncode == 0 and json.loads(out.stdout.splitlines()[-1]) == {"forgotten": tom.id}
    # nothing new was said, but the ledger changed: the next run rebuilds without the fact
    r = consolidate(home, config, gate=None, embedder=embedder, show_progress=False)
    # bob's only fact is gone: the exact adapter of an empty ledger is the base itself
    assert r.status == "promoted" and r.user == "bob" and r.version == "base", r.message
    assert line(home, "bob").current() == "base" and line(home, "ann").current() == "v0001"
    bergen = next(f for f in facts.facts() if f.key == "Bergen")
    assert chatbot(home, "facts", "forget", str(bergen.id)).returncode == 0
    r = consolidate(home, config, gate=None, embedder=embedder, show_progress=False)
    assert r.status == "promoted" and r.user == "ann" and r.version == "v0003", r.message
    assert not any("Bergen" in e.text() for e in spy_training[-1]) and any("Rex" in e.text() for e in spy_training[-1])
    assert bergen.id not in line(home, "ann").get("v0003").manifest["fact_ids"]
    assert consolidate(home, config, gate=None, embedder=embedder, show_progress=False).status == "noop"
    facts.close()


def test_facts_cli_lists_corrects_and_refuses_bad_input(tmp_path):
    home = tmp_path / "home"
    import_facts(home, ROUND1, tmp_path)
    out = chatbot(home, "facts", "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout.splitlines()[-1])["facts"]
    assert {(f["owner"], f["key"], f["status"]) for f in listed} == {
        ("ann", "Rex", "pending"), ("ann", "Bergen", "pending"), ("bob", "Tom", "pending")}
    rex = next(f for f in listed if f["key"] == "Rex")
    out = chatbot(home, "facts", "correct", str(rex["id"]), "Max")
    assert out.returncode == 0 and "Your dog is called Max." in out.stdout
    out = chatbot(home, "facts", "--user", "ann")
    assert "Max" in out.stdout and "Rex" not in out.stdout
    assert "superseded by" in chatbot(home, "facts", "--all", "--user", "ann").stdout
    assert chatbot(home, "facts", "--user", "bob", "--json").stdout.count('"owner": "bob"') == 1
    for bad, says in ((["correct", "999", "x"], "no fact 999"), (["correct"], "give the fact ID"),
                      (["correct", str(rex["id"]), ""], "")):
        out = chatbot(home, "facts", *bad, check=False)
        assert out.returncode == 2 and says in out.stderr, out.stderr


def test_rehearsal_can_feed_the_distillation_only(tmp_path, tiny_model_dir, embedder, spy_training, monkeypatch):
    """train.rehearsal_sft = false: the rehearsal answers are no SFT targets (the run's steps follow the facts
    alone), yet every rehearsal example still reaches the distillation to the base."""
    from chatbot.learning.distill import Distill

    distilled: list[int] = []
    real = Distill.before_training

    def recording(self, model, batches):
        batches = list(batches)
        distilled.append(sum(int(b["input_ids"].shape[0]) for b in batches))
        return real(self, model, batches)

    monkeypatch.setattr(Distill, "before_training", recording)
    home = tmp_path / "home"
    import_facts(home, ROUND1[:2], tmp_path)
    r = consolidate(home, cfg(tiny_model_dir, epochs=1, rehearsal_sft=False, distill_weight=1.0), gate=None,
                    embedder=embedder, show_progress=False)
    assert r.status == "promoted", r.message
    assert spy_training[-1] and {e.source for e in spy_training[-1]} == {"augment"}
    assert distilled == [2]  # rehearsal_count 2

    # the default (rehearsal_sft = true) trains them as SFT targets too
    import_facts(home, [conv("ann", "My sister is called Ana.")], tmp_path)
    consolidate(home, cfg(tiny_model_dir, epochs=1, distill_weight=1.0), gate=None, embedder=embedder,
                show_progress=False)
    assert sum(e.source == "rehearsal" for e in spy_training[-1]) == 2
