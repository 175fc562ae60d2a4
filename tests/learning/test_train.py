"""Training on a 4-bit model that has already generated (the consolidation job answers rehearsal prompts with the
same model it then trains). bitsandbytes repacks 4-bit weights into an inference-only layout on CPUs with
AVX512-BF16 after an eval-mode forward; training through that layout passes no gradient through the base layers
(a silent failure that kept the embedded model from learning any stated fact on CPU)."""
from __future__ import annotations

import dataclasses

import bitsandbytes as bnb
import pytest
import torch

from chatbot.core.config import TrainConfig
from chatbot.learning.mix import Example
from chatbot.learning.train import make_4bit_trainable_on_cpu, planned_steps, run_epochs, train_adapter
from chatbot.serving.model import load_model

EXAMPLES = [Example((("user", "What is my dog called?"), ("assistant", "Your dog is called Rex.")), "augment")] * 8
CFG = TrainConfig(learning_rate=1e-2, epochs=2, batch_size=2, lora_dropout=0.0, max_seq_len=64, min_steps=0)


def _packed(model) -> int:
    return sum(bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False))
               for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))


def _generate(loaded) -> None:
    ids = loaded.tokenizer("Hello", return_tensors="pt")
    with torch.no_grad():
        loaded.model.generate(**ids, max_new_tokens=2, do_sample=False)


def test_training_after_generation_matches_training_a_fresh_model(tiny_model_dir, model_cache, tmp_path):
    fresh = load_model(str(tiny_model_dir), "4bit", "float32", model_cache)
    expected = train_adapter(fresh.model, fresh.tokenizer, EXAMPLES, CFG, tmp_path / "a", show_progress=False)

    warm = load_model(str(tiny_model_dir), "4bit", "float32", model_cache)
    _generate(warm)
    if not _packed(warm.model):
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes does not repack, nothing to undo")
    got = train_adapter(warm.model, warm.tokenizer, EXAMPLES, CFG, tmp_path / "b", show_progress=False)
    assert _packed(warm.model) == 0
    a, b = expected.metrics["loss_curve"], got.metrics["loss_curve"]
    assert a[-1] < a[0] - 0.5, a  # the fixture trains visibly, so a broken gradient would show
    assert b == pytest.approx(a, rel=0.02, abs=0.02), (a, b)


def test_unpacking_is_idempotent_and_stops_repacking(tiny_model_dir, model_cache):
    loaded = load_model(str(tiny_model_dir), "4bit", "float32", model_cache)
    _generate(loaded)
    before = _packed(loaded.model)
    assert make_4bit_trainable_on_cpu(loaded.model) == before
    assert make_4bit_trainable_on_cpu(loaded.model) == 0
    _generate(loaded)  # eval mode again: must not repack a model that is being trained
    assert _packed(loaded.model) == 0


def test_max_steps_caps_a_large_mix_and_leaves_a_small_one_alone(tiny_model_dir, model_cache, tmp_path):
    # 8 examples, batch 2, 2 epochs = 8 steps. A cap of 3 stops there; a cap above 8 changes nothing.
    capped_cfg = dataclasses.replace(CFG, max_steps=3)
    assert planned_steps(len(EXAMPLES), capped_cfg) == 3 and planned_steps(len(EXAMPLES), CFG) == 8
    loaded = load_model(str(tiny_model_dir), "4bit", "float32", model_cache)
    capped = train_adapter(loaded.model, loaded.tokenizer, EXAMPLES, capped_cfg, tmp_path / "a", show_progress=False)
    assert capped.metrics["steps"] == 3 and capped.metrics["capped_at_max_steps"]
    assert capped.metrics["epochs"] == 0.75 and len(capped.metrics["loss_curve"]) == 3

    loaded = load_model(str(tiny_model_dir), "4bit", "float32", model_cache)
    full = train_adapter(loaded.model, loaded.tokenizer, EXAMPLES, dataclasses.replace(CFG, max_steps=100),
                         tmp_path / "b", show_progress=False)
    assert full.metrics["steps"] == 8 and not full.metrics["capped_at_max_steps"] and full.metrics["epochs"] == 2


