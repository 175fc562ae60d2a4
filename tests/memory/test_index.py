"""chatbot.index.VectorIndex against real FAISS: exactness, replace/remove, persistence, the auto switch, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chatbot.memory.index as vindex
from chatbot.memory.index import IndexCorrupt, VectorIndex

DIM = 32


def unit(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[tuple[int, float]]:
    scores = x @ q
    order = np.argsort(-scores)[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    x = unit(2000)
    ids = np.arange(2000, dtype=np.int64) * 3 + 11  # not 0..n-1, so positions and ids can't be confused
    return ids, x


def test_flat_search_is_exact_nearest(data):
    ids, x = data
    vi = VectorIndex(DIM, "flat")
    vi.add(ids, x)
    assert len(vi) == 2000 and vi.kind == "flat" and vi.nlist is None
    for q in unit(20, seed=1):
        got = vi.search(q, 5)
        want = brute_force(x, ids, q, 5)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    batch = vi.search_batch(unit(3, seed=1), 5)
    assert batch[0] == vi.search(unit(3, seed=1)[0], 5) and len(batch) == 3


def test_empty_and_small_index():
    vi = VectorIndex(DIM)
    assert vi.search(unit(1)[0], 10) == [] and vi.search_batch(unit(2), 3) == [[], []] and len(vi) == 0
    vi.add([7, 8], unit(2))
    assert sorted(i for i, _ in vi.search(unit(1)[0], 10)) == [7, 8]  # k > n gives n results, no -1 ids
    with pytest.raises(ValueError, match=r"shape \(32,\)"):
        vi.search(np.zeros(DIM + 1, np.float32), 1)
    with pytest.raises(ValueError, match="ids for"):
        vi.add([1, 2, 3], unit(2))
    with pytest.raises(ValueError, match=">= 0"):
        vi.add([-1], unit(1))


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_readd_replaces(kind, data):
    ids, x = data
    vi = VectorIndex(DIM, kind)
    vi.add(ids, x)
    new = unit(1, seed=99)[0]
    vi.add([ids[5]], new[None, :])
    assert len(vi) == 2000
    top_id, top_score = vi.search(new, 1)[0]
    assert top_id == ids[5] and top_score == pytest.approx(1.0, abs=1e-5)
    # the old vector is gone: querying it no longer finds ids[5] with score 1
    hits = dict(vi.search(x[5], 2000))
    assert hits[int(ids[5])] == pytest.approx(float(x[5] @ new), abs=1e-5)
    # duplicate ids inside one batch: the last vector wins
    a, b = unit(2, seed=5)
    vi.add([ids[6], ids[6]], np.stack([a, b]))
    assert len(vi) == 2000 and vi.search(b, 1)[0][0] == ids[6] and vi.search(a, 1)[0][0] != ids[6]


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_remove_never_returns_removed(kind, data):
    ids, x = data
    vi = VectorIndex(DIM, kind)
    vi.add(ids, x)
    gone = ids[::4]
    assert vi.remove(list(gone) + [10**12, 2]) == len(gone)  # unknown ids ignored, not counted
    assert vi.remove(gone) == 0
    assert len(vi) == 2000 - len(gone)
    assert set(vi.ids().tolist()) == set(ids.tolist()) - set(gone.tolist())
    vi.nprobe = 10**6  # scan every list: "never returns" must hold for the whole index, not just probed lists
    for q in x[::4][:50]:  # each query equals a removed vector
        found = {i for i, _ in vi.search(q, len(vi))}
        assert len(found) == len(vi) and not found & set(gone.tolist())


@pytest.mark.parametrize("kind", ["flat", "ivf", "auto"])
def test_save_load_roundtrip(kind, data, tmp_path):
    ids, x = data
    vi = VectorIndex(DIM, kind)
    vi.add(ids, x)
    vi.remove(ids[:10])
    vi.nprobe = 7
    path = tmp_path / "turns.vidx"
    vi.save(path)
    vi.save(path)  # overwriting is fine
    assert [p.name for p in tmp_path.iterdir()] == ["turns.vidx"]  # no temp file left behind

    back = VectorIndex.load(path, DIM)
    assert (back.kind, back.mode, back.nprobe, back.nlist) == (vi.kind, vi.mode, 7, vi.nlist)
    np.testing.assert_array_equal(np.sort(back.ids()), np.sort(vi.ids()))
    queries = unit(10, seed=3)
    assert back.search_batch(queries, 5) == vi.search_batch(queries, 5)
    back.add([ids[0]], x[:1])  # the loaded index is fully usable
    assert back.search(x[0], 1)[0][0] == ids[0] and len(back) == len(vi) + 1


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_reconstruct_returns_stored_vectors(kind, data, tmp_path):
    ids, x = data
    vi = VectorIndex(DIM, kind)
    vi.add(ids, x)
    np.testing.assert_array_equal(vi.reconstruct([ids[9], ids[2]]), x[[9, 2]])
    assert vi.reconstruct([]).shape == (0, DIM)
    vi.save(tmp_path / "r.vidx")
    np.testing.assert_array_equal(VectorIndex.load(tmp_path / "r.vidx", DIM).reconstruct([ids[9]]), x[[9]])


def test_failed_save_keeps_old_file(data, tmp_path, monkeypatch):
    ids, x = data
    vi = VectorIndex(DIM, "flat")
    vi.add(ids[:100], x[:100])
    path = tmp_path / "turns.vidx"
    vi.save(path)
    vi.add(ids[100:], x[100:])

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(vindex.faiss, "write_index", boom)
    with pytest.raises(OSError, match="disk full"):
        vi.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["turns.vidx"]
    assert len(VectorIndex.load(path, DIM)) == 100


def test_load_rejects_bad_files(data, tmp_path):
    ids, x = data
    vi = VectorIndex(DIM, "flat")
    vi.add(ids, x)
    good = tmp_path / "good.vidx"
    vi.save(good)
    raw = good.read_bytes()

    with pytest.raises(IndexCorrupt, match="does not exist"):
        VectorIndex.load(tmp_path / "missing.vidx", DIM)
    for name, content in [
        ("truncated", raw[: len(raw) // 2]),
        ("header_only", raw[:40]),
        ("empty", b""),
        ("garbage", np.random.default_rng(0).bytes(5000)),
        ("trailing", raw + b"x"),
        ("bad_payload", raw[:60] + b"\0" * (len(raw) - 60)),
    ]:
        p = tmp_path / f"{name}.vidx"
        p.write_bytes(content)
        with pytest.raises(IndexCorrupt, match=str(p.name)):
            VectorIndex.load(p, DIM)
    with pytest.raises(IndexCorrupt, match="holds 32-d vectors but 384-d"):
        VectorIndex.load(good, 384)


def test_auto_switches_to_ivf_and_still_finds_exact(monkeypatch, tmp_path):
    monkeypatch.setattr(vindex, "AUTO_IVF_THRESHOLD", 3000)
    x = unit(4000, seed=7)
    ids = np.arange(4000, dtype=np.int64) + 1000
    vi = VectorIndex(DIM, "auto")
    vi.add(ids[:3000], x[:3000])
    assert vi.kind == "flat"  # at the threshold, not past it
    vi.add(ids[3000:], x[3000:])
    assert vi.kind == "ivf" and vi.nlist == vindex.nlist_for(4000) and vi.nlist > 1
    np.testing.assert_array_equal(vi.ids(), ids)
    assert vi.nprobe == vindex.nprobe_for(vi.nlist) == min(vi.nlist, vindex.NPROBE_MIN)
    # a query equal to a stored vector lands in that vector's own list, so even nprobe=1 must find it
    vi.nprobe = 1
    for j in range(0, 4000, 37):
        top_id, top_score = vi.search(x[j], 1)[0]
        assert top_id == ids[j] and top_score == pytest.approx(1.0, abs=1e-5)
    assert vi.remove(ids[:5]) == 5 and vi.search(x[0], 1)[0][0] != ids[0]
    vi.save(tmp_path / "a.vidx")
    back = VectorIndex.load(tmp_path / "a.vidx", DIM)
    assert back.kind == "ivf" and back.mode == "auto" and len(back) == 3995


def test_ivf_sizing_rules():
    assert vindex.nlist_for(1_000_000) == 4000 and vindex.nlist_for(100_000) == 1264
    assert vindex.nlist_for(1000) == 25  # capped at 39 training points per list
    assert vindex.nlist_for(10**9) == vindex.NLIST_MAX and vindex.nlist_for(1) == 1
    assert vindex.nprobe_for(4000) == 125 and vindex.nprobe_for(1264) == 64 and vindex.nprobe_for(10) == 10


def test_concurrent_searches_during_adds_and_switch(monkeypatch):
    monkeypatch.setattr(vindex, "AUTO_IVF_THRESHOLD", 2500)  # the writer crosses it mid-run: switch under load
    base = unit(2000, seed=11)
    vi = VectorIndex(DIM, "auto")
    vi.add(np.arange(2000), base)
    extra = unit(1500, seed=12)
    errors: list[BaseException] = []
    wrong: list[tuple[int, int]] = []
    done = threading.Event()
    readers_running = threading.Semaphore(0)
    searches = [0, 0, 0]

    def writer() -> None:
        try:
            for _ in range(3):  # start mutating only once every reader is searching
                assert readers_running.acquire(timeout=30)
            for s in range(0, 1500, 50):
                vi.add(np.arange(10_000 + s, 10_050 + s), extra[s:s + 50])
                vi.remove([10_000 + s])  # keep mutating in both directions
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                if searches[seed] == 1:
                    readers_running.release()
                j = int(rng.integers(0, 2000))
                got = vi.search(base[j], 3)
                if got[0][0] != j or abs(got[0][1] - 1.0) > 1e-5:
                    wrong.append((j, got[0][0]))
                scores = [s for _, s in got]
                if scores != sorted(scores, reverse=True):
                    wrong.append((j, -1))
                searches[seed] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and wrong == [] and min(searches) >= 2
    assert vi.kind == "ivf" and len(vi) == 2000 + 1500 - 30
    assert len(vi.ids()) == len(vi) == vi._index.ntotal
