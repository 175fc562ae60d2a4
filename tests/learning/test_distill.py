"""Distillation to the base (chatbot.learning.distill) on the tiny model with a real peft LoRA: zero at the start
of a fresh adapter (the model is the base), positive and differentiable once the adapter moved, computed against
the base even when an adapter is loaded, and only at the answer positions."""
import pytest
import torch

from chatbot.core.config import TrainConfig
from chatbot.learning.distill import Distill
from chatbot.learning.train import attach_adapter, tokenize_example


def batch(tok, answer="Paris is the capital of France."):
    ex = tokenize_example(tok, [{"role": "user", "content": "What is the capital of France?"},
                                {"role": "assistant", "content": answer}], 96)
    return {k: torch.tensor([v]) for k, v in ex.items()}


def test_kl_to_the_base_is_zero_at_start_and_grows_when_the_adapter_moves(sharp_tiny_model_dir):
    from chatbot.serving.model import load_model

    loaded = load_model(str(sharp_tiny_model_dir), quantization="none")
    model = attach_adapter(loaded.model, TrainConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0), None, False)
    model.eval()
    hook = Distill(weight=2.0, top_k=16)
    hook.before_training(model, [batch(loaded.tokenizer)])
    [(_, idx, probs, mask)] = hook.targets
    assert idx.shape[-1] == 16 and torch.allclose(probs.sum(-1), torch.ones(()))
    labels = batch(loaded.tokenizer)["labels"][:, 1:]
    assert torch.equal(mask, labels != -100) and 0 < int(mask.sum()) < mask.numel()  # answer tokens only
    assert abs(float(hook.penalty(model))) < 1e-5  # a fresh LoRA (B = 0) is the base

    with torch.no_grad():  # move the adapter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 2.0)
    moved = hook.penalty(model)
    assert float(moved) > 1e-3
    moved.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_" in n)

    # the targets come from the base with the adapter switched off, whatever adapter is loaded meanwhile
    again = Distill(weight=2.0, top_k=16)
    again.before_training(model, [batch(loaded.tokenizer)])
    assert torch.equal(again.targets[0][1], idx) and torch.allclose(again.targets[0][2], probs, atol=1e-5)
    hook.after_training(model)
    assert float(hook.penalty(model)) == 0.0


def test_in_the_batch_the_penalty_equals_a_pass_of_its_own(sharp_tiny_model_dir):
    """batch_penalty reads a row's KL from the training batch's logits (padded beside a longer example, which is
    no anchor): the same value and gradient as the pass of its own on that example alone; a batch without an
    anchor has no penalty."""
    from transformers import DataCollatorForSeq2Seq

    from chatbot.serving.model import load_model

    loaded = load_model(str(sharp_tiny_model_dir), quantization="none")
    tok = loaded.tokenizer
    model = attach_adapter(loaded.model, TrainConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0), None, False)
    model.eval()
    anchor = batch(tok, "Paris.")
    hook = Distill(weight=2.0, top_k=16, in_batch=True)
    hook.before_training(model, [anchor])
    with torch.no_grad():  # move the adapter, so the KL is not zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 2.0)
    alone = hook.penalty(model)

    longer = tokenize_example(tok, [{"role": "user", "content": "Tell me about rivers."},
                                    {"role": "assistant", "content": "Rivers carry water to the sea. " * 4}], 96)
    rows = [longer, {k: v[0].tolist() for k, v in anchor.items()}]
    padded = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")(rows)
    assert padded["input_ids"].shape[1] > anchor["input_ids"].shape[1]  # the anchor row is padded
    logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    in_batch = hook.batch_penalty(logits, padded["attention_mask"], torch.tensor([-1, 0]))
    assert float(alone) > 1e-3 and float(in_batch) == pytest.approx(float(alone), rel=1e-4)
    in_batch.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_" in n)
    none = hook.batch_penalty(logits.detach(), padded["attention_mask"], torch.tensor([-1, -1]))
    assert float(none) == 0.0
