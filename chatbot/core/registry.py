"""One user's adapter versions on disk (a "line"; chatbot.core.lines keeps one per user). Each consolidation writes
a version folder atomically (LINE/v0001/: adapter weights, resolved config, data manifest, metrics, status);
promotion switches the served version by atomically replacing LINE/CURRENT; older versions stay for rollback.
Version names are numbered across every line of a home (`numbering`), so a name like v0007 names one version of
one user everywhere: turn marks, probe results, the dashboard."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from chatbot.core.fsio import fsync_dir, read_json, write_json_atomic, write_text_atomic

BASE = "base"  # the served "version" when no adapter is promoted
GGUF_LORA = "adapter.gguf"  # a version's weights converted for llama.cpp (chatbot/serving/lora_gguf.py)
_NAME = re.compile(r"^v(\d{4,})$")


class VersionStatus(StrEnum):
    """A version's status (status.json). StrEnum: members compare equal to the strings stored on disk."""
    CANDIDATE = "candidate"  # trained, not (yet) served
    PROMOTED = "promoted"  # was served at some point
    REJECTED = "rejected"  # the gate refused it
    WITHDRAWN = "withdrawn"  # trained on forgotten turns: weights deleted, never servable


class RegistryError(ValueError):
    """A version name or state that does not allow the operation; the message says which."""


@dataclass
class Version:
    name: str
    path: Path
    status: VersionStatus
    created_at: float
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


class Registry:
    def __init__(self, root: Path, owner: str | None = None,
                 taken: Callable[[], Iterable[str]] | None = None):
        """`owner`: the user whose line this is (None: a bare registry, as in tests of this module); `taken`: the
        version names used elsewhere (other lines, deleted ones), which the next name counts past."""
        self.root = Path(root)
        self.owner = owner
        self._taken = taken or (lambda: ())
        self.root.mkdir(parents=True, exist_ok=True)
        self._current_file = self.root / "CURRENT"

    # -- reading -------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Complete versions, oldest first (temp folders of killed runs are not versions)."""
        out = [p.name for p in self.root.iterdir()
               if p.is_dir() and _NAME.match(p.name) and (p / "status.json").exists()]
        return sorted(out, key=lambda n: int(n[1:]))

    def get(self, name: str) -> Version:
        path = self.root / name
        if not _NAME.match(name) or not (path / "status.json").exists():
            known = ", ".join(self.names()) or "none yet"
            raise RegistryError(f"no version {name!r} (known: {known})")
        status = read_json(path / "status.json", {})
        return Version(name, path, VersionStatus(status.get("status", VersionStatus.CANDIDATE)),
                       status.get("created_at", 0.0), status.get("reasons", []), read_json(path / "metrics.json", {}),
                       read_json(path / "manifest.json", {}))

    def versions(self) -> list[Version]:
        return [self.get(n) for n in self.names()]

    def current(self) -> str:
        """The served version name, or BASE."""
        try:
            name = self._current_file.read_text().strip()
        except OSError:
            return BASE
        return name if name == BASE or (self.root / name / "status.json").exists() else BASE

    def current_path(self) -> Path | None:
        name = self.current()
        return None if name == BASE else self.root / name

    def lineage(self, name: str) -> list[str]:
        """The versions whose knowledge `name` carries on, oldest first, without BASE and without `name` itself:
        the `continued_from` chain of the data manifests, and for a version rebuilt from the base on the whole
        ledger, the version served when it was built (`rebuilt_after`). (Which weights a version started from is
        `continued_from` alone: chatbot.privacy.forget follows that.)"""
        chain: list[str] = []
        seen = {name}
        parent = self._parent(name) if name != BASE else BASE
        while parent and parent != BASE and parent not in seen and (self.root / parent / "status.json").exists():
            chain.append(parent)
            seen.add(parent)
            parent = self._parent(parent)
        return chain[::-1]

    def _parent(self, name: str) -> str:
        manifest = self.get(name).manifest
        parent = manifest.get("continued_from", BASE)
        return manifest.get("rebuilt_after", BASE) if parent == BASE else parent

    def history(self) -> list[str]:
        """Promotion history, oldest first (for rollback)."""
        return read_json(self.root / "history.json", [])

    # -- writing -------------------------------------------------------------------------------------------
    def next_name(self) -> str:
        taken = [p.name for p in self.root.iterdir() if _NAME.match(p.name)] + list(self._taken())
        n = max((int(name[1:]) for name in taken if _NAME.match(name)), default=0) + 1
        return f"v{n:04d}"

    def staging(self) -> Path:
        """A temp folder to write a candidate into; finish with commit()."""
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))

    def commit(self, staging: Path, status: VersionStatus = VersionStatus.CANDIDATE,
               reasons: list[str] | None = None) -> Version:
        """Atomically turn a staging folder into the next version (status.json is written last inside it, and the
        folder is renamed into place in one step)."""
        name = self.next_name()
        write_json_atomic(staging / "status.json",
                          {"status": status, "created_at": time.time(), "reasons": reasons or []})
        os.replace(staging, self.root / name)
        fsync_dir(self.root)
        return self.get(name)

    def set_status(self, name: str, status: VersionStatus, reasons: list[str] | None = None) -> None:
        v = self.get(name)
        write_json_atomic(v.path / "status.json",
                          {"status": status, "created_at": v.created_at,
                           "reasons": reasons if reasons is not None else v.reasons})

    def promote(self, name: str) -> None:
        """Serve `name` (or BASE) from now on: one atomic rename of CURRENT."""
        if name != BASE:
            v = self.get(name)
            if v.status == VersionStatus.WITHDRAWN:
                raise RegistryError(f"{name} was withdrawn ({'; '.join(v.reasons)}): its weights are deleted")
            if v.status != VersionStatus.PROMOTED:
                self.set_status(name, VersionStatus.PROMOTED, v.reasons)
        history = self.history()
        if not history or history[-1] != name:
            write_json_atomic(self.root / "history.json", [*history, name])
        write_text_atomic(self._current_file, name + "\n")

    def rollback(self) -> str:
        """Serve the previously promoted version again; returns its name."""
        history = self.history()
        current = self.current()
        while history and (history[-1] == current or self._withdrawn(history[-1])):
            history.pop()
        target = history[-1] if history else BASE
        write_json_atomic(self.root / "history.json", history)
        self.promote(target)
        return target

    def _withdrawn(self, name: str) -> bool:
        return name != BASE and (name not in self.names() or self.get(name).status == VersionStatus.WITHDRAWN)

    def withdraw(self, name: str, reason: str) -> None:
        """Delete a version's adapter weights and mark it "withdrawn" (the folder stays as a record: manifest,
        metrics, config). It can never be served again. Serve another version first."""
        if self.current() == name:
            raise RegistryError(f"{name} is being served: promote another version before withdrawing it")
        v = self.get(name)
        # the weights and every copy derived from them (serving/lora_gguf.py's GGUF LoRA for llama.cpp)
        for f in [*v.path.glob("adapter_model.*"), *v.path.glob(GGUF_LORA)]:
            f.unlink()
        self.set_status(name, VersionStatus.WITHDRAWN, [reason])

    def clean_staging(self) -> int:
        """Remove temp folders left by killed runs; returns how many."""
        n = 0
        for p in self.root.glob(".staging-*"):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
        return n

