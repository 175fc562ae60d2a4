"""The engine interface: what writes replies, probe answers and rehearsal answers. Every engine takes the same
prompts (the model's chat template and the context-fitting cuts below, applied with the Hugging Face tokenizer)
and serves a named adapter version per generation, so a user's reply, a candidate's probes and the base's
rehearsal answers differ only in the engine that computes them.

Engines (serve.engine; docs/engines.md):
- "transformers" (serving/generate.py): transformers `generate` on the bitsandbytes 4-bit model; the reference
  and the fallback; the only one that also gives the logits the KL and perplexity probes read.
- "llamacpp" (serving/llamacpp.py): llama.cpp on a GGUF of the base (the file the embedded model ships), each
  adapter version converted once to a GGUF LoRA (serving/lora_gguf.py); fast on a CPU.
- "vllm" (serving/vllm.py): an OpenAI-compatible vLLM server with LoRA enabled; for GPU servers.
- "auto": llamacpp when llama-cpp-python is installed and a GGUF of the base is known, else transformers.
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from chatbot.core.config import ENGINES, Config, DecodingConfig
from chatbot.core.registry import BASE  # the adapter name of the bare base model (no adapter)

log = logging.getLogger(__name__)

ELLIPSIS = "\n[…]\n"


class EngineError(RuntimeError):
    """The configured engine cannot run here; the message says what to do."""


@dataclass
class Prompt:
    input_ids: torch.Tensor  # (1, n) token ids, chat template applied
    notices: list[str] = field(default_factory=list)  # what was cut to fit the context, for the user

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def tokens(self) -> list[int]:
        return [int(t) for t in self.input_ids[0]]


class Engine:
    """Turns chat messages into reply text on one base model and its adapter versions. Subclasses implement
    `stream`, `generate_batch`, `_load` and `_unload`; adapters stay resident up to `max_adapters` (the least
    recently used beyond are unloaded, and loaded again when their user returns)."""

    name = "engine"

    def __init__(self, tokenizer, decoding: DecodingConfig, max_context: int, max_adapters: int = 8):
        self.tokenizer = tokenizer
        self.decoding = decoding
        self.max_context = max_context
        self.max_adapters = max_adapters
        self.adapter = BASE  # the adapter of generations that name none (the probes)
        self._lock = threading.Lock()  # one generation at a time on this engine's model
        self._resident: dict[str, str] = {}  # adapter name → folder, least recently used first

    # -- adapters --------------------------------------------------------------------------------------------
    def use_adapter(self, name: str, path: str | None) -> None:
        """Make adapter version `name` from folder `path` (None: the bare base) the default of generations that
        name none (the probes). Takes the generation lock, so the switch happens between generations."""
        with self._lock:
            self._ensure(name, path)
            self.adapter = name

    @property
    def loaded_adapters(self) -> list[str]:
        """Adapters resident beside the base, least recently used first."""
        return list(self._resident)

    def _ensure(self, name: str, path: str | None) -> None:
        """Load adapter `name` unless resident (caller holds the lock); unload the least recently used ones past
        max_adapters, never the default one or `name`."""
        if name == BASE or path is None:
            return
        if name in self._resident:
            self._touch(name)
            return
        self._load(name, path)
        self._resident[name] = path
        for old in list(self._resident):
            if len(self._resident) <= self.max_adapters:
                break
            if old not in (name, self.adapter):
                self._unload(old, keep=name)
                del self._resident[old]

    def _touch(self, name: str) -> None:
        """Mark a resident adapter most recently used (last)."""
        if name in self._resident:
            self._resident[name] = self._resident.pop(name)

    def _load(self, name: str, path: str) -> None:
        raise NotImplementedError

    def _unload(self, name: str, keep: str) -> None:
        raise NotImplementedError

    # -- generation ------------------------------------------------------------------------------------------
    def stream(self, prompt: Prompt, stop: threading.Event | None = None,
               adapter: tuple[str, str | None] | None = None, **overrides) -> Iterator[str]:
        """Yield reply text pieces as they are generated, with `adapter` = (version name, folder) loaded if needed
        (default: self.adapter). `overrides` replace decoding settings. Closing the iterator early (or setting
        `stop`) ends generation at the next token and frees the model for the next reply."""
        raise NotImplementedError

    def generate(self, prompt: Prompt, **overrides) -> str:
        return "".join(self.stream(prompt, **overrides))

    def generate_batch(self, conversations: list[list[dict]], max_new_tokens: int, batch_size: int = 16,
                       **overrides) -> list[str]:
        """Replies to many single-turn chats (probes, rehearsal) on the default adapter, decoding settings as
        served unless overridden, stripped."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """What serves, for people (the app's header)."""
        return self.name

    def close(self) -> None:
        """Free what the engine holds outside Python's memory (a llama.cpp model, a server connection)."""

    # -- prompts ---------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate_tokens(self, text: str, max_tokens: int) -> str:
        """Keep the head and tail of `text` within `max_tokens` (questions often sit at the end of a long paste)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        head = max(1, max_tokens // 2)
        tail = max(1, max_tokens - head - 4)
        return self.tokenizer.decode(ids[:head]) + ELLIPSIS + self.tokenizer.decode(ids[-tail:])

    def encode(self, messages: list[dict]) -> torch.Tensor:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]

    def build_prompt(self, messages: list[dict], max_new_tokens: int | None = None) -> Prompt:
        """Apply the chat template and fit the prompt into the context, cutting in this order: the oldest
        history messages, then the system notes (memories), then the middle of the last user message."""
        budget = self.max_context - (max_new_tokens or self.decoding.max_new_tokens)
        budget = max(budget, 32)
        messages = [dict(m) for m in messages]
        notices: list[str] = []
        ids = self.encode(messages)
        if ids.shape[1] <= budget:
            return Prompt(ids, notices)
        dropped = 0
        # Messages between an optional leading system message and the final user message are history.
        first = 1 if messages and messages[0]["role"] == "system" else 0
        while ids.shape[1] > budget and len(messages) - first > 1:
            del messages[first]
            dropped += 1
            ids = self.encode(messages)
        if dropped:
            notices.append(f"{dropped} earlier message(s) of this conversation were left out to fit the model's "
                           "context.")
        if ids.shape[1] > budget and first == 1:
            del messages[0]
            first = 0
            notices.append("Memories were left out to fit the model's context.")
            ids = self.encode(messages)
        if ids.shape[1] > budget:
            last = messages[-1]
            overhead = ids.shape[1] - self.count_tokens(last["content"])
            keep = max(budget - overhead - 8, 8)
            original = self.count_tokens(last["content"])
            last["content"] = self.truncate_tokens(last["content"], keep)
            ids = self.encode(messages)
            notices.append(
                f"Your message is {original} tokens; the model saw only its first and last parts ({keep} tokens, "
                f"context limit {self.max_context}). The full text is saved."
            )
        return Prompt(ids, notices)

    def stop_ids(self, model_config=None) -> set[int]:
        """Token ids that end a reply: the tokenizer's end of sequence and the model's generation config's."""
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        eos = getattr(model_config, "eos_token_id", None) if model_config is not None else None
        ids |= set(eos if isinstance(eos, list | tuple) else [eos] if eos is not None else [])
        return ids


# -- choosing an engine ----------------------------------------------------------------------------------------
def llamacpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def resolve_engine(config: Config) -> str:
    """The engine serve.engine names; "auto" → llamacpp where it can run (llama-cpp-python installed, a GGUF of
    the base known), else transformers."""
    choice = config.serve.engine
    if choice != "auto":
        return choice
    if llamacpp_installed():
        from chatbot.serving.llamacpp import base_gguf

        if base_gguf(config) is not None:
            return "llamacpp"
    return "transformers"


def open_engine(config: Config, loaded, engine: str | None = None, decoding: DecodingConfig | None = None,
                home: Path | None = None) -> Engine:
    """The engine config.serve.engine (or `engine`) names, on the base model `loaded` (a serving.model.LoadedModel:
    its tokenizer, and for transformers its weights). vllm without serve.vllm_url uses the server that
    `chatbot serve` started for `home` (serving/vllm_server.py)."""
    name = engine or resolve_engine(config)
    decoding = decoding or config.decoding
    m, s = config.model, config.serve
    if name == "transformers":
        from chatbot.serving.generate import Generator

        return Generator(loaded, decoding, m.max_context, s.max_loaded_adapters)
    if name == "llamacpp":
        from chatbot.serving.llamacpp import LlamaCppEngine, base_gguf

        gguf = base_gguf(config)
        if gguf is None:
            raise EngineError("serve.engine = \"llamacpp\" needs a GGUF of the base model: model.source = "
                              "\"embedded\" or a .gguf file, or serve.gguf = the GGUF of model.source "
                              "(llama.cpp's convert_hf_to_gguf.py writes one)")
        return LlamaCppEngine(gguf, loaded, decoding, m.max_context, s.max_loaded_adapters, s.threads)
    if name == "vllm":
        from chatbot.serving.vllm import VllmEngine
        from chatbot.serving.vllm_server import running_url

        url = s.vllm_url or (running_url(home) if home is not None else None)
        if not url:
            raise EngineError("serve.engine = \"vllm\" with no serve.vllm_url: start the app (`chatbot serve` starts "
                              "a vLLM server for this home) or set serve.vllm_url to a running server "
                              "(docs/engines.md)")
        return VllmEngine(url, loaded, decoding, m.max_context, s.max_loaded_adapters)
    raise EngineError(f"serve.engine {name!r}: choose one of {', '.join(ENGINES)}")
