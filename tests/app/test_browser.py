"""What a person does in the UI, in a real headless Chromium against a real `chatbot serve` on the embedded model."""
import sqlite3
import time

import pytest
from conftest import serving

pytestmark = [pytest.mark.browser, pytest.mark.integration]

@pytest.fixture(scope="module")
def server(tmp_path_factory, embedded_dir, model_cache):
    home = tmp_path_factory.mktemp("browser") / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'[model]\ncache_dir = "{model_cache}"\n[decoding]\nmax_new_tokens = 120\n')
    with serving(home) as url:
        yield url, home


def bot_texts(page) -> list[str]:
    return [t.strip() for t in page.locator("#chat .message.bot").all_inner_texts()]


def test_type_message_see_streamed_reply_find_turn_in_sqlite(server, browser):
    url, home = server
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea")
    page.fill("#message textarea", "Hello! Can you tell me about the Eiffel Tower?")
    page.keyboard.press("Enter")

    snapshots: list[str] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        texts = bot_texts(page)
        current = texts[-1] if texts else ""
        if current and (not snapshots or snapshots[-1] != current):
            snapshots.append(current)
        db = sqlite3.connect(home / "chatbot.sqlite3")
        done = db.execute("SELECT text FROM turns WHERE role = 'assistant'").fetchall()
        db.close()
        if done and current == done[0][0]:
            break
        time.sleep(0.1)
    assert done, "the reply never reached SQLite"
    # Streamed: the reply grew through several partial states before the final text.
    assert len(snapshots) >= 3, snapshots
    assert all(snapshots[-1].startswith(s[: max(1, len(s) - 2)]) for s in snapshots[:-1])

    db = sqlite3.connect(home / "chatbot.sqlite3")
    rows = db.execute("SELECT role, text, status FROM turns ORDER BY id").fetchall()
    assert rows[0] == ("user", "Hello! Can you tell me about the Eiffel Tower?", "complete")
    assert rows[1][0] == "assistant" and rows[1][2] == "complete" and rows[1][1] == snapshots[-1]
    page.screenshot(path=str(home.parent / "chat.png"))
    page.close()


def test_empty_message_is_refused_visibly(server, browser):
    url, home = server
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea")
    before = sqlite3.connect(home / "chatbot.sqlite3").execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    page.fill("#message textarea", "   ")
    page.click("#send")
    page.wait_for_selector("text=Empty message", timeout=20000)
    after = sqlite3.connect(home / "chatbot.sqlite3").execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    assert after == before
    page.close()


def test_dont_learn_toggle_and_stop_button(server, browser):
    url, home = server
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea")
    page.fill("#message textarea", "Write a long story about a dragon who loves tea.")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#chat .message.bot').length > 0 && "
                           "document.querySelector('#chat .message.bot').innerText.trim().length > 5", timeout=60000)
    page.click("#stop")
    page.wait_for_selector("text=Stopped", timeout=30000)
    db = sqlite3.connect(home / "chatbot.sqlite3")
    user_id, = db.execute("SELECT id FROM turns WHERE text LIKE 'Write a long story%'").fetchone()
    status, learn = db.execute("SELECT status, learn FROM turns WHERE id > ? AND role = 'assistant'",
                               (user_id,)).fetchone()
    assert (status, learn) == ("stopped", 0)

    # The flag under the user's message is the per-message "Don't learn" toggle.
    page.locator("#chat button[aria-label='Feedback']").first.click()  # a fresh page: the first is the user's
    page.locator("#chat .extra-feedback-option:visible").first.click()
    page.wait_for_selector("text=This message will not be learned or recalled.", timeout=20000)
    assert db.execute("SELECT learn FROM turns WHERE id = ?", (user_id,)).fetchone() == (0,)
    page.close()
