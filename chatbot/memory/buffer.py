"""The conversation buffer: SQLite turns (truth) + their FAISS vectors (recall). A turn is committed to SQLite
first; embedding, indexing and the periodic save of the index file happen on a background thread, so the chat
path only pays for the commit. The index is reconciled with SQLite at start-up (rebuilt when missing or corrupt,
repaired when stale), so a crash can never lose a turn, only delay its indexing."""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.core.paths import Paths
from chatbot.memory.embed import Embedder
from chatbot.memory.index import IndexCorrupt, VectorIndex
from chatbot.memory.store import Role, Store, Turn, TurnStatus, clean_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    turn: Turn
    user: str
    score: float  # cosine similarity to the query


class Buffer:
    def __init__(self, store: Store, embedder: Embedder, index_path: Path, index_kind: str = "auto",
                 save_every: int = 20):
        self.store = store
        self.embedder = embedder
        # The file name carries the embedder and dimension, so switching embedders starts a fresh index.
        self.index_path = Path(index_path).with_name(f"{Path(index_path).stem}-{embedder.name}-{embedder.dim}.faiss")
        self.index_kind = index_kind
        self.save_every = save_every
        self._unsaved = 0
        self._lock = threading.Lock()  # serialises index mutation + save bookkeeping
        self._discarded: set[int] = set()  # discarded before they were indexed: the worker skips them
        self._forget_seq = store.forget_seq()  # another process may forget turns: re-check before saving
        self.index = self._open_index()
        # (turn id, text, vector or None) waiting to be indexed; None stops the worker.
        self._pending: queue.Queue[tuple[int, str, np.ndarray | None] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._index_worker, name="buffer-indexer", daemon=True)
        self._worker.start()

    # -- start-up reconciliation ---------------------------------------------------------------------------
    def _open_index(self) -> VectorIndex:
        try:
            index = VectorIndex.load(self.index_path, self.embedder.dim)
        except IndexCorrupt as e:
            if self.index_path.exists():
                log.warning("vector index %s is corrupt (%s): rebuilding from SQLite", self.index_path, e)
            elif self.store.indexable_ids():
                log.warning("vector index %s is missing: rebuilding from SQLite", self.index_path)
            return self._rebuild()
        want = self.store.indexable_ids()
        have = set(index.ids().tolist())
        missing, extra = sorted(want - have), sorted(have - want)
        if missing or extra:
            log.warning("vector index is stale (%d turns missing, %d extra): repairing from SQLite",
                        len(missing), len(extra))
            if extra:
                index.remove(extra)
            self._embed_into(index, missing)
            index.save(self.index_path)
        else:
            log.info("vector index matches SQLite (%d vectors)", len(index))
        return index

    def _rebuild(self) -> VectorIndex:
        index = VectorIndex(self.embedder.dim, kind=self.index_kind)
        ids = sorted(self.store.indexable_ids())
        self._embed_into(index, ids)
        index.save(self.index_path)
        log.info("vector index rebuilt: %d vectors", len(index))
        return index

    def _embed_into(self, index: VectorIndex, ids: list[int], chunk: int = 512) -> None:
        for start in range(0, len(ids), chunk):
            turns = self.store.turns_by_ids(ids[start:start + chunk])
            batch = [t for t in turns.values()]
            if batch:
                index.add([t.id for t in batch], self.embedder.encode([t.text for t in batch]))

    def rebuild(self) -> int:
        """Throw the index away and rebuild it from SQLite; returns the vector count."""
        with self._lock:
            self.index = self._rebuild()
            self._unsaved = 0
            self._discarded.clear()
            return len(self.index)

    # -- writes --------------------------------------------------------------------------------------------
    def log_turn(self, conversation_id: int, role: Role, text: str, learn: bool = True, status: TurnStatus = "complete",
                 created_at: float | None = None, vec: np.ndarray | None = None) -> int:
        """Commit a turn (durable on return) and queue it for indexing (`vec`: its embedding, if the caller has
        it already). Returns the turn id."""
        text = clean_text(text)
        turn_id = self.store.add_turn(conversation_id, role, text, learn=learn, status=status, created_at=created_at)
        self._pending.put((turn_id, text, vec))
        return turn_id

    def _index_worker(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                self._pending.task_done()
                return
            batch = [item]
            while True:  # take whatever else is waiting: one encode call for a burst of turns
                try:
                    nxt = self._pending.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._pending.put(None)
                    self._pending.task_done()
                    break
                batch.append(nxt)
            try:
                fresh = iter(self.embedder.encode([text for _, text, v in batch if v is None]))
                vecs = np.stack([next(fresh) if v is None else v for _, _, v in batch])
                self._add([tid for tid, _, _ in batch], vecs, save=False)
            except Exception:  # the turns are safe in SQLite; start-up reconciliation indexes them
                log.exception("indexing %d turn(s) failed; they will be indexed at next start", len(batch))
            finally:
                for _ in batch:
                    self._pending.task_done()
            # Persisting is not part of "indexed" (searchable): save after releasing waiters.
            try:
                with self._lock:
                    if self._unsaved >= self.save_every:
                        self._save_locked()
            except Exception:
                log.exception("saving the vector index failed; it is rebuilt from SQLite at next start")

    def index_turns(self, items: Iterable[tuple[int, str]]) -> None:
        """Embed and index turns now (bulk paths: import, repair)."""
        items = [(i, t) for i, t in items]
        if items:
            self._add([i for i, _ in items], self.embedder.encode([t for _, t in items]))

    def _add(self, ids: list[int], vecs: np.ndarray, save: bool = True) -> None:
        with self._lock:
            if self._discarded:
                keep = [i for i, turn_id in enumerate(ids) if turn_id not in self._discarded]
                self._discarded.difference_update(ids)
                ids, vecs = [ids[i] for i in keep], vecs[keep]
                if not ids:
                    return
            self.index.add(ids, vecs)
            self._unsaved += len(ids)
            if save and self._unsaved >= self.save_every:
                self._save_locked()

    def wait_indexed(self) -> None:
        """Block until every logged turn is in the index."""
        self._pending.join()

    def remove(self, turn_ids: Iterable[int]) -> int:
        self.wait_indexed()  # a queued turn must not be added back after its removal
        with self._lock:
            n = self.index.remove(list(turn_ids))
            self._save_locked()
            return n

    def discard(self, turn_ids: Iterable[int]) -> int:
        """Drop turns from the index at once, without waiting for the indexing queue or rewriting the file (a
        regenerated reply: the chat must not pay for either). A turn still queued is skipped when the worker
        reaches it. The periodic save and the save at exit write the change; a file saved before it may still
        hold the vector, which is harmless: searches check every hit against SQLite and skip superseded turns,
        and start-up reconciliation removes it. Returns how many vectors were removed now."""
        ids = list(turn_ids)
        with self._lock:
            held = self.index.contains(ids)
            self._discarded.update(i for i, h in zip(ids, held) if not h)  # not indexed yet: queued
            n = self.index.remove(ids)
            self._unsaved += n
            return n

    def _save_locked(self) -> None:
        self._drop_forgotten_locked()
        self.index.save(self.index_path)
        self._unsaved = 0

    def _drop_forgotten_locked(self) -> None:
        """If turns were forgotten by another process (`chatbot forget` while the app runs), remove their vectors
        before this process writes its index file, so a forgotten turn never comes back to disk. (Searches never
        return them meanwhile: hits are checked against SQLite.)"""
        seq = self.store.forget_seq()
        if seq == self._forget_seq:
            return
        gone = sorted(set(self.index.ids().tolist()) - self.store.indexable_ids())
        if gone:
            self.index.remove(gone)
            log.info("removed %d vector(s) of turns forgotten by another process", len(gone))
        self._forget_seq = seq

    def flush(self) -> None:
        """Index everything queued and save the index file."""
        self.wait_indexed()
        with self._lock:
            if self._unsaved:
                self._save_locked()

    # -- reads ---------------------------------------------------------------------------------------------
    def search(self, query: str, user: str | None = None, k: int = 4, exclude_conversation: int | None = None,
               learnable_only: bool = True, vec: np.ndarray | None = None) -> list[Hit]:
        """Most similar past turns of `user` (any user if None), best first. Turns marked "don't learn" (or in
        a don't-learn conversation) are never recalled. Over-fetches because other users' turns are filtered.
        `vec`: the query's embedding if the caller has it. Turns still queued for indexing are not searched."""
        if k <= 0 or len(self.index) == 0:
            return []
        vec = self.embedder.encode([query])[0] if vec is None else vec
        fetch = k * 8
        while True:
            raw = self.index.search(vec, fetch)
            owners = self.store.owners([i for i, _ in raw])
            turns = self.store.turns_by_ids([i for i, _ in raw])
            convs = {cid: self.store.conversation(cid) for cid in {c for _, c in owners.values()}}
            hits: list[Hit] = []
            for turn_id, score in raw:
                if turn_id not in owners or turn_id not in turns:
                    continue
                name, cid = owners[turn_id]
                turn = turns[turn_id]
                if user is not None and name != user:
                    continue
                if cid == exclude_conversation or turn.status == "superseded":
                    continue
                if learnable_only and (not turn.learn or not convs[cid].learn):
                    continue
                hits.append(Hit(turn, name, float(score)))
                if len(hits) == k:
                    return hits
            if len(raw) < fetch or fetch >= len(self.index):
                return hits
            fetch *= 4

    def __len__(self) -> int:
        return len(self.index)

    def close(self) -> None:
        self.flush()
        if self._worker.is_alive():
            self._pending.put(None)
            self._worker.join(timeout=10)


def open_buffer(paths: Paths, embedder_name: str, index_kind: str, save_every: int,
                embedder: Embedder | None = None) -> Buffer:
    """The store and its vector buffer for a data home (reconciling the index with SQLite). Close both:
    `buffer.close()` then `buffer.store.close()`. `embedder` lets tests and benchmarks share a loaded one."""
    paths.home.mkdir(parents=True, exist_ok=True)
    store = Store(paths.db)
    return Buffer(store, embedder or Embedder(embedder_name), paths.index, index_kind, save_every)
