"""Real processes under attack and load: a logged-in server with two users and roles (gradio_client and raw
HTTP), 8 concurrent clients chatting while a consolidation trains, kill -9 while replies stream, and a corrupt
FAISS file at start. The tiny random Llama keeps each of these to seconds."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import spawn_server
from gradio_client import Client

from chatbot.core.config import Config
from chatbot.core.lines import AdapterLines
from chatbot.core.lock import is_running
from chatbot.memory.index import VectorIndex
from chatbot.memory.transfer import import_jsonl
from chatbot.privacy.accounts import Accounts
from chatbot.runtime import open_runtime

PASSWORDS = {"ann": "ann-password-1", "bob": "bob-password-2"}


def write_config(home, tiny_model_dir, extra=""):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[model]\nsource = "{tiny_model_dir}"\nquantization = "none"\nmax_context = 512\n'
        f"[decoding]\nmax_new_tokens = 12\n{extra}")


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory, tiny_model_dir, embedder):
    home = tmp_path_factory.mktemp("accounts") / "home"
    write_config(home, tiny_model_dir,
                 "[train]\nepochs = 40\nbatch_size = 4\nrehearsal_count = 1\nmax_seq_len = 64\nreplay_ratio = 0.0\n")
    accounts = Accounts(home / "users.json")
    accounts.add("ann", PASSWORDS["ann"], admin=True)
    accounts.add("bob", PASSWORDS["bob"])
    facts = home.parent / "facts.jsonl"
    facts.write_text("\n".join(json.dumps({"user": "ann", "messages": [
        {"role": "user", "content": f"My pet number {i} is called Rex{i}."},
        {"role": "assistant", "content": "Nice!"}]}) for i in range(6)) + "\n")
    rt = open_runtime(home, Config(), with_model=False, embedder=embedder)
    import_jsonl(facts, rt.store, rt.buffer, "me")
    rt.close()
    proc, url = spawn_server(home)
    yield url, home
    proc.terminate()
    proc.wait(timeout=30)


def client(url, user, password=None):
    return Client(url, auth=(user, password or PASSWORDS[user]), verbose=False)


def db(home):
    return sqlite3.connect(home / "chatbot.sqlite3")


def test_login_roles_and_isolation_over_http(accounts_server):
    url, home = accounts_server
    with pytest.raises(Exception, match="credentials|login|Login"):
        Client(url, verbose=False)  # no login
    with pytest.raises(Exception, match="login|Login"):
        client(url, "ann", "wrong-password")
    with pytest.raises(Exception, match="login|Login"):
        client(url, "mallory", "anything-at-all")

    ann, bob = client(url, "ann"), client(url, "bob")
    ann_out = ann.predict("Ann's private note: the vault code is 7812.", [], True, api_name="/send")
    ann_conv = db(home).execute("SELECT c.id FROM conversations c JOIN users u ON u.id = c.user_id "
                                "WHERE u.name = 'ann' ORDER BY c.id DESC").fetchone()[0]
    assert ann_out[0][0]["content"][0]["text"].startswith("Ann's private note")
    # bob cannot open ann's conversation (not among his choices, and ChatService checks the owner anyway),
    # nor run consolidations, promote or roll back.
    # gradio_client raises AppError with the message of the gr.Error that gr.Dropdown.preprocess raises
    with pytest.raises(Exception, match="not in the list of choices"):
        bob.predict(ann_conv, api_name="/open")
    assert "Only administrators" in bob.predict(api_name="/consolidate_now")
    assert "Only administrators" in bob.predict(None, api_name="/rollback")
    served_before = AdapterLines(home / "adapters").stamp()
    with pytest.raises(Exception, match="not in the list of choices"):
        bob.predict("base", None, api_name="/promote")  # "base" is not even among his (empty) choices
    assert AdapterLines(home / "adapters").stamp() == served_before
    refresh = bob.predict(None, api_name="/refresh")
    assert refresh[0] == "" and refresh[2]["data"] == []  # no versions, no progress for non-admins
    bob.predict("Bob here.", [], True, api_name="/send")
    forget = bob.predict(api_name="/forget")  # his own, current conversation only
    assert "forgotten" in forget[-1]
    assert db(home).execute("SELECT COUNT(*) FROM turns WHERE text LIKE 'Ann''s private note%'").fetchone() == (1,)
    assert db(home).execute("SELECT COUNT(*) FROM turns WHERE text = 'Bob here.'").fetchone() == (0,)

    # Raw HTTP: nothing without a session; the data home is not served, whatever the path.
    raw = httpx.Client(base_url=url, timeout=30)
    assert raw.get("/config").status_code in (401, 403)
    assert raw.post("/login", data={"username": "bob", "password": "nope-nope"}).status_code >= 400
    assert raw.post("/login", data={"username": "bob", "password": PASSWORDS["bob"]}).status_code == 200
    assert raw.get("/config").status_code == 200 and "vault code" not in raw.get("/config").text
    dbfile = home / "chatbot.sqlite3"
    for path in (f"/gradio_api/file={dbfile}", "/gradio_api/file=../chatbot.sqlite3",
                 f"/gradio_api/file={home}/users.json", "/file=chatbot.sqlite3",
                 "/assets/..%2F..%2Fchatbot.sqlite3", "/static/../../../../etc/passwd"):
        r = raw.get(path)
        assert r.status_code != 200 or (b"SQLite format" not in r.content and b"scrypt" not in r.content
                                         and b"root:" not in r.content), path


def test_eight_clients_chat_while_a_consolidation_runs(accounts_server):
    url, home = accounts_server
    assert "started" in client(url, "ann").predict(api_name="/consolidate_now")
    deadline = time.time() + 120
    while not is_running(home):
        assert time.time() < deadline, "the consolidation never took its lock"
        time.sleep(0.2)

    errors: list[str] = []
    sent: dict[str, str] = {}  # text -> user
    running_seen: list[bool] = []

    def chat(i: int) -> None:
        user = "ann" if i % 2 == 0 else "bob"
        try:
            c = client(url, user)
            history: list = []
            for j in range(4):
                text = f"client {i} message {j}: hello from {user}"
                out = c.predict(text, history, True, api_name="/send")
                history = out[0]
                sent[text] = user
                if not (history[-2]["content"][0]["text"] == text and history[-1]["content"][0]["text"]):
                    errors.append(f"client {i}: unexpected reply {history[-2:]}")
                running_seen.append(is_running(home))
        except Exception as e:  # any error at all fails the test
            errors.append(f"client {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(8)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    chat_s = time.time() - started
    assert errors == [] and len(sent) == 32
    assert any(running_seen), f"the consolidation finished before the chat ({chat_s:.0f} s): make it longer"

    deadline = time.time() + 300
    while is_running(home):
        assert time.time() < deadline, "the consolidation did not finish"
        time.sleep(0.5)
    # one run folder per user with work: bob's chat turns can land before the job lists the users, and then his
    # run (chit-chat, no fact) ends "noop" after ann's; ann's facts must be promoted, and no run may fail
    runs = [json.loads(p.read_text()) for p in sorted((home / "runs").glob("*/progress.json"))]
    assert all(r["stage"] == "done" for r in runs), runs
    ann_runs = [r for r in runs if r.get("user") == "ann"]
    assert ann_runs and ann_runs[-1]["status"] == "promoted", runs
    assert all(r["status"] in ("noop", "promoted") for r in runs if r.get("user") == "bob"), runs

    rows = db(home).execute("SELECT t.text, u.name, t.conversation_id, t.id FROM turns t JOIN conversations c "
                            "ON c.id = t.conversation_id JOIN users u ON u.id = c.user_id WHERE t.role = 'user'"
                            " AND t.text LIKE 'client %'").fetchall()
    assert sorted((text, user) for text, user, _, _ in rows) == sorted(sent.items())  # none lost, none doubled
    for text, _user, cid, tid in rows:
        reply = db(home).execute("SELECT role, status FROM turns WHERE conversation_id = ? AND id > ? ORDER BY id "
                                 "LIMIT 1", (cid, tid)).fetchone()
        assert reply == ("assistant", "complete"), text
    print(f"\n8 clients x 4 messages during a consolidation: {chat_s:.1f} s")


@pytest.mark.browser
def test_login_page_roles_and_forget_button(accounts_server):
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    url, home = accounts_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.fill("input[type=password]", "wrong-password")
        page.locator("input").first.fill("bob")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=/Incorrect|incorrect|invalid/", timeout=20000)
        page.locator("input").first.fill("bob")
        page.fill("input[type=password]", PASSWORDS["bob"])
        page.keyboard.press("Enter")
        page.wait_for_selector("#header >> text=signed in as", timeout=30000)
        assert "bob" in page.inner_text("#header") and "admin" not in page.inner_text("#header")
        assert page.get_by_role("tab", name="Consolidation").count() == 0  # not for non-admins

        page.fill("#message textarea", "A message bob wants gone.")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('#chat .message.bot').length > 0", timeout=60000)
        page.wait_for_timeout(500)
        assert db(home).execute("SELECT COUNT(*) FROM turns "
                                "WHERE text = 'A message bob wants gone.'").fetchone() == (1,)
        page.click("#forget")
        page.click("#forget-confirm")
        page.wait_for_selector("text=is forgotten", timeout=20000)
        assert db(home).execute("SELECT COUNT(*) FROM turns "
                                "WHERE text = 'A message bob wants gone.'").fetchone() == (0,)

        admin = browser.new_page()
        admin.goto(url)
        admin.locator("input").first.fill("ann")
        admin.fill("input[type=password]", PASSWORDS["ann"])
        admin.keyboard.press("Enter")
        admin.wait_for_selector("#header >> text=(admin)", timeout=30000)
        assert admin.get_by_role("tab", name="Consolidation").count() == 1
        browser.close()


def test_kill_9_while_streaming_then_restart_and_corrupt_index(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    write_config(home, tiny_model_dir, "[buffer]\nindex_save_every = 3\n")
    (home / "config.toml").write_text((home / "config.toml").read_text().replace("max_new_tokens = 12",
                                                                                  "max_new_tokens = 400"))
    proc, url = spawn_server(home)
    assert "single-user mode" in (home.parent / "serve.log").read_text()  # said at start (and in the header)
    assert "single-user mode" in httpx.get(url + "config", timeout=30).text

    acked: dict[str, bool] = {}
    finished: dict[str, str] = {}
    partial: dict[str, str] = {}

    def stream(i: int) -> None:
        text = f"stream client {i}: tell me a long story"
        try:
            job = Client(url, verbose=False).submit(text, [], True, api_name="/send")
            for out in job:
                history = out[0]
                if any(m["role"] == "user" and m["content"][0]["text"] == text for m in history):
                    acked[text] = True  # shown as sent: committed before the UI showed it
                if history and history[-1]["role"] == "assistant":
                    partial[text] = history[-1]["content"][0]["text"] if history[-1]["content"] else ""
            if job.status().success:
                finished[text] = partial.get(text, "")
        except Exception:
            pass  # the server is killed under it

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while not (len(acked) == 4 and any(partial.get(t) for t in acked if t not in finished)):
        assert time.time() < deadline, f"streams never started: {acked}, {partial}"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = dict(finished)  # what the clients had received in full when the server died
    assert len(finished) < 4, "every reply finished before the kill: make them longer"

    # Restart (a CLI start runs the same start-up reconciliation as `serve`).
    restart = subprocess.run([sys.executable, "-m", "chatbot", "--home", str(home), "status", "--json"],
                             capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    con = db(home)
    users = {r[0] for r in con.execute("SELECT text FROM turns WHERE role = 'user'")}
    assert set(acked) <= users  # every acknowledged user turn survived
    replies = {r[0] for r in con.execute("SELECT text FROM turns WHERE role = 'assistant'")}
    assert all(finished[t].strip() in replies for t in finished)  # and every completed reply
    indexable = {r[0] for r in con.execute("SELECT id FROM turns WHERE status != 'superseded' AND role != 'system'")}
    index_file, = home.glob("index-*.faiss")
    assert set(VectorIndex.load(index_file, 384).ids().tolist()) == indexable
    assert json.loads(restart.stdout.splitlines()[-1])["indexed_vectors"] == len(indexable)

    index_file.write_bytes(b"\x00garbage" * 100)  # corrupt the FAISS file: rebuilt from SQLite at start
    again = subprocess.run([sys.executable, "-m", "chatbot", "--home", str(home), "status", "--json"],
                           capture_output=True, text=True, timeout=300)
    assert "corrupt" in again.stderr and "rebuilding" in again.stderr
    assert set(VectorIndex.load(index_file, 384).ids().tolist()) == indexable
