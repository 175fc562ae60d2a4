"""The consolidation lock and the one "is a consolidation running" check, with real file locks and processes."""
import subprocess
import sys
import threading

from chatbot.core.fsio import write_json_atomic
from chatbot.core.lock import AlreadyRunning, is_running, run_lock
from chatbot.core.paths import Paths


def test_is_running_follows_the_lock(tmp_path):
    assert not is_running(tmp_path)
    with run_lock(tmp_path):
        assert is_running(tmp_path)
    assert not is_running(tmp_path)


def test_a_dead_holders_note_does_not_count(tmp_path):
    # kill -9 leaves the holder's note behind (the kernel frees the lock itself): its pid is dead.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_json_atomic(Paths(tmp_path).lock_info, {"pid": int(dead.stdout), "started": 0.0})
    assert not is_running(tmp_path)
    with run_lock(tmp_path):  # and the next run starts
        assert is_running(tmp_path)


def test_polling_is_running_never_blocks_a_starting_run(tmp_path):
    """The Consolidation tab polls is_running every 2 s while a run may be starting: a poll must never be
    mistaken by run_lock for another holder."""
    stop = threading.Event()
    polls = 0

    def poll():
        nonlocal polls
        while not stop.is_set():
            is_running(tmp_path)
            polls += 1

    poller = threading.Thread(target=poll)
    poller.start()
    refused = 0
    try:
        for _ in range(200):
            try:
                with run_lock(tmp_path):
                    pass
            except AlreadyRunning:
                refused += 1
    finally:
        stop.set()
        poller.join()
    assert refused == 0 and polls > 0
