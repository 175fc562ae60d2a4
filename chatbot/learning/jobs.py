"""Background consolidation for the app and the scheduler: start `chatbot consolidate` in its own process (the
chat keeps its model and keeps answering), and read its progress back. No UI code here."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from chatbot.core.lock import is_running
from chatbot.core.paths import Paths
from chatbot.core.runlog import FINISHED, Stage, latest_progress

log = logging.getLogger(__name__)


NICENESS = 10  # added to the app's own; the job yields the CPU to the chat's replies


def spawn_consolidation(home: Path, config_file: str | None = None) -> subprocess.Popen:
    """Start `chatbot consolidate` as a child process (its output goes to HOME/runs/background.log) and return
    it. The child runs at lower priority through `nice` (no preexec_fn: Python documents it as unsafe in a
    process with threads, such as the app's server, where it can deadlock the child)."""
    home = Path(home)
    cmd = [sys.executable, "-m", "chatbot", "--home", str(home)]
    if config_file:
        cmd += ["--config", str(config_file)]
    cmd += ["consolidate", "--json", "--quiet"]
    nice = shutil.which("nice")
    if nice:
        cmd = [nice, "-n", str(NICENESS), *cmd]
    else:
        log.warning("no `nice` command on PATH: the background consolidation runs at normal priority")
    Paths(home).runs.mkdir(parents=True, exist_ok=True)
    # The chat shares these cores: the job leaves a core to the chat, because OpenMP threads of two processes
    # fighting over the same cores slow both down many times over.
    threads = max(1, (os.cpu_count() or 2) - 1)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with open(Paths(home).runs / "background.log", "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)


def start_consolidation(home: Path, config_file: str | None = None) -> str:
    """Launch a consolidation process unless one runs; returns a message for the user."""
    if is_running(home):
        return "A consolidation is already running."
    spawn_consolidation(home, config_file)
    log.info("started a background consolidation")
    return "Consolidation started in the background; the chat keeps working."


def describe_progress(home: Path) -> str:
    """One Markdown line about the current or last consolidation."""
    p = latest_progress(home)
    running = is_running(home)
    if p is None:
        return "No consolidation has run yet." + (" One is starting…" if running else "")
    stage = p.get("stage", "?")
    if p.get("user"):  # one run per user with new data
        p = {**p, "run": f"{p['run']}, user {p['user']}"}
    if running and stage not in FINISHED:
        if stage == Stage.TRAINING and p.get("max_steps"):
            loss = f", loss {p['loss']:.3f}" if isinstance(p.get("loss"), (int, float)) else ""
            return (f"**Running** ({p['run']}): training step {p.get('step', 0)}/{p['max_steps']}{loss}, "
                    f"about {int(p.get('eta_s') or 0)} s left")
        if stage == Stage.PROBING:
            return f"**Running** ({p['run']}): probing {p.get('version', '')} ({p.get('suite', '')})…"
        return f"**Running** ({p['run']}): {stage}…"
    if stage == Stage.DONE:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.get("updated", 0)))
        return f"Last run {p['run']} ({when}): {p.get('message', p.get('status'))}"
    if stage == Stage.FAILED or not running:
        return f"Last run {p['run']} did not finish ({p.get('error', 'killed')}). The served version is unchanged."
    return f"Run {p['run']}: {stage}"
