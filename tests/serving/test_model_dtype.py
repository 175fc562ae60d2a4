"""model.compute_dtype "auto": bfloat16 where this CPU has bf16 instructions, float32 elsewhere; the loaded model
and the base results' key carry the resolved dtype, never "auto"."""
import pytest
import torch

from chatbot.core.config import Config, ConfigError
from chatbot.serving.model import load_model, resolve_compute_dtype


def native_bf16() -> bool:
    return any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def test_auto_is_the_default_and_resolves_per_machine():
    assert Config().model.compute_dtype == "auto"
    expected = "float32" if torch.cuda.is_available() or not native_bf16() else "bfloat16"
    assert resolve_compute_dtype("auto") == expected
    for explicit in ("float32", "bfloat16", "float16"):
        assert resolve_compute_dtype(explicit) == explicit  # a dtype the user names is kept


def test_a_cpu_without_bf16_instructions_gets_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_compute_dtype("auto") == "float32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_compute_dtype("auto") == "bfloat16"


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="compute_dtype"):
        Config.from_dict({"model": {"compute_dtype": "int4"}})


def test_loaded_model_records_the_resolved_dtype(tiny_model_dir):
    loaded = load_model(str(tiny_model_dir), quantization="none", compute_dtype="auto")
    assert loaded.compute_dtype == resolve_compute_dtype("auto")
    assert next(loaded.model.parameters()).dtype == getattr(torch, loaded.compute_dtype)
    assert load_model(str(tiny_model_dir), quantization="none", compute_dtype="float32").compute_dtype == "float32"
