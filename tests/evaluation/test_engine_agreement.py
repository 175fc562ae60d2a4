"""The probe gate's thresholds were set on the transformers engine; the llama.cpp engine must score the shipped
retention suites within a stated tolerance of it on the same base, so a candidate judged through llama.cpp is
held to the same bar. Real embedded model: 4-bit NF4 through transformers (as served) against the Q4_1 GGUF
through llama.cpp (as served)."""
import pytest

from chatbot.core.config import Config
from chatbot.evaluation.gate import evaluate
from chatbot.evaluation.metrics import paired_changes, sign_test
from chatbot.evaluation.scoring import score_item
from chatbot.evaluation.suite import shipped_suites
from chatbot.serving.engine import open_engine
from chatbot.serving.model import load_model

pytest.importorskip("llama_cpp", reason="the llamacpp extra is installed by scripts/setup.sh")
pytestmark = pytest.mark.integration

# The gate's own rule, applied with one engine's answers as the "base" and the other's as the "candidate", in both
# directions: neither may look like lost ability (a drop past probes.max_qa_drop / max_instruct_drop with a sign
# test on the items that changed at p < probes.drop_significance). So engine numerics alone never decide a
# verdict: the two engines' answers differ by the flips of near ties, not by a level the gate would read as loss.
SUITES = {"qa": "general-qa", "instruct": "instruct"}


def scores(engine, suites, config) -> tuple[dict, dict]:
    """Per suite: score (points) and each probe's 0/1 item score."""
    p = config.probes
    out, items = {}, {}
    for name, suite in suites.items():
        replies = engine.generate_batch([[{"role": "user", "content": q.prompt}] for q in suite.probes],
                                        p.max_new_tokens, p.batch_size, do_sample=False,
                                        repetition_penalty=config.decoding.repetition_penalty,
                                        seed=config.decoding.seed)
        items[name] = {q.id: score_item(q, suite.kind, r) for q, r in zip(suite.probes, replies)}
        out[name] = 100.0 * sum(items[name].values()) / len(replies)
    return out, items


def verdict(base: tuple[dict, dict], candidate: tuple[dict, dict], probes) -> tuple[bool, list[str]]:
    (b, b_items), (c, c_items) = base, candidate
    changes = {}
    for name, suite in SUITES.items():
        losses, gains = paired_changes(b_items[name], c_items[name])
        changes[suite] = {"losses": losses, "gains": gains, "p": sign_test(losses, gains)}
    metrics = {"drops": {SUITES[n]: b[n] - c[n] for n in SUITES}, "changes": changes,
               "base_scores": {SUITES[n]: b[n] for n in SUITES}, "scores": {SUITES[n]: c[n] for n in SUITES}}
    return evaluate(metrics, probes)


def test_llamacpp_scores_the_retention_suites_like_transformers(model_cache):
    config = Config.from_dict({"model": {"cache_dir": str(model_cache)}})
    suites = {k: v for k, v in shipped_suites(config).items() if k in SUITES}
    loaded = load_model(config.model.source, config.model.quantization, config.model.compute_dtype,
                        config.model.cache_dir)
    transformers = open_engine(config, loaded, engine="transformers")
    llamacpp = open_engine(config, loaded, engine="llamacpp")
    try:
        t = scores(transformers, suites, config)
        c = scores(llamacpp, suites, config)
    finally:
        llamacpp.close()
    print(f"general QA {t[0]['qa']:.1f} (transformers) vs {c[0]['qa']:.1f} (llama.cpp), item changes "
          f"{paired_changes(t[1]['qa'], c[1]['qa'])}; instructions {t[0]['instruct']:.1f} vs {c[0]['instruct']:.1f}")
    assert verdict(t, c, config.probes)[0], verdict(t, c, config.probes)[1]
    assert verdict(c, t, config.probes)[0], verdict(c, t, config.probes)[1]
    assert t[0]["qa"] > 20 and c[0]["qa"] > 20  # both really answer (the base scores ~40 here)
