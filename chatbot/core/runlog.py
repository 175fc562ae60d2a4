"""Consolidation runs on disk: one folder per run (HOME/runs/<time>/) with its log file and an atomically
replaced progress.json that the app, the dashboard and `chatbot versions` read. The stage names are the one
vocabulary the writer (the consolidation job) and the readers share."""
from __future__ import annotations

import logging
import os
import time
from enum import StrEnum
from pathlib import Path

from chatbot.core.fsio import read_json, write_json_atomic
from chatbot.core.paths import Paths


class Stage(StrEnum):
    """progress.json's "stage" (StrEnum: members compare equal to the strings on disk)."""
    SELECTING = "selecting"
    LOADING = "loading model"
    EXTRACTING = "reading facts"
    REHEARSAL = "rehearsal"
    TRAINING = "training"
    SAVING = "saving"
    GATE = "gate"
    PROBING = "probing"
    DONE = "done"
    FAILED = "failed"


FINISHED = (Stage.DONE, Stage.FAILED)


class RunLog:
    """A run's folder, log handler and progress file."""

    def __init__(self, runs: Path):
        self.dir = runs / time.strftime("%Y%m%d-%H%M%S")
        while self.dir.exists():
            self.dir = self.dir.with_name(self.dir.name + "-1")
        self.dir.mkdir(parents=True)
        self.started = time.time()
        self.context: dict = {}  # written into every progress update (e.g. the user whose adapter the run trains)
        self.handler = logging.FileHandler(self.dir / "consolidate.log", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("chatbot")
        root.addHandler(self.handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)

    def progress(self, info: dict) -> None:
        write_json_atomic(self.dir / "progress.json",
                          {"pid": os.getpid(), "started": self.started, "updated": time.time(), **self.context,
                           **info})

    def close(self) -> None:
        logging.getLogger("chatbot").removeHandler(self.handler)
        self.handler.close()


def _progress_files(home: Path) -> list[Path]:
    return sorted(Paths(home).runs.glob("*/progress.json"))


def _read(path: Path) -> dict | None:
    data = read_json(path, None)
    return {"run": path.parent.name, **data} if isinstance(data, dict) else None


def all_progress(home: Path) -> list[dict]:
    """Every run's progress.json with its run name, oldest first (unreadable ones skipped)."""
    return [p for p in map(_read, _progress_files(home)) if p is not None]


def latest_progress(home: Path) -> dict | None:
    """The newest readable run's progress (stage, step, max_steps, loss, eta_s, status, message…), or None.
    Polled every few seconds by the app: reads from the newest file back, usually one file."""
    for path in reversed(_progress_files(home)):
        progress = _read(path)
        if progress is not None:
            return progress
    return None
