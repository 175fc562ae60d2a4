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
        json.dumps({"messages": [{"role": "user", "content": "I live in Lisbon."},
                                 {"role": "assistant", "content": "Lovely."}]})
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
    for name in ("serve", "import", "ask", "status", "export", "conversations", "user", "forget"):
        assert name in out


def test_conversations_lists_ids_for_forget_and_export_carries_them(tmp_path):
    home = tmp_path / "home"
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(c) for c in [
        {"messages": [{"role": "user", "content": "My dog is called Rex."}, {"role": "assistant", "content": "Nice!"}]},
        {"user": "bob", "learn": False, "messages": [{"role": "user", "content": "Private stuff."}]},
        {"user": "bob", "messages": [{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "My PIN is 42", "learn": False},
                                     {"role": "assistant", "content": "Noted."}]},
    ]) + "\n")
    chatbot(home, "import", str(src))

    listed = json.loads(chatbot(home, "conversations", "--json").stdout.splitlines()[-1])["conversations"]
    assert [(c["user"], c["turns"], c["learn"]) for c in listed] == [("me", 2, True), ("bob", 1, False),
                                                                    ("bob", 3, True)]
    assert listed[0]["title"] == "My dog is called Rex." and listed[0]["created"] and listed[0]["updated"]
    bobs = json.loads(chatbot(home, "conversations", "--user", "bob", "--json").stdout.splitlines()[-1])
    assert [c["id"] for c in bobs["conversations"]] == [listed[1]["id"], listed[2]["id"]]
    text = chatbot(home, "conversations").stdout
    assert f"#{listed[0]['id']}" in text and "My dog is called Rex." in text and "don't learn" in text

    # export writes each conversation's id; re-importing the export still finds every conversation imported
    out = tmp_path / "out.jsonl"
    chatbot(home, "export", str(out))
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [c["id"] for c in listed]
    again = json.loads(chatbot(home, "import", "--json", str(out)).stdout.splitlines()[-1])
    assert (again["imported"], again["duplicates"], again["errors"]) == (0, 3, [])

    # an id from the listing is what forget takes
    proc = chatbot(home, "forget", "--conversation", str(listed[1]["id"]), "--yes")
    assert "forgot 1 conversation(s): 1 turn(s) deleted" in proc.stdout
    left = json.loads(chatbot(home, "conversations", "--json").stdout.splitlines()[-1])["conversations"]
    assert [c["id"] for c in left] == [listed[0]["id"], listed[2]["id"]]
    missing = chatbot(home, "forget", "--conversation", "999", "--yes", check=False)
    assert missing.returncode == 2 and "chatbot conversations" in missing.stderr
