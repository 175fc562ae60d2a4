"""Vector index over turn embeddings: FAISS vectors keyed by turn id, for recall of similar past turns.

One class, `VectorIndex`, wraps either an exact flat index (small N) or an IVF index (large N) behind the same
add / remove / search / save / load calls. Vectors are L2-normalised by the caller, so inner product = cosine.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

import faiss  # hard dependency; nothing here changes its global state (OpenMP threads included)
import numpy as np

from chatbot.core.fsio import atomic_file

# ---- defaults (chosen from scripts/bench_index.py on the 2-core CPU; see its report) -------------------------
AUTO_IVF_THRESHOLD = 50_000   # "auto" goes flat -> ivf past this: flat p99 ~10 ms at 50k on an idle core, and
                              # the nlist trained here (894) still keeps ivf p99 < 20 ms when grown to 1M
NPROBE_MIN = 64               # ivf lists scanned per query is max(NPROBE_MIN, nlist / NPROBE_LIST_DIVISOR): on the
NPROBE_LIST_DIVISOR = 32      # benchmark data recall@10 >= 0.96 from 100k to 1M with p99 ~12 ms at 1M (2 cores)
NLIST_PER_SQRT_N = 4          # nlist ~ 4 * sqrt(n) at training time ...
NLIST_MAX = 8192              # ... bounded so training / quantizer cost stays affordable on 2 cores
MIN_POINTS_PER_LIST = 39      # faiss k-means wants >= 39 points per centroid; fewer -> fewer lists
TRAIN_POINTS_PER_LIST = 64    # k-means sample size per list (faiss default is 256; 64 is 4x faster, same recall)
TRAIN_SEED = 1234             # deterministic training sample and k-means init

_MAGIC = b"CBVIDX01"  # file = magic | u32 header length | JSON header | faiss index bytes
_KINDS = ("flat", "ivf", "auto")


class IndexCorrupt(Exception):
    """The index file is missing, unreadable, truncated or built for another dimension: rebuild it from the store."""


class VectorIndex:
    """Vectors keyed by int64 turn id, searched by cosine similarity.

    kind: "flat" = exact IndexIDMap2(IndexFlatIP); "ivf" = IndexIVFFlat (inner product) with a hashtable direct
    map so removal is O(removed) and ids are stable; "auto" = flat until the count passes AUTO_IVF_THRESHOLD, then
    a one-off switch to ivf inside the add() that crosses it. An "ivf" index trains on its first add() batch, so
    feed it a representative bulk load (a tiny first batch gives a tiny nlist); until then it is an empty flat
    index. An ivf index never switches back to flat and keeps the nlist it was trained with.

    Thread safety: one RLock guards every call, searches included. FAISS CPU searches are safe with each other
    but not with add/remove (they reallocate the arrays a search reads), and a single-query search takes ~1 ms
    (ivf) to ~10 ms (flat near the threshold), so serialising searches costs little at chat rates and needs no
    reader-writer lock. The flat -> ivf switch runs k-means outside the lock (searches and adds go on against the
    flat index meanwhile) and holds it only to fill the trained ivf.

    Threads inside FAISS: the OpenMP pool is left as it is (all cores). A single-query search runs on one thread
    anyway (FAISS parallelises over queries), while training and bulk adds use every core.
    """

    def __init__(self, dim: int, kind: str = "auto") -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self.mode = kind  # what was asked for; `kind` is what runs now
        self.kind = "flat"
        self.nprobe = NPROBE_MIN  # ivf only: set to nprobe_for(nlist) when the ivf is trained; tunable after that
        self._lock = threading.RLock()
        self._index: faiss.Index = _new_flat(self.dim)
        self._ids = np.empty(0, dtype=np.int64)  # sorted copy of the stored ids: O(log n) membership for re-add
        self._switching = False  # a flat -> ivf switch is training (outside the lock)

    # ---- mutation ------------------------------------------------------------------------------------------
    def add(self, ids: Sequence[int], vecs: np.ndarray) -> None:
        """Add vectors (n, dim) under ids (n,); an id already present is replaced (last one wins in a batch)."""
        ids_a = _as_ids(ids)
        x = np.ascontiguousarray(vecs, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"vecs must have shape (n, {self.dim}), got {x.shape}")
        if len(ids_a) != len(x):
            raise ValueError(f"got {len(ids_a)} ids for {len(x)} vectors")
        if len(ids_a) == 0:
            return
        uniq, first_in_reversed = np.unique(ids_a[::-1], return_index=True)
        if len(uniq) != len(ids_a):  # duplicate ids in the batch: keep each id's last vector
            keep = len(ids_a) - 1 - first_in_reversed
            ids_a, x = ids_a[keep], x[keep]
        with self._lock:
            self._remove_locked(ids_a)  # re-add = replace
            self._index.add_with_ids(x, ids_a)
            self._ids = _sorted_insert(self._ids, ids_a)
            assert self._index.ntotal == len(self._ids)
            threshold = {"flat": None, "ivf": 0, "auto": AUTO_IVF_THRESHOLD}[self.mode]
            switch = self.kind == "flat" and threshold is not None and len(self) > threshold and not self._switching
            if switch:
                self._switching = True  # one thread trains; concurrent adds keep going into the flat index
                nlist, sample = self._training_sample()
        if switch:
            try:
                self._switch_to_ivf(nlist, sample)
            finally:
                with self._lock:
                    self._switching = False

    def remove(self, ids: Sequence[int]) -> int:
        """Remove ids; unknown ids are ignored. Returns how many were removed."""
        ids_a = np.unique(_as_ids(ids))
        with self._lock:
            return self._remove_locked(ids_a)

    def _remove_locked(self, ids_a: np.ndarray) -> int:
        # ids_a: (m,) unique int64. Only ids we hold reach faiss: flat remove_ids is an O(n) scan plus a rev-map
        # rebuild, so a plain add of new ids must not pay it.
        if len(self._ids) == 0 or len(ids_a) == 0:
            return 0
        pos = np.searchsorted(self._ids, ids_a).clip(max=len(self._ids) - 1)
        present = self._ids[pos] == ids_a
        if not present.any():
            return 0
        gone = np.ascontiguousarray(ids_a[present])
        if self.kind == "ivf":
            # the hashtable direct map only accepts IDSelectorArray (the default IDSelectorBatch would throw)
            sel = faiss.IDSelectorArray(len(gone), faiss.swig_ptr(gone))
        else:
            sel = faiss.IDSelectorBatch(len(gone), faiss.swig_ptr(gone))
        n = self._index.remove_ids(sel)
        assert n == len(gone), (n, len(gone))
        self._ids = np.delete(self._ids, pos[present])
        return int(n)

    def _training_sample(self) -> tuple[int, np.ndarray]:
        # Under the lock: a seeded random sample of the flat vectors, (m, dim) with m <= TRAIN_POINTS_PER_LIST*nlist.
        n = self._index.ntotal
        nlist = nlist_for(n)
        m = min(n, TRAIN_POINTS_PER_LIST * nlist)
        rows = np.sort(np.random.default_rng(TRAIN_SEED).choice(n, m, replace=False))
        return nlist, self._index.index.reconstruct_batch(rows)  # (m, dim) copy, rows in storage order

    def _switch_to_ivf(self, nlist: int, sample: np.ndarray) -> None:
        # The slow part, k-means, runs without the lock so searches (on the flat index) and adds go on meanwhile;
        # only the final fill of the trained ivf (assigning every vector to a list) holds it.
        ivf = _trained_ivf(sample, nlist)
        with self._lock:
            flat = self._index
            n = flat.ntotal  # may differ from the sample's n: adds/removes went on while training
            xb = faiss.rev_swig_ptr(faiss.downcast_index(flat.index).get_xb(), n * self.dim)  # view, no copy
            xb = xb.reshape(n, self.dim)
            ivf.add_with_ids(xb, faiss.vector_to_array(flat.id_map))
            self._index, self.kind, self.nprobe = ivf, "ivf", nprobe_for(nlist)
            assert ivf.ntotal == len(self._ids)

    # ---- queries -------------------------------------------------------------------------------------------
    def search(self, vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k stored vectors most similar to vec (dim,), best first, as (id, cosine score)."""
        q = np.asarray(vec, dtype=np.float32)
        if q.shape != (self.dim,):
            raise ValueError(f"vec must have shape ({self.dim},), got {q.shape}")
        return self.search_batch(q[None, :], k)[0]

    def search_batch(self, vecs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """search() for each row of vecs (q, dim)."""
        q = np.ascontiguousarray(vecs, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"vecs must have shape (q, {self.dim}), got {q.shape}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        with self._lock:
            n = self._index.ntotal
            if n == 0:
                return [[] for _ in range(len(q))]
            if self.kind == "ivf":
                self._index.nprobe = min(self.nprobe, self._index.nlist)
            scores, ids = self._index.search(q, min(k, n))  # (q, k) each; id -1 = fewer than k found (ivf)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            for row_ids, row_scores in zip(ids, scores)
        ]

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of `ids` (all must be present), float32 (len(ids), dim)."""
        with self._lock:
            # IndexIDMap2 and the IVF hashtable direct map both map an external id to its stored vector.
            rows = [self._index.reconstruct(int(i)) for i in ids]
        return np.stack(rows).astype(np.float32, copy=False) if rows else np.empty((0, self.dim), np.float32)

    def contains(self, ids: Sequence[int]) -> np.ndarray:
        """(m,) bool: which of `ids` the index holds (O(m log n), on the sorted copy of the ids)."""
        ids_a = _as_ids(ids)
        with self._lock:
            if len(self._ids) == 0:
                return np.zeros(len(ids_a), dtype=bool)
            pos = np.searchsorted(self._ids, ids_a).clip(max=len(self._ids) - 1)
            return self._ids[pos] == ids_a

    def ids(self) -> np.ndarray:
        """All stored ids (int64), in ascending order."""
        with self._lock:
            return self._ids.copy()

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nlist(self) -> int | None:
        """IVF list count (fixed when the ivf was trained); None while flat."""
        return self._index.nlist if self.kind == "ivf" else None

    # ---- persistence ---------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the index to path atomically: a reader sees the old file or the new one, never a torn one."""
        path = Path(path)
        with self._lock:
            header = json.dumps(
                {"dim": self.dim, "mode": self.mode, "kind": self.kind, "nprobe": self.nprobe, "count": len(self)}
            ).encode()
            with atomic_file(path, "wb") as f:
                f.write(_MAGIC + struct.pack("<I", len(header)) + header)
                # stream the faiss bytes into the same file (no second in-memory copy of the index)
                writer = faiss.PyCallbackIOWriter(f.write)
                faiss.write_index(self._index, writer)
                del writer

    @classmethod
    def load(cls, path: str | os.PathLike, dim: int) -> VectorIndex:
        """Read an index written by save(); raises IndexCorrupt if it is missing, damaged or of another dim."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                head = f.read(len(_MAGIC) + 4)
                if len(head) < len(_MAGIC) + 4 or head[: len(_MAGIC)] != _MAGIC:
                    raise IndexCorrupt(f"{path} is not a chatbot vector index (bad magic); rebuild it from the store")
                (hlen,) = struct.unpack("<I", head[len(_MAGIC):])
                meta = json.loads(f.read(hlen))
                nprobe = int(meta["nprobe"])
                if meta["mode"] not in _KINDS:
                    raise IndexCorrupt(f"{path} has an unknown index mode {meta['mode']!r}; rebuild it from the store")
                if meta["dim"] != dim:
                    raise IndexCorrupt(
                        f"{path} holds {meta['dim']}-d vectors but {dim}-d were expected "
                        "(embedding model changed?); rebuild it from the store"
                    )
                index = faiss.read_index(faiss.PyCallbackIOReader(f.read))
                if f.read(1):
                    raise IndexCorrupt(f"{path} has trailing bytes after the index; rebuild it from the store")
        except IndexCorrupt:
            raise
        except FileNotFoundError as e:
            raise IndexCorrupt(f"index file {path} does not exist; rebuild it from the store") from e
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, struct.error) as e:
            # faiss raises RuntimeError on truncated or garbled bytes; json raises ValueError
            raise IndexCorrupt(f"index file {path} is unreadable ({type(e).__name__}: {e}); rebuild it") from e

        vi = cls(dim, meta["mode"])
        vi.nprobe = nprobe
        if isinstance(index, faiss.IndexIDMap2):
            index.index = faiss.downcast_index(index.index)
            ids = faiss.vector_to_array(index.id_map)
            vi.kind = "flat"
        elif isinstance(index, faiss.IndexIVFFlat):
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # no-op when saved with it (always, by us)
            ids = _ivf_ids(index)
            vi.kind = "ivf"
        else:
            raise IndexCorrupt(f"{path} holds an unexpected faiss index type {type(index).__name__}; rebuild it")
        if index.d != dim or index.ntotal != meta["count"] or len(ids) != index.ntotal:
            raise IndexCorrupt(
                f"{path} is inconsistent (d={index.d}, ntotal={index.ntotal}, header count={meta['count']}); rebuild it"
            )
        vi._index = index
        vi._ids = np.sort(ids.astype(np.int64))
        if len(vi._ids) > 1 and (np.diff(vi._ids) == 0).any():
            raise IndexCorrupt(f"{path} stores some id twice; rebuild it from the store")
        return vi


# ---- helpers -----------------------------------------------------------------------------------------------
def _new_flat(dim: int) -> faiss.IndexIDMap2:
    # IDMap2 (not IDMap) keeps a reverse map so reconstruct(id) works; flat remove_ids is an O(n) compaction
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def nlist_for(n: int) -> int:
    """IVF list count for n training vectors: ~4*sqrt(n), at most NLIST_MAX, and >= 39 points per list."""
    return max(1, min(int(NLIST_PER_SQRT_N * math.sqrt(n)), n // MIN_POINTS_PER_LIST, NLIST_MAX))


def nprobe_for(nlist: int) -> int:
    """Default lists probed per query. More lists (bigger bulk builds) need more probes for the same recall."""
    return min(nlist, max(NPROBE_MIN, math.ceil(nlist / NPROBE_LIST_DIVISOR)))


def _trained_ivf(sample: np.ndarray, nlist: int) -> faiss.IndexIVFFlat:
    # sample: (m, dim) float32 normalised. Spherical k-means (faiss sets it for inner product), seeded.
    dim = sample.shape[1]
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = TRAIN_SEED
    ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST  # the sample is already this small: no resampling
    ivf.train(sample)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # id -> (list, offset): O(1) remove / reconstruct by id
    return ivf


def _ivf_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    # Walk the inverted lists: O(n) copies, used once on load (the sorted side array serves ids() afterwards).
    invlists = ivf.invlists
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            ptr = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(list_no, ptr)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _as_ids(ids: Sequence[int]) -> np.ndarray:
    a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if len(a) and a.min() < 0:
        raise ValueError("ids must be >= 0 (faiss uses -1 for 'no result')")
    return a


def _sorted_insert(sorted_ids: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
    # new_ids are unique and absent from sorted_ids: O(n + m log m) instead of re-sorting everything
    new_sorted = np.sort(new_ids)
    return np.insert(sorted_ids, np.searchsorted(sorted_ids, new_sorted), new_sorted)
