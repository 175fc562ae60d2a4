"""Distillation to the frozen base on the rehearsal prompts, as a training hook: the loss gets
weight · KL(base ‖ model) over the next-token distributions at the answer positions of the rehearsal examples.

Rehearsal as plain SFT teaches only the base's greedy tokens; the gate measures the whole distribution (KL to the
base on general text), and so does this penalty. The base's distributions are computed once before training, with
the adapter switched off, and kept as their top TOP_K tokens plus one bucket for the rest of the vocabulary (the KL
between these k+1-way distributions is zero when the model is the base and counts mass that moves off the base's
top tokens): 16 prompts × ~120 answer tokens × 65 entries, a few MB instead of the 49k-token vocabulary. Each
training step then costs one more forward and backward pass, on one rehearsal batch of train.distill_batch_size
examples (they are cycled)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

IGNORE = -100
TOP_K = 64


class Distill:
    name = "distill"

    def __init__(self, weight: float, batch_size: int = 0, top_k: int = TOP_K):
        self.weight = float(weight)
        self.batch_size = batch_size  # rehearsal examples per step's penalty (0: the training batch size)
        self.top_k = top_k
        self.targets: list[tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.calls = 0

    def before_training(self, model: torch.nn.Module, batches: Iterable[dict]) -> None:
        """The base's top-k next-token distributions on every batch (the adapter disabled)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        off = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
        with torch.no_grad(), off:
            for batch in batches:
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
                top = torch.log_softmax(logits.float(), -1).topk(self.top_k, dim=-1)
                probs = _with_rest(top.values.exp())
                mask = batch["labels"][:, 1:] != IGNORE
                self.targets.append(({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
                                     top.indices, probs, mask))
        model.train(was_training)

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """weight · mean over answer tokens of KL(base ‖ model), on the next rehearsal batch."""
        if not self.targets:
            return torch.zeros(())
        inputs, idx, p_base, mask = self.targets[self.calls % len(self.targets)]
        self.calls += 1
        logits = model(**inputs).logits[:, :-1]
        q = _with_rest(torch.log_softmax(logits.float(), -1).gather(-1, idx).exp())
        kl = (p_base * (torch.log(p_base.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(-1)
        return self.weight * kl[mask].mean() if mask.any() else kl.sum() * 0.0

    def after_training(self, model: torch.nn.Module) -> None:
        self.targets = []


def _with_rest(top_probs: torch.Tensor) -> torch.Tensor:
    """[..., k] probabilities of the top tokens → [..., k + 1] with the rest of the vocabulary as the last entry."""
    rest = (1.0 - top_probs.sum(-1, keepdim=True)).clamp_min(0.0)
    return torch.cat([top_probs, rest], -1)