def test_min_steps_gives_a_small_mix_more_epochs(tiny_model_dir, model_cache, tmp_path):
    # one fact = two examples = one batch: 2 epochs would be 2 steps; min_steps 6 makes it 6 epochs of it
    cfg = dataclasses.replace(CFG, min_steps=6)
    assert run_epochs(2, cfg) == 6 and planned_steps(2, cfg) == 6
    assert run_epochs(len(EXAMPLES), cfg) == 2 and planned_steps(len(EXAMPLES), cfg) == 8  # a larger mix: unchanged
    assert planned_steps(2, dataclasses.replace(cfg, max_steps=4)) == 4  # the cap still wins
    loaded = load_model(str(tiny_model_dir), "none", "float32", model_cache)
    out = train_adapter(loaded.model, loaded.tokenizer, EXAMPLES[:2], cfg, tmp_path / "a", show_progress=False)
    assert out.metrics["steps"] == 6 and out.metrics["epochs"] == 6 and not out.metrics["capped_at_max_steps"]


def test_distillation_batches_follow_distill_batch_size(tiny_model_dir, model_cache, tmp_path):
    # train.distill_batch_size: the rehearsal examples of each step's KL penalty, apart from the SFT batch size
    from chatbot.learning.distill import Distill

    rehearsal = [Example((("user", f"Name a colour, please ({i})."), ("assistant", "Blue, like the sky.")),
                         "rehearsal") for i in range(5)]
    class Recording(Distill):
        """Records how many rehearsal examples each penalty (each step's, then the final one) is computed on."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen: list[int] = []

        def penalty(self, model):
            if self.targets:
                self.seen.append(int(self.targets[self.calls % len(self.targets)][0]["input_ids"].shape[0]))
            return super().penalty(model)

    loaded = load_model(str(tiny_model_dir), "none", "float32", model_cache)
    sizes = {}
    for size in (0, 1):
        hook = Recording(1.0, size, top_k=8)
        out = train_adapter(loaded.model, loaded.tokenizer, EXAMPLES, CFG, tmp_path / str(size), quantized=False,
                            hooks=[hook], hook_examples=rehearsal, show_progress=False)
        out.model.unload()
        sizes[size] = hook.seen
    assert sizes[0][:3] == [2, 2, 1] and len(sizes[0]) == 8 + 1  # CFG.batch_size 2: 3 batches of 5 examples
    assert set(sizes[1]) == {1} and len(sizes[1]) == 8 + 1  # one example per step (8 steps + the final penalty)


def test_mlp_targets_the_feed_forward_layers_of_any_architecture(tiny_model_dir, model_cache):
    # train.target_modules = "mlp": peft has no such option, so lora_targets resolves it per architecture
    from transformers import GPT2Config, GPT2LMHeadModel

    from chatbot.learning.train import attach_adapter, lora_targets

    loaded = load_model(str(tiny_model_dir), "none", "float32", model_cache)
    assert lora_targets(loaded.model, "mlp") == ["down_proj", "gate_proj", "up_proj"]  # Llama family
    assert lora_targets(loaded.model, "q_proj, v_proj") == ["q_proj", "v_proj"]
    assert lora_targets(loaded.model, "all-linear") == "all-linear"
    model = attach_adapter(loaded.model, dataclasses.replace(CFG, target_modules="mlp"), None, quantized=False)
    trained = {n.split(".lora_")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(".mlp." in n for n in trained)
    assert len(trained) == 3 * loaded.model.config.num_hidden_layers
    model.unload()

    # GPT-2 also names a projection of its attention c_proj: the block's layers are named by their full paths
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32))
    assert lora_targets(gpt2, "mlp") == ["transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj",
                                         "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj"]
    # a model without a feed-forward block of that name: every linear layer
    assert lora_targets(torch.nn.Sequential(torch.nn.Linear(4, 4)), "mlp") == "all-linear"


def test_example_mean_loss_weighs_every_example_alike(sharp_tiny_model_dir, model_cache):
    # A short answer batched with a long one: the token mean is dominated by the long answer, the example mean
    # is the mean of the two examples' own losses (each computed alone), and one example gives the token mean.
    from transformers import DataCollatorForSeq2Seq

    from chatbot.learning.train import IGNORE, example_mean_loss, tokenize_example

    loaded = load_model(str(sharp_tiny_model_dir), "none", "float32", model_cache)
    tok, model = loaded.tokenizer, loaded.model
    short = [{"role": "user", "content": "Dog?"}, {"role": "assistant", "content": "Rex."}]
    long = [{"role": "user", "content": "Tell me about rivers."},
            {"role": "assistant", "content": " ".join(["Rivers carry water from hills to the sea."] * 8)}]
    data = [tokenize_example(tok, m, 256) for m in (short, long)]
    collate = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE, return_tensors="pt")
    with torch.no_grad():
        alone = [float(model(**collate([d])).loss) for d in data]
        batch = collate(data)
        token_mean = float(model(**batch).loss)
        example_mean = float(example_mean_loss(model, batch)[0])
        assert float(example_mean_loss(model, collate([data[0]]))[0]) == pytest.approx(alone[0], rel=1e-5)
        cut = dict(batch, labels=torch.full_like(batch["labels"], IGNORE))  # every answer cut off by max_seq_len
        assert float(example_mean_loss(model, cut)[0]) == 0.0
    assert example_mean == pytest.approx(sum(alone) / 2, rel=1e-4)
    assert abs(token_mean - example_mean) > 1e-3  # the two averages differ when the lengths do


def test_train_config_loss_average_is_a_choice():
    from chatbot.core.config import ConfigError

    assert TrainConfig(loss_average="token").loss_average == "token"
    with pytest.raises(ConfigError, match="loss_average"):
        TrainConfig(loss_average="batch")


def test_hooks_never_anchor_on_the_training_examples(tiny_loaded, tmp_path):
    """EWC and distillation are anchored on rehearsal or replayed examples; without them train_adapter refuses to
    run them (it used to fall back to the training examples: distillation then pulled every step away from the new
    facts, back to the base)."""
    from chatbot.learning.distill import Distill

    with pytest.raises(ValueError, match="hook_examples"):
        train_adapter(tiny_loaded.model, tiny_loaded.tokenizer, EXAMPLES, CFG, tmp_path / "a", quantized=False,
                      hooks=[Distill(1.0)], show_progress=False)
    assert not hasattr(tiny_loaded.model, "peft_config")  # refused before any adapter was attached


def test_distillation_in_the_batch_reuses_the_batch_where_it_can(tiny_model_dir, model_cache, tmp_path):
    """train.distill_in_batch: the rehearsal answers are training examples, so a step whose batch holds one takes
    its KL from those rows (no forward pass of its own); a step whose batch holds none still gets the penalty,
    from a pass of its own; where the anchors are no training examples, every step falls back to that pass."""
    from chatbot.learning.distill import Distill

    rehearsal = [Example((("user", f"Name a colour, please ({i})."), ("assistant", "Blue, like the sky.")),
                         "rehearsal") for i in range(3)]

    class Recording(Distill):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.passes, self.rows, self.batches = 0, [], 0

        def penalty(self, model):
            self.passes += 1
            return super().penalty(model)

        def batch_penalty(self, logits, attention_mask, anchors):
            self.rows += [a for a in anchors.tolist() if a >= 0]
            self.batches += 1
            return super().batch_penalty(logits, attention_mask, anchors)

    loaded = load_model(str(tiny_model_dir), "none", "float32", model_cache)
    hook = Recording(1.0, 1, top_k=8, in_batch=True)
    out = train_adapter(loaded.model, loaded.tokenizer, EXAMPLES + rehearsal, CFG, tmp_path / "a", quantized=False,
                        hooks=[hook], hook_examples=rehearsal, show_progress=False)
    out.model.unload()
    assert out.metrics["steps"] == 12  # 11 examples, batches of 2, 2 epochs
    assert sorted(hook.rows) == [0, 0, 1, 1, 2, 2]  # every rehearsal answer, once an epoch, in its own batch
    assert 3 <= hook.batches <= 6  # the batches that hold a rehearsal answer: no pass of their own
    assert hook.passes == out.metrics["steps"] - hook.batches + 1  # every other step, and the final metric
    assert "distill_penalty" in out.metrics

    fallback = Recording(1.0, 1, top_k=8, in_batch=True)
    out = train_adapter(loaded.model, loaded.tokenizer, EXAMPLES, CFG, tmp_path / "b", quantized=False,
                        hooks=[fallback], hook_examples=rehearsal, show_progress=False)
    out.model.unload()
    assert not fallback.in_batch and fallback.passes == out.metrics["steps"] + 1 and not fallback.rows
