"""The transformers engine: streaming generation with transformers `generate` on the bitsandbytes-quantized model
(the reference engine, and the only one whose logits the KL and perplexity probes read). A stop signal really ends
`generate`; torch is seeded before every reply. One generation at a time: the model is shared by every chat
session, and on a CPU parallel generates only slow each other down.

Several users' adapters stay loaded on the one base as peft named adapters; each generation names the adapter it
runs with and switches under the generation lock, so a reply never runs on another user's weights. Past
serve.max_loaded_adapters the least recently used adapter is unloaded (and loaded again from its folder when its
user returns)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from chatbot.core.config import DecodingConfig
from chatbot.serving.engine import BASE, ELLIPSIS, Engine, Prompt  # noqa: F401  (Prompt, ELLIPSIS: re-exported)
from chatbot.serving.model import LoadedModel


class _StopOnEvent(StoppingCriteria):
    """Ends generate() at the next token once `event` is set (the stop button, a closed browser tab)."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class Generator(Engine):
    """The transformers engine on one loaded model and its peft adapters."""

    name = "transformers"

    def __init__(self, loaded: LoadedModel, decoding: DecodingConfig, max_context: int, max_adapters: int = 8):
        # The usable context: what the model supports, capped by config.
        super().__init__(loaded.tokenizer, decoding, min(max_context, loaded.context_length), max_adapters)
        self.loaded = loaded
        self._peft = None  # PeftModel wrapping loaded.model once any adapter was loaded
        self._layers: list = []  # peft's LoRA layers (see _activate)
        self._active: str | None = None  # the adapter the LoRA layers compute

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    @property
    def label(self) -> str:
        return f"{self.loaded.quantization}, transformers"

    def _load(self, name: str, path: str) -> None:
        from peft import PeftModel

        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self.loaded.model, path, adapter_name=name)
        else:
            self._peft.load_adapter(path, adapter_name=name)
        self._peft.eval()
        self._collect_layers()

    def _unload(self, name: str, keep: str) -> None:
        self._activate(keep)  # peft refuses to delete the active adapter
        self._peft.delete_adapter(name)
        self._collect_layers()

    def _collect_layers(self) -> None:
        from peft.tuners.tuners_utils import BaseTunerLayer

        self._layers = [m for m in self._peft.modules() if isinstance(m, BaseTunerLayer)]
        self._active = None  # whatever peft made active now, the next generation sets its own

    def _serving(self, adapter: str | None = None):
        """(module to call generate on, context manager) for `adapter` (default: self.adapter), which must be
        resident: LoRA layers stay injected once loaded, so serving the base means disabling them."""
        name = adapter or self.adapter
        if self._peft is None:
            return self.loaded.model, contextlib.nullcontext()
        if name == BASE:
            return self._peft, self._peft.disable_adapter()
        self._activate(name)
        self._touch(name)
        return self._peft, contextlib.nullcontext()

    def _activate(self, name: str) -> None:
        """Make `name` the adapter the LoRA layers compute. peft's set_adapter walks every module of the model and
        re-sets requires_grad on every adapter's weights: ~50 ms per call on the embedded model here, i.e. ~7 % of
        a reply's time to first token. Inference only needs each LoRA layer's active-adapter name, so it is set
        directly on the layers collected at load (~2 ms for the 210 layers; peft's own set_adapter does the same
        assignment, BaseTunerLayer._active_adapter). Covered by tests/serving/test_generate.py: every reply
        equals the reply of its adapter loaded alone."""
        if self._active == name:
            return
        for layer in self._layers:
            layer._active_adapter = [name]
        self._peft.base_model.active_adapter = name
        self._active = name

    def stream(self, prompt: Prompt, stop: threading.Event | None = None,
               adapter: tuple[str, str | None] | None = None, **overrides) -> Iterator[str]:
        """Yield reply text pieces as they are generated, with `adapter` = (version name, folder) loaded if needed
        (default: self.adapter). `overrides` replace decoding settings or add generate() arguments. Closing the
        iterator early (or setting `stop`) ends generation at the next token and frees the model for the next
        reply."""
        stop = stop or threading.Event()
        abandoned = threading.Event()  # set when the consumer goes away; `stop` stays the caller's own signal
        settings = {**self.decoding.__dict__, **overrides}
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=None)
        kwargs = dict(
            input_ids=prompt.input_ids.to(self.model.device),
            attention_mask=torch.ones_like(prompt.input_ids).to(self.model.device),
            max_new_tokens=settings["max_new_tokens"],
            do_sample=settings["do_sample"],
            repetition_penalty=settings["repetition_penalty"],
            pad_token_id=self.tokenizer.pad_token_id,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop, abandoned)]),
        )
        if settings["do_sample"]:
            kwargs.update(temperature=settings["temperature"], top_p=settings["top_p"])
        # Anything else (e.g. min_new_tokens, suppress_tokens) goes straight to generate().
        kwargs.update({k: v for k, v in overrides.items() if k not in self.decoding.__dict__})
        errors: list[BaseException] = []

        def run() -> None:
            with self._lock:
                try:
                    if stop.is_set() or abandoned.is_set():
                        streamer.end()
                        return
                    if adapter is not None:
                        self._ensure(*adapter)
                    torch.manual_seed(settings["seed"])
                    model, context = self._serving(adapter[0] if adapter else None)
                    with torch.inference_mode(), context:
                        model.generate(**kwargs)
                except BaseException as e:  # surfaced in the consumer thread below
                    errors.append(e)
                    streamer.end()

        thread = threading.Thread(target=run, name="generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            abandoned.set()  # no-op when finished; ends generation when the consumer went away
            thread.join()
        if errors:
            raise errors[0]

    @contextlib.contextmanager
    def serving(self, base: bool = False) -> Iterator[torch.nn.Module]:
        """The served module under the generation lock, for forward passes (probes): the adapter being served,
        or with `base` the bare base model (LoRA layers disabled, not merged)."""
        with self._lock:
            model, context = self._serving()
            if base and self._peft is not None and self.adapter != BASE:
                model, context = self._peft, self._peft.disable_adapter()
            with torch.inference_mode(), context:
                yield model

    def generate_batch(self, conversations: list[list[dict]], max_new_tokens: int, batch_size: int = 16,
                       **overrides) -> list[str]:
        """Replies to many single-turn chats at once (probes): left-padded batches, decoding settings as served
        unless overridden, torch seeded before each batch. Batching gives the same greedy replies as one at a
        time up to float rounding of the padded positions, and is several times faster on a CPU."""
        settings = {**self.decoding.__dict__, **overrides}
        texts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                 for m in conversations]
        out: list[str] = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                                 padding_side="left", add_special_tokens=False)
            kwargs = dict(max_new_tokens=max_new_tokens, do_sample=settings["do_sample"],
                          repetition_penalty=settings["repetition_penalty"], pad_token_id=self.tokenizer.pad_token_id)
            if settings["do_sample"]:
                kwargs.update(temperature=settings["temperature"], top_p=settings["top_p"])
            with self.serving() as model:
                torch.manual_seed(settings["seed"])
                ids = model.generate(input_ids=enc["input_ids"].to(self.model.device),
                                     attention_mask=enc["attention_mask"].to(self.model.device), **kwargs)
            out += [t.strip() for t in self.tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:],
                                                                    skip_special_tokens=True)]
        return out
