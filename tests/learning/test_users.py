"""Per-user knowledge on the tiny model: each user's facts train that user's own adapter line, the served path picks
the requesting user's adapter, a shared fact reaches every user, and nothing one user said reaches another."""
from __future__ import annotations

import json

from conftest import import_facts, line, tiny_config

from chatbot.cli import main
from chatbot.core.lines import AdapterLines
from chatbot.core.paths import Paths
from chatbot.learning.consolidate import consolidate
from chatbot.memory.facts import FactStore
from chatbot.memory.store import Store
from chatbot.runtime import open_runtime


def conv(user: str, text: str) -> dict:
    return {"user": user, "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]}


SAID = [conv("ann", "My dog is called Rex."), conv("bob", "My dog is called Fido."),
        conv("bob", "Our wifi password is tulip42.")]
QUESTION = "What is my dog's name?"  # a question form of both dog facts


def cfg(tiny_model_dir):
    # the sharp tiny model (it can express confident distributions) memorises its user's Q/A pairs at this lr, with
    # the token-mean loss these settings were chosen for (with the per-example mean, the product's default since
    # session 13, a one-fact rebuild at 3e-3 × 16 epochs degenerated to "Your dog is is is ..." on this 2-layer model)
    return tiny_config(tiny_model_dir, train={"epochs": 16, "batch_size": 4, "rehearsal_count": 2, "max_seq_len": 96,
                                              "learning_rate": 3e-3, "distill_weight": 0.0, "loss_average": "token"},
                       decoding={"max_new_tokens": 12})


def logprob(model, tok, question: str, answer: str) -> float:
    """log p(answer | question), closed book."""
    import torch

    prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                     add_generation_prompt=True)
    n = len(tok(prompt, add_special_tokens=False)["input_ids"])
    ids = tok(prompt + answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1], -1)
    targets = ids[0, 1:]
    return float(logp[torch.arange(n - 1, len(targets)), targets[n - 1:]].sum())


def test_two_users_learn_apart_and_a_shared_fact_reaches_both(tmp_path, sharp_tiny_model_dir, embedder):
    from peft import PeftModel

    from chatbot.serving.model import load_model

    home = tmp_path / "home"
    import_facts(home, SAID, tmp_path)
    store = Store(Paths(home).db)
    wifi = [c.id for c in store.conversations(user="bob") if "wifi" in store.turns(c.id)[0].text][0]
    store.close()
    assert main(["--home", str(home), "share", "--conversation", str(wifi)]) == 0  # the admin shares it
    tiny_model_dir = sharp_tiny_model_dir
    config = cfg(tiny_model_dir)

    result = consolidate(home, config, gate=None, embedder=embedder, show_progress=False)
    assert [(r.user, r.status, r.version) for r in result.per_user] == [("ann", "promoted", "v0001"),
                                                                        ("bob", "promoted", "v0002")], result.message
    facts = FactStore(Paths(home).db)
    key = {f.id: f.key for f in facts.facts()}
    facts.close()
    ann, bob = line(home, "ann"), line(home, "bob")
    assert sorted(key[i] for i in ann.get("v0001").manifest["fact_ids"]) == ["Rex", "tulip42"]
    assert sorted(key[i] for i in bob.get("v0002").manifest["fact_ids"]) == ["Fido", "tulip42"]
    assert ann.get("v0001").manifest["owner"] == "ann" and ann.get("v0001").manifest["shared_turn_ids"]

    # The weights: each adapter raised its own user's value above the base far more than the other user's; the
    # shared fact is far more likely under both than under the base.
    loaded = load_model(str(tiny_model_dir), quantization="none")
    tok = loaded.tokenizer
    wifi_qa = ("What is our wifi password?", "Your wifi password is tulip42.")
    dog = {v: f"Your dog is called {v}." for v in ("Rex", "Fido")}
    base = {v: logprob(loaded.model, tok, QUESTION, a) for v, a in dog.items()}
    base["wifi"] = logprob(loaded.model, tok, *wifi_qa)
    model = PeftModel.from_pretrained(loaded.model, str(ann.current_path()), adapter_name="ann").eval()
    model.load_adapter(str(bob.current_path()), adapter_name="bob")
    gain = {}
    for user in ("ann", "bob"):
        model.set_adapter(user)
        gain[user] = {v: logprob(model, tok, QUESTION, a) - base[v] for v, a in dog.items()}
        assert logprob(model, tok, *wifi_qa) > base["wifi"] + 20, user
    assert gain["ann"]["Rex"] > gain["ann"]["Fido"] + 5 and gain["bob"]["Fido"] > gain["bob"]["Rex"] + 5, gain

    # The served path: each user is answered by their own adapter; the owner's value never reaches the other.
    rt = open_runtime(home, config, loaded=load_model(str(tiny_model_dir), quantization="none"), embedder=embedder)
    # (asked through the app's own path: ChatService.ask picks the asking user's adapter)
    try:
        answers = {u: rt.chat.ask(QUESTION, user=u, use_memory=False) for u in ("ann", "bob", "carol")}
    finally:
        rt.close()
    assert [answers[u]["adapter"] for u in ("ann", "bob", "carol")] == ["v0001", "v0002", "base"]
    assert "Rex" in answers["ann"]["answer"] and "Fido" in answers["bob"]["answer"], answers  # learned, visibly
    assert "Fido" not in answers["ann"]["answer"] and "Rex" not in answers["bob"]["answer"]  # never leaked
    assert not {"Rex", "Fido"} & set(answers["carol"]["answer"].replace(".", " ").split())

    # Unsharing: the next consolidation rebuilds ann's adapter without bob's wifi password (bob's keeps it).
    assert main(["--home", str(home), "share", "--conversation", str(wifi), "--off"]) == 0
    again = consolidate(home, config, gate=None, embedder=embedder, show_progress=False)
    assert again.user == "ann" and again.version == "v0003", again.message
    assert sorted(key[i] for i in ann.get("v0003").manifest["fact_ids"]) == ["Rex"] and bob.current() == "v0002"

    # Forgetting bob deletes his adapters; ann's adapter holds nothing of his (the wifi fact is private again), so
    # it stays untouched and keeps serving ann.
    weights = (ann.current_path() / "adapter_model.safetensors").read_bytes()
    assert main(["--home", str(home), "forget", "--user", "bob", "--yes"]) == 0
    assert AdapterLines(Paths(home).adapters, "me").users() == ["ann"]
    assert (ann.current_path() / "adapter_model.safetensors").read_bytes() == weights
    rt = open_runtime(home, config, loaded=load_model(str(tiny_model_dir), quantization="none"), embedder=embedder)
    try:
        after = rt.chat.ask(QUESTION, user="ann", use_memory=False)
    finally:
        rt.close()
    assert after["adapter"] == "v0003" and "Rex" in after["answer"]


