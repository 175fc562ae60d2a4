"""The vLLM engine: a client of an OpenAI-compatible vLLM server (serve.vllm_url) started with LoRA enabled, for GPU
servers. Each adapter version is loaded into the server at runtime under its version name
(POST /v1/load_lora_adapter; the server needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and must see the adapter
folder at the same path) and named as the `model` of each request, so the server batches every user's requests
continuously, whichever adapter each one uses. Prompts go as token ids (/v1/completions), built by the shared
prompt builder, so the server sees what the other engines see. docs/engines.md has the server command line.

Only the standard library talks HTTP here (urllib): four endpoints do not justify an HTTP client dependency."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

from chatbot.core.config import DecodingConfig
from chatbot.serving.engine import BASE, Engine, EngineError, Prompt
from chatbot.serving.model import LoadedModel

TIMEOUT_S = 600


class VllmEngine(Engine):
    name = "vllm"

    def __init__(self, url: str, loaded: LoadedModel, decoding: DecodingConfig, max_context: int,
                 max_adapters: int = 8):
        super().__init__(loaded.tokenizer, decoding, min(max_context, loaded.context_length), max_adapters)
        self.loaded = loaded
        self.url = url.rstrip("/")
        models = self._request("GET", "/v1/models")["data"]
        bases = [m["id"] for m in models if not m.get("parent")]
        if not bases:
            raise EngineError(f"the vLLM server at {self.url} lists no base model")
        self.base_model = bases[0]
        # Generation runs concurrently on the server; the lock only orders adapter loads and unloads.

    @property
    def label(self) -> str:
        return f"vLLM at {self.url}"

    def _request(self, method: str, path: str, body: dict | None = None, stream: bool = False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as e:
            raise EngineError(f"vLLM server {self.url}{path}: HTTP {e.code}: {e.read()[:500]!r}") from None
        except OSError as e:
            raise EngineError(f"vLLM server {self.url} not reachable ({e}): start it (docs/engines.md) or set "
                              "serve.vllm_url") from None
        if stream:
            return response
        with response:
            text = response.read().decode()
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def _load(self, name: str, path: str) -> None:
        try:
            self._request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        except EngineError as e:
            if "already" not in str(e).lower():  # loaded by an earlier process of ours: fine
                raise

    def _unload(self, name: str, keep: str) -> None:
        self._request("POST", "/v1/unload_lora_adapter", {"lora_name": name})

    def _body(self, tokens, settings: dict) -> dict:
        sample = settings["do_sample"]
        return {"prompt": tokens, "max_tokens": settings["max_new_tokens"],
                "temperature": settings["temperature"] if sample else 0.0,
                "top_p": settings["top_p"] if sample else 1.0, "seed": settings["seed"],
                "repetition_penalty": settings["repetition_penalty"], "skip_special_tokens": True}

    def _model(self, name: str) -> str:
        return self.base_model if name == BASE else name

    def stream(self, prompt: Prompt, stop: threading.Event | None = None,
               adapter: tuple[str, str | None] | None = None, **overrides) -> Iterator[str]:
        settings = {**self.decoding.__dict__, **overrides}
        with self._lock:
            if adapter is not None:
                self._ensure(*adapter)
            name = adapter[0] if adapter else self.adapter
            name = name if name in self._resident else BASE
            self._touch(name)
        body = {**self._body(prompt.tokens, settings), "model": self._model(name), "stream": True}
        with self._request("POST", "/v1/completions", body, stream=True) as response:
            for line in response:
                if stop is not None and stop.is_set():
                    return  # closing the connection aborts the request on the server
                line = line.decode().strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                piece = json.loads(line[5:])["choices"][0].get("text", "")
                if piece:
                    yield piece

    def generate_batch(self, conversations: list[list[dict]], max_new_tokens: int, batch_size: int = 16,
                       **overrides) -> list[str]:
        """All prompts in one request: the server batches them."""
        settings = {**self.decoding.__dict__, **overrides, "max_new_tokens": max_new_tokens}
        prompts = [self.encode(m)[0].tolist() for m in conversations]
        body = {**self._body(prompts, settings), "model": self._model(self.adapter)}
        choices = self._request("POST", "/v1/completions", body)["choices"]
        return [c["text"].strip() for c in sorted(choices, key=lambda c: c["index"])]
