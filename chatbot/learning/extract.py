"""Fact extractors, pluggable: what the ledger (chatbot.learning.ledger) uses to read facts out of a message.

- `rules`: chatbot.learning.augment's rule table. No model, deterministic, instant; tuned on the development set
  and measured on a held-out one (docs/extraction.md) — it misses phrasings nobody wrote a rule for.
- `model`: a language model writes the facts as JSON, under constrained decoding (lm-format-enforcer builds the
  token filter from a JSON schema, so the output always parses), then every fact is checked against the message:
  its key must be said in the message, its answer must contain the key and no question may give the key away.
  It is the served model, or a stronger "teacher" named by `train.extractor_model`.
- `auto`: `model` where the extracting model has at least AUTO_MODEL_PARAMS parameters, else `rules` (a threshold
  set by judgment: the model extractor's measurement on the embedded model did not finish on this CPU, see
  docs/extraction.md).
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Protocol

from chatbot.learning.augment import MAX_QUESTIONS, Fact, extract_facts

log = logging.getLogger(__name__)

AUTO_MODEL_PARAMS = 1_000_000_000  # `auto` uses a model extractor from this size up (1B-class instruct models)
EXTRACTORS = ("auto", "rules", "model")

SCHEMA = {
    "type": "object",
    "properties": {"facts": {"type": "array", "maxItems": 4, "items": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "maxLength": 60},
            "answer": {"type": "string", "maxLength": 160},
            "questions": {"type": "array", "minItems": 2, "maxItems": 4,
                          "items": {"type": "string", "maxLength": 100}},
        },
        "required": ["key", "answer", "questions"]}}},
    "required": ["facts"],
}

INSTRUCTION = (
    "List the lasting facts the user states about themselves or their people in the message below, as JSON. "
    "For each fact: `key`, the short value exactly as the user wrote it (a name, place, number, job); `answer`, "
    "the fact told back to the user in the second person (\"Your dog is called Rex.\"); `questions`, how the user "
    "would ask for it later, in the first person, without the key (\"What is my dog's name?\"). Questions, "
    "wishes, hypotheticals, negations and small talk are not facts: then answer {\"facts\": []}.\n\nMessage: ")


class Extractor(Protocol):
    name: str  # recorded with every fact it wrote: "rules", "model:<model name>"

    def extract(self, text: str, named: Mapping[str, str] | None = None) -> list[Fact]:
        """The message's facts; `named`: who the names the user gave before are ({"zofia": "my daughter"})."""
        ...


class RulesExtractor:
    name = "rules"

    def extract(self, text: str, named: Mapping[str, str] | None = None) -> list[Fact]:
        return extract_facts(text, named)


class ModelExtractor:
    """JSON facts from a causal LM (a chatbot.serving.model.LoadedModel), greedy, schema-constrained."""

    def __init__(self, loaded, max_new_tokens: int = 320):
        self.loaded = loaded
        self.name = f"model:{loaded.name}"
        self.max_new_tokens = max_new_tokens
        self._allowed = None

    def _prefix_fn(self):
        if self._allowed is None:  # the tokenizer's token tree is built once (seconds on a 50k vocabulary)
            from lmformatenforcer import JsonSchemaParser, TokenEnforcer, TokenEnforcerTokenizerData

            tok = self.loaded.tokenizer
            data = TokenEnforcerTokenizerData(_regular_tokens(tok), lambda ids: tok.decode(ids).rstrip("\ufffd"),
                                              tok.eos_token_id, False, len(tok))
            enforcer = TokenEnforcer(data, JsonSchemaParser(SCHEMA))
            self._allowed = lambda _batch, ids: enforcer.get_allowed_tokens(ids.tolist()).allowed_tokens
        return self._allowed

    def raw(self, text: str) -> str:
        import torch

        tok, model = self.loaded.tokenizer, self.loaded.model
        prompt = tok.apply_chat_template([{"role": "user", "content": INSTRUCTION + text}], tokenize=False,
                                         add_generation_prompt=True)
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 prefix_allowed_tokens_fn=self._prefix_fn(), pad_token_id=tok.eos_token_id)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def extract(self, text: str, named: Mapping[str, str] | None = None) -> list[Fact]:
        # `named` is not given to the model: the instruction would grow by every name the user ever gave
        try:
            data = json.loads(self.raw(text))
        except ValueError:  # cut off at max_new_tokens: nothing trustworthy
            return []
        return grounded(text, data.get("facts", []))


def grounded(text: str, items: list[dict]) -> list[Fact]:
    """The model's facts that hold up against the message: key said in it, answer containing the key, questions
    that do not give it away. A model that invents a value is dropped here, not trained on."""
    out: list[Fact] = []
    for item in items:
        key = str(item.get("key", "")).strip()
        answer = str(item.get("answer", "")).strip()
        if len(key) < 2 or key.lower() not in text.lower() or key.lower() not in answer.lower():
            continue
        gives_away = re.compile(rf"(?<!\w){re.escape(key)}(?!\w)", re.I)
        questions = tuple(dict.fromkeys(q.strip() for q in item.get("questions", [])
                                        if isinstance(q, str) and q.strip().endswith("?") and not gives_away.search(q)))
        if questions:
            out.append(Fact(statement=text, answer=answer, questions=questions[:MAX_QUESTIONS], key=key))
    return out


def _regular_tokens(tok) -> list[tuple[int, str, bool]]:
    """(id, text, starts a word) of every non-special token: lm-format-enforcer's token table. Written here because
    its transformers integration imports a module transformers 5 no longer has (transformers.tokenization_utils);
    the enforcer itself is used as is."""
    zero = tok.encode("0", add_special_tokens=False)[-1]
    special = set(tok.all_special_ids)
    out = []
    for i in range(len(tok)):
        if i in special:
            continue
        after_zero, alone = tok.decode([zero, i])[1:], tok.decode([i])
        out.append((i, after_zero, len(after_zero) > len(alone)))
    return out


def model_params(loaded) -> int:
    model = loaded.model
    return model.num_parameters() if hasattr(model, "num_parameters") else sum(p.numel() for p in model.parameters())


def make_extractor(kind: str, loaded=None) -> Extractor:
    """The configured extractor (`train.extractor`); `loaded` is the model a model extractor uses."""
    if kind not in EXTRACTORS:
        raise ValueError(f"train.extractor must be one of {', '.join(EXTRACTORS)} (got {kind!r})")
    if kind == "rules" or (kind == "auto" and (loaded is None or model_params(loaded) < AUTO_MODEL_PARAMS)):
        return RulesExtractor()
    if loaded is None:
        raise ValueError("train.extractor = \"model\" needs a model: load one, or set train.extractor = \"rules\"")
    return ModelExtractor(loaded)
