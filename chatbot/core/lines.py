"""Adapter lines: one Registry per user, so what one person teaches the bot is trained into, and served from,
that person's adapters only. Layout under HOME/adapters/:

    users/<name>/OWNER            the user name (the folder name is the same when it is file-safe)
    users/<name>/v0003/ …         that user's versions (chatbot.core.registry), CURRENT, history.json

Single-user mode is the case of one user (serve.default_user). Version names are numbered across all lines, so
"v0003" names one version of one user everywhere. A home written before per-user lines (versions directly under
adapters/) is moved, once, into the default user's line: that adapter was trained on everyone's turns, and other
users' turns are learned again into their own lines (chatbot.memory.served re-marks them)."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

from chatbot.core.fsio import fsync_dir, write_text_atomic
from chatbot.core.registry import _NAME, Registry, RegistryError, Version

log = logging.getLogger(__name__)
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")  # account names (privacy.accounts.NAME) are all safe
_LEGACY = ("CURRENT", "history.json")
_HIGHEST = "REMOVED-HIGHEST"  # the highest version name a deleted line held


def folder_name(user: str) -> str:
    """A file-safe folder for `user`: the name itself when it is safe, else a hash of it (imported user names may
    hold anything); OWNER inside the folder keeps the real name."""
    if _SAFE.match(user):
        return user
    return "~" + hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class AdapterLines:
    """Every user's adapter line under one home's adapters folder."""

    def __init__(self, root: Path, default_user: str | None = None):
        """`default_user`: serve.default_user, the owner of line() without a name and of a legacy home's versions
        (None: a reader that needs neither, such as the dashboard's run list; it migrates nothing)."""
        self.root = Path(root)
        self.default_user = default_user or "me"
        self._users = self.root / "users"
        self._users.mkdir(parents=True, exist_ok=True)
        if default_user is not None:
            self._migrate_legacy()

    def line(self, user: str | None = None) -> Registry:
        """`user`'s registry (created empty when the user has none yet); None = the default user."""
        user = user or self.default_user
        folder = self._users / folder_name(user)
        if not (folder / "OWNER").exists():
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(folder / "OWNER", user)
        return Registry(folder, owner=user, taken=self._taken)

    def served_path(self, user: str | None = None) -> Path | None:
        """The folder of the version `user` is served (None: the base), read without creating a line: the chat
        asks this before every reply, for users who may never have had an adapter."""
        folder = self._users / folder_name(user or self.default_user)
        return Registry(folder, owner=user).current_path() if (folder / "OWNER").exists() else None

    def users(self) -> list[str]:
        """Users that have adapter versions, sorted."""
        return sorted(self._owner(f) for f in self._folders() if any(_NAME.match(p.name) for p in f.iterdir()))

    def lines(self) -> list[Registry]:
        return [self.line(u) for u in self.users()]

    def find(self, version: str) -> Registry:
        """The line that holds version `version`; RegistryError naming the known versions if none does."""
        if _NAME.match(version):
            for folder in self._folders():
                if (folder / version / "status.json").exists():
                    return self.line(self._owner(folder))
        known = ", ".join(v.name for v in self.versions()) or "none yet"
        raise RegistryError(f"no version {version!r} (known: {known})")

    def versions(self) -> list[Version]:
        """Every version of every line, oldest first."""
        return sorted((v for reg in self.lines() for v in reg.versions()), key=lambda v: int(v.name[1:]))

    def owner_of(self, version: str) -> str:
        return self.find(version).owner

    def remove(self, user: str) -> list[str]:
        """Delete `user`'s whole line (every version's weights and records); returns the version names it held."""
        folder = self._users / folder_name(user)
        if not folder.exists():
            return []
        names = Registry(folder, owner=user).names()
        # names are never handed out again (probe results and turn marks name versions): keep the highest one
        highest = max([self._highest(), *(int(p.name[1:]) for p in folder.iterdir() if _NAME.match(p.name))])
        write_text_atomic(self._users / _HIGHEST, f"v{highest:04d}\n")
        doomed = folder.with_name(f".removing-{folder.name}")
        os.replace(folder, doomed)  # one rename: the line is gone for every reader at once
        fsync_dir(self._users)
        shutil.rmtree(doomed, ignore_errors=True)
        return names

    def stamp(self) -> tuple:
        """Changes when any line's served version changes (the dashboard's auto-refresh)."""
        out = []
        for folder in self._folders():
            try:
                out.append((folder.name, (folder / "CURRENT").stat().st_mtime))
            except OSError:
                pass
        return tuple(sorted(out))

    # -- helpers ---------------------------------------------------------------------------------------------
    def _taken(self) -> list[str]:
        """Version names of every line and the highest one of the deleted lines."""
        return [p.name for f in self._folders() for p in f.iterdir() if _NAME.match(p.name)] + \
            [f"v{self._highest():04d}"]

    def _highest(self) -> int:
        try:
            return int((self._users / _HIGHEST).read_text().strip()[1:])
        except (OSError, ValueError):
            return 0

    def _folders(self) -> list[Path]:
        return sorted(p for p in self._users.iterdir() if p.is_dir() and (p / "OWNER").exists())

    @staticmethod
    def _owner(folder: Path) -> str:
        return (folder / "OWNER").read_text(encoding="utf-8")

    def _migrate_legacy(self) -> None:
        """Move versions written before per-user lines (adapters/v0001, CURRENT, history.json) into the default
        user's line, once."""
        for leftover in self._users.glob(".removing-*"):  # a removal killed half-way
            shutil.rmtree(leftover, ignore_errors=True)
        legacy = [p for p in self.root.iterdir() if (p.is_dir() and _NAME.match(p.name)) or p.name in _LEGACY]
        if not legacy:
            return
        target = self.line(self.default_user).root
        for p in sorted(legacy, key=lambda p: p.name in _LEGACY):  # versions first, CURRENT last
            if not (target / p.name).exists():
                os.replace(p, target / p.name)
        for p in self.root.glob(".staging-*"):
            shutil.rmtree(p, ignore_errors=True)
        fsync_dir(self.root)
        log.warning("moved the adapter versions of %s into user %r's line (per-user adapters); other users' turns "
                    "will be learned into their own adapters", self.root, self.default_user)
