"""The CLI as a user runs it: real subprocesses, real files."""
import json
import subprocess
import sys

import pytest
from conftest import chatbot


@pytest.fixture
def tiny_toml(tmp_path, tiny_model_dir):
    path = tmp_path / "tiny.toml"
    path.write_text(f'[model]\nsource = "{tiny_model_dir}"\nquantization = "none"\n[decoding]\nmax_new_tokens = 8\n')
    return path


def test_import_status_export_ask(tmp_path, tiny_toml):
    home = tmp_path / "home"
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"messages": [{"role": "user", "content": "I live in Lisbon."}, {"role": "assistant", "content": "Lovely."}]})
        + "\nnot json\n"
    )
    proc = chatbot(home, "import", "--json", str(src))
    assert json.loads(proc.stdout.splitlines()[-1])["imported"] == 1
    assert "in.jsonl:2: skipped: not valid JSON" in proc.stderr

    status = json.loads(chatbot(home, "status", "--json").stdout.splitlines()[-1])
    assert (status["users"], status["conversations"], status["turns"], status["indexed_vectors"]) == (1, 1, 2, 2)

    out = tmp_path / "out.jsonl"
    chatbot(home, "export", str(out))
    assert json.loads(out.read_text())["messages"][0]["content"] == "I live in Lisbon."

    ask = chatbot(home, "ask", "--json", "--no-memory", "Where do I live?", "  ", config=tiny_toml, check=False)
    assert ask.returncode == 1  # one question was refused
    result = json.loads(ask.stdout.splitlines()[-1])
    assert result["memory"] is False and result["answers"][0]["answer"] and result["answers"][0]["memories"] == []
    assert "Empty" in result["answers"][1]["error"]
    # ask does not log anything
    assert json.loads(chatbot(home, "status", "--json").stdout.splitlines()[-1])["turns"] == 2


def test_clear_errors(tmp_path):
    home = tmp_path / "home"
    p = chatbot(home, "import", str(tmp_path / "missing.jsonl"), check=False)
    assert p.returncode == 2 and "no such file" in p.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nquantization = 'fp3'\n")
    p = chatbot(home, "--config", str(bad), "status", check=False)
    assert p.returncode == 2 and "model.quantization" in p.stderr
    p = chatbot(home, "export", str(tmp_path / "no" / "such" / "dir.jsonl"), check=False)
    assert p.returncode == 2 and "folder does not exist" in p.stderr
    notdb = tmp_path / "junk"
    notdb.mkdir()
    (notdb / "chatbot.sqlite3").write_bytes(b"garbage" * 1000)
    p = chatbot(notdb, "status", check=False)
    assert p.returncode == 2 and "corrupt" in p.stderr


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "chatbot", "--help"], capture_output=True, text=True).stdout
    for name in ("serve", "import", "ask", "status", "export", "user", "forget"):
        assert name in out
