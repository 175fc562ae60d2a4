"""Wiring: from a home folder and a Config to the live objects (store, buffer, model, chat service). The CLI,
the app and the scripts build everything here, so there is one place that decides where files live."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .buffer import Buffer
from .chat import ChatService
from .config import Config
from .embed import Embedder
from .generate import Generator
from .model import LoadedModel, load_model
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class Paths:
    """Everything under the data home."""
    home: Path

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
    def logs(self) -> Path:
        return self.home / "logs"


@dataclass
class Runtime:
    config: Config
    paths: Paths
    store: Store
    buffer: Buffer
    loaded: LoadedModel | None = None
    chat: ChatService | None = None

    def close(self) -> None:
        self.buffer.close()
        self.store.close()


def open_store(home: Path) -> Store:
    return Store(Paths(home).db)


def open_runtime(home: Path, config: Config, with_model: bool = True, loaded: LoadedModel | None = None,
                 embedder: Embedder | None = None) -> Runtime:
    """Open the buffer (reconciling the index with SQLite) and, if asked, load the model and chat service.
    `loaded`/`embedder` let tests and benchmarks inject a tiny or shared model."""
    paths = Paths(Path(home))
    paths.home.mkdir(parents=True, exist_ok=True)
    store = Store(paths.db)
    embedder = embedder or Embedder(config.memory.embedder)
    buffer = Buffer(store, embedder, paths.index, config.buffer.index_kind, config.buffer.index_save_every)
    rt = Runtime(config, paths, store, buffer)
    if with_model or loaded is not None:
        m = config.model
        rt.loaded = loaded or load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
        generator = Generator(rt.loaded, config.decoding, m.max_context)
        rt.chat = ChatService(config, store, buffer, generator)
    return rt
