"""Forgetting metrics, as pure functions over probe scores (docs/probes.md gives the formulas and sources).

Scores are percentages (0–100). An accuracy matrix R has one row per model version in training order and one
column per task (an acquisition suite: the facts one version consolidated); R[i][j] is the score of version i on
task j, None where it was not measured."""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import torch

Matrix = Sequence[Sequence[float | None]]


def forgetting(history: Sequence[float | None]) -> float | None:
    """Chaudhry et al. 2018 (RWalk), for one task: the best score any earlier version reached minus the current
    score, f = max_{l<k} a_l − a_k (the last entry is the current version). Positive = forgotten; None when
    there is no earlier score or no current one."""
    if not history or history[-1] is None:
        return None
    earlier = [a for a in history[:-1] if a is not None]
    return max(earlier) - history[-1] if earlier else None


def average_forgetting(R: Matrix) -> float | None:
    """Chaudhry's average forgetting after the last version k over the tasks learned before it:
    F_k = 1/(k) Σ_{j<k} max_{j≤l<k} R[l][j] − R[k][j] (tasks without scores are left out)."""
    k = len(R) - 1
    values = [forgetting([R[i][j] for i in range(j, k + 1)]) for j in range(k)]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def backward_transfer(R: Matrix) -> float | None:
    """Lopez-Paz & Ranzato 2017 (GEM): BWT = 1/(T−1) Σ_{j<T} (R[T][j] − R[j][j]), T the last version: how much
    learning later tasks changed the score on earlier ones (negative = forgetting). None with one task."""
    T = len(R) - 1
    pairs = [(R[T][j], R[j][j]) for j in range(T) if R[T][j] is not None and R[j][j] is not None]
    return sum(a - b for a, b in pairs) / len(pairs) if pairs else None


def noise_floor(scores: Sequence[float]) -> float | None:
    """Sample standard deviation (n−1) of one suite's score over repeated sampled runs of the same model: a
    score change smaller than this is within the noise of decoding."""
    return statistics.stdev(scores) if len(scores) >= 2 else None


def paired_changes(base: dict[str, float], candidate: dict[str, float]) -> tuple[int, int]:
    """(losses, gains) between two runs of one suite, item by item (probe id → score 0/1): items the base passed
    and the candidate failed, and the other way round."""
    common = base.keys() & candidate.keys()
    losses = sum(1 for k in common if base[k] >= 0.5 > candidate[k])
    gains = sum(1 for k in common if candidate[k] >= 0.5 > base[k])
    return losses, gains


def sign_test(losses: int, gains: int) -> float:
    """One-sided exact sign test (McNemar's exact test) on the items that changed: the probability of at least
    `losses` losses among losses + gains changes if a change were as likely to be a loss as a gain. Small =
    the candidate is worse beyond the chance of answers flipping both ways."""
    n = losses + gains
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(losses, n + 1)) / 2 ** n


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp(mean negative log-likelihood per predicted token)."""
    return math.exp(nll_sum / n_tokens) if n_tokens else float("nan")


def kl_per_position(base_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(p_base ‖ p) = Σ_v p_base(v) (log p_base(v) − log p(v)) of the next-token distributions at each position
    ((N, V) logits → (N,) nats). Base first: it weighs what the base considers likely, so it grows when the
    candidate drops the base's answers, not when it merely reshuffles tokens the base never uses."""
    base = torch.log_softmax(base_logits.float(), dim=-1)
    cand = torch.log_softmax(logits.float(), dim=-1)
    return (base.exp() * (base - cand)).sum(-1).clamp_min(0.0)
