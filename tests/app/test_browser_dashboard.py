"""The Dashboard tab in a real browser: the score plot, the forgetting summary and the runs table of a home whose
versions went through the probe gate; the tab refreshes itself when a consolidation adds a version."""
import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import serving

pytestmark = pytest.mark.browser


def conversations(start, n):
    return "\n".join(json.dumps({"messages": [{"role": "user", "content": f"My pet number {i} is called Rex{i}."},
                                              {"role": "assistant", "content": "Nice!"}]})
                     for i in range(start, start + n))


def cli(home, *args):
    return subprocess.run([sys.executable, "-m", "chatbot", "--home", str(home), *args], check=True,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory, tiny_model_dir):
    home = tmp_path_factory.mktemp("dash") / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[model]\nsource = "{tiny_model_dir}"\nquantization = "none"\n[decoding]\nmax_new_tokens = 8\n'
        # continue: v0002 trains further on v0001's adapter, so the answer diff between them is never empty
        "[train]\nstrategy = \"continue\"\nepochs = 1\nmin_steps = 0\nbatch_size = 4\nrehearsal_count = 1\n"
        "max_seq_len = 64\n"
        "[probes]\nnoise_runs = 0\n")
    first = home.parent / "first.jsonl"
    first.write_text(conversations(0, 3))
    cli(home, "import", str(first))
    cli(home, "consolidate", "--quiet")  # v0001 through the default probe gate
    with serving(home) as url:
        yield url, home


def choose(page, selector: str, option: str) -> None:
    """Pick `option` in a Gradio dropdown."""
    page.locator(f"{selector} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_dashboard_shows_plot_runs_and_refreshes(dashboard_server, browser):  # noqa: F811
    url, home = dashboard_server
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Dashboard").click()
    # The line plot renders (Vega draws a canvas or svg) with the suites as series.
    page.wait_for_selector("#scores-plot canvas, #scores-plot svg", timeout=30000)
    page.wait_for_function("document.querySelector('#scores-plot').innerText.includes('general-qa')", timeout=30000)
    runs = page.locator("#runs")
    page.wait_for_function("document.querySelector('#runs').innerText.includes('v0001')", timeout=10000)
    assert "promoted" in runs.inner_text()
    assert "v0001" in page.locator("#forgetting").inner_text()
    page.wait_for_function("document.querySelector('#summary').innerText.includes('v0001')", timeout=10000)

    # A consolidation that runs while the tab is open shows up without clicking anything.
    more = home.parent / "more.jsonl"
    more.write_text(conversations(10, 2))
    cli(home, "import", str(more))
    cli(home, "consolidate", "--quiet")
    page.wait_for_function("document.querySelector('#runs').innerText.includes('v0002')", timeout=30000)
    page.wait_for_function("document.querySelector('#scores-plot').innerText.includes('v0002')", timeout=30000)
    page.wait_for_function("document.querySelector('#runs').innerText.split('promoted').length === 3", timeout=30000)
    # The answer diff compares the two newest versions, probe by probe.
    page.wait_for_function("document.querySelector('#probe-diff').innerText.includes('acquisition/v0001')",
                           timeout=30000)
    page.screenshot(path=str(home.parent / "dashboard.png"), full_page=True)

    # A second user's adapter line: "all" lists every user's runs; choosing a user shows only theirs.
    bob = home.parent / "bob.jsonl"
    bob.write_text(json.dumps({"user": "bob", "messages": [{"role": "user", "content": "My cat is called Tom."},
                                                           {"role": "assistant", "content": "Nice!"}]}))
    cli(home, "import", str(bob))
    cli(home, "consolidate", "--quiet")
    page.wait_for_function("document.querySelector('#runs').innerText.includes('v0003')", timeout=30000)
    choose(page, "#dashboard-user", "bob")
    page.wait_for_function("!document.querySelector('#runs').innerText.includes('v0001')", timeout=30000)
    assert "v0003" in page.locator("#runs").inner_text()
    choose(page, "#dashboard-user", "me")
    page.wait_for_function("!document.querySelector('#runs').innerText.includes('v0003')", timeout=30000)
    assert "v0002" in page.locator("#runs").inner_text()
    page.close()

    # v0002 continued from v0001 and was probed on v0001's facts too: BWT = R[v2][v1] - R[v1][v1].
    db = sqlite3.connect(home / "chatbot.sqlite3")
    score = dict(((v, s), x) for v, s, x in db.execute(
        "SELECT version, suite, score FROM probe_results WHERE run = 'greedy'"))
    metrics = json.loads(db.execute("SELECT metrics FROM probe_verdicts WHERE version = 'v0002'").fetchone()[0])
    assert metrics["bwt"] == pytest.approx(score[("v0002", "acquisition/v0001")]
                                           - score[("v0001", "acquisition/v0001")])
    assert metrics["acquisition"]["suite"] == "acquisition/v0002"
