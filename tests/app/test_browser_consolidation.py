"""The Consolidation tab in a real browser: "Consolidate now" runs in a background process while the chat keeps
answering; progress and the new version show up; the chat then serves it without a restart."""
import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory, tiny_model_dir):
    home = tmp_path_factory.mktemp("consol") / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[model]\nsource = "{tiny_model_dir}"\nquantization = "none"\n[decoding]\nmax_new_tokens = 12\n'
        "[train]\nepochs = 30\nbatch_size = 4\nrehearsal_count = 1\nmax_seq_len = 96\n[probes]\nnoise_runs = 0\n")
    facts = home.parent / "facts.jsonl"
    facts.write_text("\n".join(json.dumps({"messages": [
        {"role": "user", "content": f"My pet number {i} is called Rex{i}."},
        {"role": "assistant", "content": "Nice!"}]}) for i in range(6)))
    subprocess.run([sys.executable, "-m", "chatbot", "--home", str(home), "import", str(facts)], check=True,
                   capture_output=True)
    with serving(home) as url:
        yield url, home


def test_consolidate_now_while_chatting(tiny_server, browser):  # noqa: F811
    url, home = tiny_server
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Consolidation").click()
    page.click("#consolidate-now")
    page.wait_for_selector("text=Running", timeout=60000)  # live progress from the background process

    # The chat keeps answering while the job trains.
    page.get_by_role("tab", name="Chat").click()
    page.fill("#message textarea", "Are you still there?")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#chat .message.bot').length > 0 && "
                           "document.querySelector('#chat .message.bot').innerText.trim().length > 0", timeout=60000)
    running_during_chat = (home / "consolidate.lock.json").exists()

    page.get_by_role("tab", name="Consolidation").click()
    page.wait_for_selector("#progress >> text=v0001 promoted", timeout=240000)
    page.wait_for_function("document.querySelector('#versions').innerText.includes('v0001')", timeout=10000)
    assert running_during_chat, "the consolidation finished before the chat reply: make the job longer"

    # The next reply is written by v0001, and the header says so.
    page.get_by_role("tab", name="Chat").click()
    page.fill("#message textarea", "And now?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#header >> text=v0001", timeout=30000)
    db = sqlite3.connect(home / "chatbot.sqlite3")
    learned = {r[0] for r in db.execute("SELECT id FROM turns WHERE consolidated_in = 'v0001'")}
    manifest = json.loads((home / "adapters" / "users" / "me" / "v0001" / "manifest.json").read_text())
    assert learned == set(manifest["new_turn_ids"]) and len(learned) >= 12
    page.close()
