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
        self.handler = logging.FileHandler(self.dir / "consolidate.log", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("chatbot")
        root.addHandler(self.handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)

    def progress(self, info: dict) -> None:
        write_json_atomic(self.dir / "progress.json",
                          {"pid": os.getpid(), "started": self.started, "updated": time.time(), **info})

    def close(self) -> None:
        logging.getLogger("chatbot").removeHandler(self.handler)
        self.handler.close()


def all_progress(home: Path) -> list[dict]:
    """Every run's progress.json with its run name, oldest first (unreadable ones skipped)."""
    out = []
    for path in sorted(Paths(home).runs.glob("*/progress.json")):
        data = read_json(path, None)
        if isinstance(data, dict):
            out.append({"run": path.parent.name, **data})
    return out


def latest_progress(home: Path) -> dict | None:
    """The newest run's progress (stage, step, max_steps, loss, eta_s, status, message…), or None."""
    runs = all_progress(home)
    return runs[-1] if runs else None
