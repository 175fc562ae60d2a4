"""Where everything lives under the data home. A leaf value: every layer may use it, it imports nothing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """Everything under the data home."""
    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))

    @property
    def db(self) -> Path:
        return self.home / "chatbot.sqlite3"

    @property
    def index(self) -> Path:
        return self.home / "index.faiss"  # Buffer adds the embedder name and dimension to the stem

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def adapters(self) -> Path:
        return self.home / "adapters"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    @property
    def rehearsal(self) -> Path:
        return self.home / "rehearsal"

    @property
    def vllm_state(self) -> Path:
        return self.home / "vllm.json"  # the vLLM server `chatbot serve` started: url, pid, owner

    @property
    def lock(self) -> Path:
        return self.home / "consolidate.lock"

    @property
    def lock_info(self) -> Path:
        return self.home / "consolidate.lock.json"