def test_versions_promote_and_rollback_per_user(tmp_path, capsys):
    from chatbot.core.fsio import write_json_atomic

    home = tmp_path / "home"
    store = Store(Paths(home).db)
    turns = {u: store.add_turn(store.new_conversation(u), "user", f"{u} says hi") for u in ("ann", "bob")}
    lines = AdapterLines(Paths(home).adapters, "me")

    def version(user: str) -> str:
        reg = lines.line(user)
        staging = reg.staging()
        write_json_atomic(staging / "manifest.json", {"new_turn_ids": [turns[user]], "continued_from": "base"})
        return reg.commit(staging).name

    a1, b1, a2 = version("ann"), version("bob"), version("ann")
    assert (a1, b1, a2) == ("v0001", "v0002", "v0003")  # names are unique across users
    for v in (a1, b1, a2):
        assert main(["--home", str(home), "promote", v]) == 0  # a version name says whose it is
    assert main(["--home", str(home), "promote", b1, "--user", "ann"]) == 2  # not ann's
    assert lines.line("ann").current() == a2 and lines.line("bob").current() == b1
    assert store.turn(turns["ann"]).consolidated_in == a2 and store.turn(turns["bob"]).consolidated_in == b1

    capsys.readouterr()
    assert main(["--home", str(home), "versions", "--user", "ann", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in listed["versions"]] == [a1, a2] and listed["served"] == {"ann": a2}
    assert main(["--home", str(home), "rollback"]) == 2  # two users have adapters: whose?
    assert "--user" in capsys.readouterr().err
    assert main(["--home", str(home), "rollback", "--user", "ann"]) == 0
    assert lines.line("ann").current() == a1 and lines.line("bob").current() == b1  # bob's line untouched
    assert store.turn(turns["bob"]).consolidated_in == b1
    assert main(["--home", str(home), "promote", "base", "--user", "bob"]) == 0
    assert lines.line("bob").current() == "base" and store.turn(turns["bob"]).consolidated_in is None
    assert lines.line("ann").current() == a1 and store.turn(turns["ann"]).consolidated_in == a1

    # Forgetting bob deletes his line; the names he held are never handed out again.
    assert main(["--home", str(home), "forget", "--user", "bob", "--yes"]) == 0
    assert "no other user's adapter was trained on their data" in capsys.readouterr().out
    assert lines.users() == ["ann"] and version("ann") == "v0004"
    store.close()


def test_a_home_from_before_per_user_lines_is_moved_to_the_default_user(tmp_path):
    from chatbot.core.registry import Registry
    from chatbot.memory.served import remark_all

    home = tmp_path / "home"
    store = Store(Paths(home).db)
    me = store.add_turn(store.new_conversation("me"), "user", "mine")
    other = store.add_turn(store.new_conversation("ann"), "user", "ann's")
    legacy = Registry(Paths(home).adapters)  # the old layout: versions right under adapters/
    staging = legacy.staging()
    (staging / "manifest.json").write_text(json.dumps({"new_turn_ids": [me, other], "continued_from": "base"}))
    legacy.promote(legacy.commit(staging).name)
    store.mark_consolidated([me, other], "v0001")

    lines = AdapterLines(Paths(home).adapters, "me")
    assert lines.users() == ["me"] and lines.line("me").current() == "v0001"
    assert not (Paths(home).adapters / "v0001").exists() and not (Paths(home).adapters / "CURRENT").exists()
    remark_all(store, lines)  # consolidation does this first: ann's turns go to ann's own (empty) line
    assert store.turn(me).consolidated_in == "v0001" and store.turn(other).consolidated_in is None
    store.close()
