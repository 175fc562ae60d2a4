"""Atomic file writes: the one helper every writer of a file that must never be seen half-written uses
(registry, accounts, index, report, export, model caches). Temp file in the same folder → fsync → rename → fsync
the folder, so a reader sees the old file or the new one, and a crash leaves no torn file."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", perm: int | None = None) -> Iterator[IO]:
    """Yield an open temp file next to `path`; when the block ends without error it replaces `path`.
    `perm` sets the mode bits before anything is written (0o600 for files that hold users' data)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        if perm is not None:
            os.fchmod(fd, perm)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(folder)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str, perm: int | None = None) -> None:
    with atomic_file(path, "w", perm) as f:
        f.write(text)


def write_json_atomic(path: str | os.PathLike, data: Any, perm: int | None = None) -> None:
    with atomic_file(path, "w", perm) as f:
        json.dump(data, f, indent=2, ensure_ascii=False)


def read_json(path: Path, default: Any = None) -> Any:
    """The file's JSON, or `default` when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temp folder next to `target`; when the block ends without error it replaces `target`
    (model caches: a folder is complete or absent)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
