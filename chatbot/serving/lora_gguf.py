"""A peft LoRA adapter folder → a GGUF LoRA file that llama.cpp applies on the GGUF base (serving/llamacpp.py).

Written with the `gguf` package (llama.cpp's own Python writer) in the layout llama.cpp's convert_lora_to_gguf.py
writes: general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and per adapted weight W the pair
`<gguf name of W>.lora_a` (peft's lora_A, rank × in) and `.lora_b` (lora_B, out × rank). That script needs the
llama.cpp source tree and the full base model class table; this module handles the few architectures we serve
and needs neither. llama.cpp's HF→GGUF conversion permutes the rows of the query and key projections of
llama-family models (rotary embedding layout), so their lora_B rows are permuted the same way.

The file lands inside the adapter's version folder (`adapter.gguf`), written once (atomically) and reused."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from chatbot.core.registry import GGUF_LORA

# HF model_type → (gguf architecture name, query/key rows permuted by llama.cpp's converter)
ARCHITECTURES = {"llama": ("llama", True), "mistral": ("llama", True), "qwen2": ("qwen2", False),
                 "qwen3": ("qwen3", False)}


class LoraConversionError(ValueError):
    """The adapter cannot be written as a GGUF LoRA; the message says why."""


def supported(model_config) -> bool:
    return getattr(model_config, "model_type", None) in ARCHITECTURES


def _permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute on the output rows (of a weight or of a lora_B)."""
    shape = rows.shape
    return rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def gguf_path(adapter_dir: str | Path) -> Path:
    return Path(adapter_dir) / GGUF_LORA  # in the version folder: withdrawing a version deletes it with the weights


def convert_adapter(adapter_dir: str | Path, model_config) -> Path:
    """Write (once) and return `adapter_dir/adapter.gguf` for the peft adapter in `adapter_dir`, trained on the
    model whose transformers config is `model_config`."""
    import gguf
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    out = gguf_path(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if out.exists() and out.stat().st_mtime >= weights.stat().st_mtime:
        return out
    model_type = getattr(model_config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise LoraConversionError(f"model type {model_type!r}: GGUF LoRA conversion supports "
                                  f"{', '.join(sorted(ARCHITECTURES))}; use serve.engine = \"transformers\"")
    arch_name, permuted = ARCHITECTURES[model_type]
    settings = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    if settings.get("use_dora"):
        raise LoraConversionError("DoRA adapters have no GGUF LoRA form; use serve.engine = \"transformers\"")
    tensors = load_file(str(weights))
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name)
    names = gguf.get_tensor_name_map(arch, model_config.num_hidden_layers)
    n_head = model_config.num_attention_heads
    n_kv = getattr(model_config, "num_key_value_heads", None) or n_head
    rank = int(settings["r"])
    alpha = float(settings["lora_alpha"])
    if settings.get("use_rslora"):
        alpha *= math.sqrt(rank)  # llama.cpp scales by alpha / r; rsLoRA by alpha / sqrt(r)

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        if ".lora_A." not in key and ".lora_B." not in key:
            raise LoraConversionError(f"{key}: only LoRA A/B weights convert (no embeddings or extra modules)")
        module = key.removeprefix("base_model.model.").split(".lora_")[0]
        pairs.setdefault(module, {})["a" if ".lora_A." in key else "b"] = value.astype(np.float32)

    fd, tmp = tempfile.mkstemp(dir=adapter_dir, prefix=".adapter-", suffix=".gguf")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch_name)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for module, ab in sorted(pairs.items()):
            target = names.get_name(module + ".weight", try_suffixes=(".weight",))
            if target is None or "a" not in ab or "b" not in ab:
                raise LoraConversionError(f"{module}: no llama.cpp tensor for this module (or half a LoRA pair)")
            lora_b = ab["b"]
            if permuted and module.endswith("self_attn.q_proj"):
                lora_b = _permute(lora_b, n_head)
            elif permuted and module.endswith("self_attn.k_proj"):
                lora_b = _permute(lora_b, n_kv)
            writer.add_tensor(target + ".lora_a", np.ascontiguousarray(ab["a"]))
            writer.add_tensor(target + ".lora_b", np.ascontiguousarray(lora_b))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
