"""The "What I know about you" tab in a real browser, logged in as two users in turn: each sees only their own
facts, corrects and forgets them, and a fact said in the chat shows up (read off the chat path)."""
import sqlite3

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, import_facts, serving

from chatbot.privacy.accounts import Accounts

pytestmark = pytest.mark.browser
PASSWORDS = {"ann": "ann-password-1", "bob": "bob-password-2"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    home = tmp_path_factory.mktemp("facts") / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'[model]\nsource = "{tiny_model_dir}"\nquantization = "none"\n'
                                      "max_context = 512\n[decoding]\nmax_new_tokens = 8\n")
    accounts = Accounts(home / "users.json")
    for user in PASSWORDS:
        accounts.add(user, PASSWORDS[user])
    import_facts(home, [{"user": u, "messages": [{"role": "user", "content": t},
                                                  {"role": "assistant", "content": "Noted."}]}
                        for u, t in (("ann", "My dog is called Rex."), ("bob", "My cat is called Tom."))], home.parent)
    with serving(home) as url:
        yield url, home


def login(browser, url, user):
    page = browser.new_page()  # a context of its own: no cookies shared with the other user's page
    page.goto(url)
    page.locator("input").first.fill(user)
    page.fill("input[type=password]", PASSWORDS[user])
    page.keyboard.press("Enter")
    page.wait_for_selector("#header >> text=signed in as", timeout=30000)
    page.get_by_role("tab", name="What I know about you").click()
    return page


def table(page) -> str:
    return page.inner_text("#facts-table")


def wait_text(page, selector: str, text: str, timeout: int = 20000) -> None:
    """Until the element shows `text` (Gradio's table renders each cell twice, once hidden: no text= locator)."""
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[selector, text], timeout=timeout)


def fact_id(home, key: str) -> int:
    return sqlite3.connect(home / "chatbot.sqlite3").execute("SELECT id FROM facts WHERE key = ?", (key,)).fetchone()[0]


def test_two_users_see_correct_and_forget_only_their_own_facts(server):
    from playwright.sync_api import sync_playwright

    url, home = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ann = login(browser, url, "ann")
        wait_text(ann, "#facts-table", "Your dog is called Rex.")
        assert "Tom" not in table(ann) and "pending" in table(ann)

        # ann corrects her fact by value
        ann.fill("#fact-id input", str(fact_id(home, "Rex")))
        ann.fill("#fact-text textarea", "Max")
        ann.click("#fact-correct")
        wait_text(ann, "#facts-table", "Your dog is called Max.")
        assert "Rex" not in table(ann)

        # a fact said in the chat is read in the background and shows up
        ann.get_by_role("tab", name="Chat").click()
        ann.fill("#message textarea", "I live in Bergen.")
        ann.keyboard.press("Enter")
        ann.wait_for_function("document.querySelectorAll('#chat .message.bot').length > 0", timeout=60000)
        ann.get_by_role("tab", name="What I know about you").click()
        wait_text(ann, "#facts-table", "Bergen")

        # bob sees only his own fact, and cannot forget ann's
        bob = login(browser, url, "bob")
        wait_text(bob, "#facts-table", "Your cat is called Tom.")
        assert "Max" not in table(bob) and "Bergen" not in table(bob)
        bob.fill("#fact-id input", str(fact_id(home, "Max")))
        bob.click("#fact-forget")
        wait_text(bob, "#fact-notice", "Not forgotten")
        bob.fill("#fact-id input", str(fact_id(home, "Tom")))
        bob.click("#fact-forget")
        wait_text(bob, "#fact-notice", "forgotten: erased")
        assert "Tom" not in table(bob)
        ann.click("#fact-refresh")
        ann.wait_for_timeout(1000)
        assert "Your dog is called Max." in table(ann)  # untouched by bob
        browser.close()
