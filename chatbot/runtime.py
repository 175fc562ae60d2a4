"""Wiring: from a home folder and a Config to the live objects (store, buffer, model, chat service). The CLI,
the app and the scripts build everything here, so there is one place that decides where files live."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chatbot.core.config import Config
from chatbot.core.lines import AdapterLines
from chatbot.core.paths import Paths
from chatbot.memory.buffer import Buffer, open_buffer
from chatbot.memory.embed import Embedder
from chatbot.memory.store import Store

if TYPE_CHECKING:  # torch-heavy: imported only when a model is loaded, so model-free commands start fast
    from chatbot.serving.chat import ChatService
    from chatbot.serving.model import LoadedModel
    from chatbot.serving.vllm_server import VllmServer

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    paths: Paths
    store: Store
    buffer: Buffer
    loaded: LoadedModel | None = None
    chat: ChatService | None = None
    config_file: str | None = None  # the --config file, passed on to background consolidations
    vllm: VllmServer | None = None  # the vLLM server this runtime started (serve.engine = "vllm", no vllm_url)

    def close(self) -> None:
        if self.chat is not None:
            self.chat.generator.close()
        if self.vllm is not None:
            self.vllm.stop()
        self.buffer.close()
        self.store.close()


def open_store(home: Path) -> Store:
    return Store(Paths(home).db)


def open_runtime(home: Path, config: Config, with_model: bool = True, loaded: LoadedModel | None = None,
                 embedder: Embedder | None = None, config_file: str | None = None,
                 start_server: bool = False) -> Runtime:
    """Open the buffer (reconciling the index with SQLite) and, if asked, load the model and chat service.
    `loaded`/`embedder` let tests and benchmarks inject a tiny or shared model. `start_server` (the app): with
    serve.engine = "vllm" and no serve.vllm_url, start a vLLM server for this home and stop it on close."""
    paths = Paths(Path(home))
    buffer = open_buffer(paths, config.memory.embedder, config.buffer.index_kind, config.buffer.index_save_every,
                         embedder)
    rt = Runtime(config, paths, buffer.store, buffer, config_file=config_file)
    if with_model or loaded is not None:
        from chatbot.serving.chat import ChatService  # lazy: torch-heavy, model-free commands start fast
        from chatbot.serving.engine import open_engine, resolve_engine
        from chatbot.serving.model import load_model

        m = config.model
        rt.loaded = loaded or load_model(m.source, m.quantization, m.compute_dtype, m.cache_dir or paths.models)
        try:
            if start_server and resolve_engine(config) == "vllm" and not config.serve.vllm_url:
                from chatbot.serving.vllm_server import VllmServer

                rt.vllm = VllmServer(paths.home, rt.loaded.path, config)
                rt.vllm.start()
            rt.chat = ChatService(config, rt.store, buffer, open_engine(config, rt.loaded, home=paths.home),
                                  AdapterLines(paths.adapters, config.serve.default_user))
        except BaseException:
            rt.close()
            raise
    return rt
