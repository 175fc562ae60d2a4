"""Elastic Weight Consolidation (Kirkpatrick et al. 2017) on the LoRA adapter, as a training hook.

Before training, the diagonal (empirical) Fisher information F_i of every trainable parameter is estimated on
replay data with the previous version's adapter loaded, and those weights θ*_i become the anchor. During
training the loss gets  λ/2 · Σ_i F_i (θ_i − θ*_i)²,  so weights that mattered for old data move least."""
from __future__ import annotations

from collections.abc import Iterable

import torch


class EWC:
    name = "ewc"

    def __init__(self, lam: float):
        self.lam = float(lam)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    @staticmethod
    def _trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in model.named_parameters() if p.requires_grad}

    def before_training(self, model: torch.nn.Module, batches: Iterable[dict]) -> None:
        """Estimate F = mean over batches of grad(loss)² (one gradient per batch), and anchor θ* = θ now."""
        params = self._trainable(model)
        self.fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
        self.anchor = {n: p.detach().clone().float() for n, p in params.items()}
        was_training = model.training
        model.eval()  # no dropout noise in the estimate
        n_batches = 0
        for batch in batches:
            model.zero_grad(set_to_none=True)
            batch = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
            model(**batch).loss.backward()
            for n, p in params.items():
                if p.grad is not None:
                    self.fisher[n] += p.grad.detach().float() ** 2
            n_batches += 1
        model.zero_grad(set_to_none=True)
        if n_batches:
            for n in self.fisher:
                self.fisher[n] /= n_batches
        model.train(was_training)

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """λ/2 · Σ F (θ − θ*)², a scalar on the parameters' device (0 before any Fisher was estimated)."""
        total = None
        for n, p in self._trainable(model).items():
            if n not in self.fisher:
                continue
            term = (self.fisher[n].to(p.device) * (p.float() - self.anchor[n].to(p.device)) ** 2).sum()
            total = term if total is None else total + term
        if total is None:
            return torch.zeros(())
        return 0.5 * self.lam * total

    def after_training(self, model: torch.nn.Module) -> None:
        self.fisher, self.anchor = {}, {}
