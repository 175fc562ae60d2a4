"""Streaming generation on the served model: chat template, context-fitting truncation with a notice, a stop
signal that really ends `generate`, and a seed set before every reply. One generation at a time: the model is
shared by every chat session, and on a CPU parallel generates only slow each other down.

Several users' adapters stay loaded on the one base (peft keeps each as a named adapter and `set_adapter` switches
between them in microseconds); each generation names the adapter it runs with, and switches under the generation
lock, so a reply never runs on another user's weights. Past serve.max_loaded_adapters the least recently used
adapter is unloaded (and loaded again from its folder when its user returns)."""
from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from chatbot.core.config import DecodingConfig
from chatbot.serving.model import LoadedModel

ELLIPSIS = "\n[…]\n"


@dataclass
class Prompt:
    input_ids: torch.Tensor  # (1, n) token ids, chat template applied
    notices: list[str] = field(default_factory=list)  # what was cut to fit the context, for the user

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])


class _StopOnEvent(StoppingCriteria):
    """Ends generate() at the next token once `event` is set (the stop button, a closed browser tab)."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class Generator:
    """Turns chat messages into streamed reply text on one loaded model (and, later, its adapter)."""

    def __init__(self, loaded: LoadedModel, decoding: DecodingConfig, max_context: int, max_adapters: int = 8):
        self.loaded = loaded
        self.decoding = decoding
        # The usable context: what the model supports, capped by config.
        self.max_context = min(max_context, loaded.context_length)
        self.max_adapters = max_adapters
        self._lock = threading.Lock()
        self.adapter = "base"  # the default adapter version (generations that name none; "base" = none)
        self._peft = None  # PeftModel wrapping loaded.model once any adapter was loaded
        self._loaded: OrderedDict[str, str] = OrderedDict()  # adapter name → folder, least recently used first
        self._active: str | None = None  # peft's active adapter (set_adapter walks every layer: ~30 ms here)

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    def use_adapter(self, name: str, path: str | None) -> None:
        """Make adapter version `name` from folder `path` (None: the bare base) the default of generations that
        name none (the probes). Takes the generation lock, so the switch happens between generations."""
        with self._lock:
            self._ensure(name, path)
            self.adapter = name

    @property
    def loaded_adapters(self) -> list[str]:
        """Adapters resident beside the base, least recently used first."""
        return list(self._loaded)

    def _ensure(self, name: str, path: str | None) -> None:
        """Load adapter `name` unless resident (caller holds the lock); evict the least recently used ones past
        max_adapters, never the default one or `name`."""
        if name == "base" or path is None:
            return
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return
        from peft import PeftModel

        if self._peft is None:
            self._peft = PeftModel.from_pretrained(self.loaded.model, path, adapter_name=name)
            self._active = name
        else:
            self._peft.load_adapter(path, adapter_name=name)
            self._active = None  # whatever peft made active now, the next generation sets its own
        self._peft.eval()
        self._loaded[name] = path
        for old in list(self._loaded):
            if len(self._loaded) <= self.max_adapters:
                break
            if old not in (name, self.adapter):
                self._activate(name)  # peft refuses to delete the active adapter
                self._peft.delete_adapter(old)
                del self._loaded[old]

    def _serving(self, adapter: str | None = None):
        """(module to call generate on, context manager) for `adapter` (default: self.adapter), which must be
        resident: LoRA layers stay injected once loaded, so serving the base means disabling them."""
        name = adapter or self.adapter
        if self._peft is None:
            return self.loaded.model, contextlib.nullcontext()
        if name == "base":
            return self._peft, self._peft.disable_adapter()
        self._activate(name)
        self._loaded.move_to_end(name)
        return self._peft, contextlib.nullcontext()

    def _activate(self, name: str) -> None:
        """Make `name` peft's active adapter, only when it is not already (consecutive replies of one user pay
        nothing; a switch pays one set_adapter)."""
        if self._active != name:
            self._peft.set_adapter(name)
            self._active = name

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

    def _encode(self, messages: list[dict]) -> torch.Tensor:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]

    def build_prompt(self, messages: list[dict], max_new_tokens: int | None = None) -> Prompt:
        """Apply the chat template and fit the prompt into the context, cutting in this order: the oldest
        history messages, then the system notes (memories), then the middle of the last user message."""
        budget = self.max_context - (max_new_tokens or self.decoding.max_new_tokens)
        budget = max(budget, 32)
        messages = [dict(m) for m in messages]
        notices: list[str] = []
        ids = self._encode(messages)
        if ids.shape[1] <= budget:
            return Prompt(ids, notices)
        dropped = 0
        # Messages between an optional leading system message and the final user message are history.
        first = 1 if messages and messages[0]["role"] == "system" else 0
        while ids.shape[1] > budget and len(messages) - first > 1:
            del messages[first]
            dropped += 1
            ids = self._encode(messages)
        if dropped:
            notices.append(f"{dropped} earlier message(s) of this conversation were left out to fit the model's "
                           "context.")
        if ids.shape[1] > budget and first == 1:
            del messages[0]
            first = 0
            notices.append("Memories were left out to fit the model's context.")
            ids = self._encode(messages)
        if ids.shape[1] > budget:
            last = messages[-1]
            overhead = ids.shape[1] - self.count_tokens(last["content"])
            keep = max(budget - overhead - 8, 8)
            original = self.count_tokens(last["content"])
            last["content"] = self.truncate_tokens(last["content"], keep)
            ids = self._encode(messages)
            notices.append(
                f"Your message is {original} tokens; the model saw only its first and last parts ({keep} tokens, "
                f"context limit {self.max_context}). The full text is saved."
            )
        return Prompt(ids, notices)

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

    def generate(self, prompt: Prompt, **overrides) -> str:
        return "".join(self.stream(prompt, **overrides))

    @contextlib.contextmanager
    def serving(self, base: bool = False) -> Iterator[torch.nn.Module]:
        """The served module under the generation lock, for forward passes (probes): the adapter being served,
        or with `base` the bare base model (LoRA layers disabled, not merged)."""
        with self._lock:
            model, context = self._serving()
            if base and self._peft is not None and self.adapter != "base":
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
