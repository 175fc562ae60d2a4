"""The consolidation lock: one run at a time per data home, and the one definition of "a consolidation is
running". The lock is a kernel file lock (fcntl via filelock), released when its holder dies, so a killed run
never blocks the next one. Who holds it is written beside it (pid, start time)."""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from chatbot.core.fsio import read_json, write_json_atomic
from chatbot.core.paths import Paths


class AlreadyRunning(RuntimeError):
    """Another consolidation holds the lock."""


@contextlib.contextmanager
def run_lock(home: Path) -> Iterator[None]:
    """Hold the consolidation lock or raise AlreadyRunning saying who holds it."""
    paths = Paths(home)
    paths.home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.lock), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        info = read_json(paths.lock_info, {}) or {}
        since = time.strftime("%H:%M:%S", time.localtime(info["started"])) if "started" in info else "?"
        raise AlreadyRunning(
            f"a consolidation is already running (pid {info.get('pid', '?')}, started {since}); "
            "wait for it to finish (see `chatbot versions`)"
        ) from None
    try:
        write_json_atomic(paths.lock_info, {"pid": os.getpid(), "started": time.time()})
        yield
    finally:
        with contextlib.suppress(OSError):
            paths.lock_info.unlink()
        lock.release()


def pid_alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)  # type: ignore[arg-type]
    except (OSError, TypeError, ValueError):
        return False
    return True


def is_running(home: Path) -> bool:
    """Whether a consolidation holds the lock, read from the holder's note and its pid (never by taking the
    lock: a poll that briefly held it would make a run starting at that moment fail with "already running").
    A holder killed with -9 leaves its note behind; its pid is dead, so it does not count."""
    info = read_json(Paths(home).lock_info, None)
    return isinstance(info, dict) and pid_alive(info.get("pid"))
