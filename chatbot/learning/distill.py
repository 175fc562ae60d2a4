"""Distillation to the frozen base on the rehearsal prompts, as a training hook: the loss gets
weight · KL(base ‖ model) over the next-token distributions at the answer positions of the rehearsal examples.

Rehearsal as plain SFT teaches only the base's greedy tokens; the gate measures the whole distribution (KL to the
base on general text), and so does this penalty. The base's distributions are computed once before training, with
the adapter switched off, and kept as their top TOP_K tokens plus one bucket for the rest of the vocabulary (the KL
between these k+1-way distributions is zero when the model is the base and counts mass that moves off the base's
top tokens): 16 prompts × ~120 answer tokens × 65 entries, a few MB instead of the 49k-token vocabulary.

Two ways to apply it (train.distill_in_batch):
- a pass of its own (`penalty`): each training step costs one more forward and backward pass, on one rehearsal
  batch of train.distill_batch_size examples (they are cycled);
- in the batch (`batch_penalty`, the default): the rehearsal answers are SFT targets too, so where one is in the
  training batch the KL is taken on the logits the SFT loss already computed, with no extra pass; a step whose
  batch holds none still gets `penalty`, so steps of facts alone are pulled towards the base as well (measured on
  the dev split: 20-30 % less training time, the same recall and KL range; without that pass for the other steps
  a candidate drifted past the gate's KL bound where rehearsal was a small share of the mix, docs/experiment)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

IGNORE = -100
TOP_K = 64


class Distill:
    name = "distill"

    def __init__(self, weight: float, batch_size: int = 0, top_k: int = TOP_K, in_batch: bool = False):
        self.weight = float(weight)
        self.in_batch = in_batch  # on the training batch's own logits (batch_penalty), not a pass of its own
        self.batch_size = batch_size  # rehearsal examples per step's own pass (0: the training batch size)
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
        kl = _kl(p_base, model(**inputs).logits[:, :-1], idx)
        return self.weight * kl[mask].mean() if mask.any() else kl.sum() * 0.0

    def batch_penalty(self, logits: torch.Tensor, attention_mask: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """weight · mean over answer tokens of KL(base ‖ model) on the rows of a training batch that are anchor
        examples, from that batch's logits. anchors[r]: the index of row r's example among the examples
        before_training saw one by one, or −1."""
        kls = []
        for row, anchor in enumerate(anchors.tolist()):
            if anchor < 0:
                continue
            _, idx, p_base, mask = self.targets[anchor]
            # the example's own positions, padding dropped (padding on the right, as the training collator pads:
            # the row's logits are then those of the example alone)
            real = logits[row][attention_mask[row].bool()][:-1]
            if real.shape[0] != idx.shape[1]:
                raise RuntimeError(f"distillation target {anchor}: {idx.shape[1]} positions, its row {real.shape[0]}")
            kls.append(_kl(p_base[0], real, idx[0])[mask[0]])
        kl = torch.cat(kls) if kls else logits.new_zeros(0)
        return self.weight * kl.mean() if kl.numel() else logits.sum() * 0.0

    def after_training(self, model: torch.nn.Module) -> None:
        self.targets = []


def _kl(p_base: torch.Tensor, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """KL(base ‖ model) per position, over the base's top-k tokens plus the rest of the vocabulary."""
    q = _with_rest(torch.log_softmax(logits.float(), -1).gather(-1, idx).exp())
    return (p_base * (torch.log(p_base.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(-1)


def _with_rest(top_probs: torch.Tensor) -> torch.Tensor:
    """[..., k] probabilities of the top tokens → [..., k + 1] with the rest of the vocabulary as the last entry."""
    rest = (1.0 - top_probs.sum(-1, keepdim=True)).clamp_min(0.0)
    return torch.cat([top_probs, rest], -1)
