"""Checks for file paths given on the command line (import/export files, --home, report files): a clear refusal
instead of a traceback, a hang or a clobbered database. Paths are resolved (symlinks and `..` followed) before
checking, so `../home/chatbot.sqlite3` or a symlink into the data home is caught like the plain path."""
from __future__ import annotations

import os
from pathlib import Path


class PathRefused(ValueError):
    """A path argument that is not accepted; the message names the argument and says why."""


def _path(arg: str | Path, what: str) -> Path:
    text = str(arg)
    if not text.strip():
        raise PathRefused(f"{what}: empty path")
    if "\x00" in text:
        raise PathRefused(f"{what}: the path contains a NUL byte")
    return Path(text).expanduser()


def home_dir(arg: str | Path) -> Path:
    """--home: any folder (created if missing), but not an existing file."""
    p = _path(arg, "--home")
    if p.exists() and not p.is_dir():
        raise PathRefused(f"--home {arg}: exists and is not a folder")
    return p.resolve()


def input_file(arg: str | Path, what: str) -> Path:
    """A file to read: must be a regular file (a folder, FIFO or device such as /dev/zero is refused)."""
    p = _path(arg, what)
    if not p.exists():
        raise PathRefused(f"{what}: {arg}: no such file")
    if p.is_dir():
        raise PathRefused(f"{what}: {arg}: is a folder, not a file")
    if not p.is_file():
        raise PathRefused(f"{what}: {arg}: not a regular file")
    return p


def output_file(arg: str | Path, home: Path, what: str) -> Path:
    """A file to write: its folder must exist, it must not be a folder or a special file, and it must lie outside
    the data home (where it could replace the database, the index, the users file or an adapter)."""
    p = _path(arg, what)
    resolved = p.resolve()
    if resolved.is_dir():
        raise PathRefused(f"{what}: {arg}: the folder does not exist or the path is a folder")
    if not resolved.parent.is_dir():
        raise PathRefused(f"{what}: {arg}: the folder does not exist or the path is a folder")
    if resolved.exists() and not resolved.is_file():
        raise PathRefused(f"{what}: {arg}: not a regular file")
    home = Path(home).resolve()
    if resolved == home or home in resolved.parents:
        raise PathRefused(f"{what}: {arg}: inside the data home {home}; write it somewhere else")
    if not os.access(resolved.parent, os.W_OK | os.X_OK) or (resolved.exists() and not os.access(resolved, os.W_OK)):
        raise PathRefused(f"{what}: {arg}: not writable (check the permissions of "
                          f"{resolved if resolved.exists() else resolved.parent})")
    return p
