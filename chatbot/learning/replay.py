"""Replay policies: which old examples are mixed back into a consolidation so old knowledge is rehearsed.
A policy is a callable (pool, new, n, seed) -> n examples from pool (Avalanche-style: its own small class)."""
from __future__ import annotations

import random

import numpy as np

from chatbot.learning.mix import Example
from chatbot.memory.index import VectorIndex


class UniformReplay:
    """Reservoir sampling (Vitter's algorithm R): every old example equally likely, one pass, seeded."""

    name = "uniform"

    def __call__(self, pool: list[Example], new: list[Example], n: int, seed: int) -> list[Example]:
        rng = random.Random(seed)
        reservoir: list[Example] = []
        for i, ex in enumerate(pool):
            if i < n:
                reservoir.append(ex)
            else:
                j = rng.randint(0, i)
                if j < n:
                    reservoir[j] = ex
        return reservoir


class NearestReplay:
    """Old examples whose turns lie nearest (in the FAISS buffer index) to the new turns: rehearse what the new
    data is most likely to overwrite. Round-robin over new turns so one topic does not take every slot; any slots
    left are filled uniformly."""

    name = "nearest"

    def __init__(self, index: VectorIndex):
        self.index = index

    def __call__(self, pool: list[Example], new: list[Example], n: int, seed: int) -> list[Example]:
        if n <= 0 or not pool:
            return []
        by_turn: dict[int, list[int]] = {}
        for i, ex in enumerate(pool):
            for t in ex.turn_ids:
                by_turn.setdefault(t, []).append(i)
        new_ids = sorted({t for ex in new for t in ex.turn_ids})
        vecs = self._vectors(new_ids)
        chosen: list[int] = []
        taken: set[int] = set()
        if len(vecs):
            k = min(len(self.index), max(8, 4 * n // max(1, len(vecs)) + 8))
            ranked = [[i for t, _ in hits for i in by_turn.get(t, [])] for hits in self.index.search_batch(vecs, k)]
            cursor = [0] * len(ranked)
            while len(chosen) < n and any(c < len(r) for c, r in zip(cursor, ranked)):
                for q, r in enumerate(ranked):
                    while cursor[q] < len(r) and r[cursor[q]] in taken:
                        cursor[q] += 1
                    if cursor[q] < len(r) and len(chosen) < n:
                        taken.add(r[cursor[q]])
                        chosen.append(r[cursor[q]])
                        cursor[q] += 1
        rest = [i for i in range(len(pool)) if i not in taken]
        random.Random(seed).shuffle(rest)
        chosen += rest[: n - len(chosen)]
        return [pool[i] for i in chosen]

    def _vectors(self, turn_ids: list[int]) -> np.ndarray:
        have = set(self.index.ids().tolist())
        ids = [t for t in turn_ids if t in have]
        if not ids:
            return np.zeros((0, self.index.dim), dtype=np.float32)
        return self.index.reconstruct(ids)


def make_policy(name: str, index: VectorIndex | None):
    if name == "uniform":
        return UniformReplay()
    if name == "nearest":
        if index is None:
            raise ValueError("the 'nearest' replay policy needs the buffer's vector index")
        return NearestReplay(index)
    raise ValueError(f"unknown replay policy {name!r}: use 'uniform' or 'nearest'")
