import tomllib
from pathlib import Path

import pytest

from chatbot.core.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_default_config_equals_code_defaults():
    with open(ROOT / "data" / "config.toml", "rb") as f:
        shipped = tomllib.load(f)
    assert Config.from_dict(shipped).to_dict() == Config().to_dict()
    assert shipped == Config().to_dict()  # every key documented, none stale


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[model]\nquantisation = "4bit"\n')
    with pytest.raises(ConfigError, match=r"model\.quantisation"):
        load_config(tmp_path / "home", f)


def test_bad_value_is_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[model]\nquantization = "3bit"\n')
    with pytest.raises(ConfigError, match=r"model\.quantization = '3bit'"):
        load_config(tmp_path / "home", f)


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"decoding\.max_new_tokens.*expected int"):
        Config.from_dict({"decoding": {"max_new_tokens": "many"}})


def test_malformed_toml_is_reported(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path, f)


def test_home_config_then_flag_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[decoding]\nmax_new_tokens = 10\nseed = 3\n")
    over = tmp_path / "over.toml"
    over.write_text("[decoding]\nseed = 7\n")
    cfg = load_config(home, over)
    assert (cfg.decoding.max_new_tokens, cfg.decoding.seed) == (10, 7)
    assert cfg.model.quantization == "4bit"
