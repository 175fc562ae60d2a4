"""Accounts: an optional users file (HOME/users.json by default) with salted scrypt password hashes and an admin
flag. When it lists at least one user the app requires a login and every handler acts as the logged-in user;
without it the app runs in single-user mode on 127.0.0.1, where the one user is also the admin.

File format (written atomically, mode 0600):
    {"version": 1, "users": {"ann": {"admin": true, "kdf": "scrypt", "n": 16384, "r": 8, "p": 1,
                                     "salt": "<hex>", "hash": "<hex>", "created_at": 1700000000.0}}}
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from chatbot.core.fsio import write_json_atomic

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")  # also safe in file names and logs
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # scrypt on a megabyte-long "password" would be a cheap denial of service
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}  # ~16 MiB and tens of ms per check: slow for guessing, fine for a login
_FAILS_BEFORE_DELAY = 5  # failed logins per name before each further attempt is refused for a while
_DELAY_S = 30.0
_FAILS_MAX = 10_000  # names tracked for throttling (guessed names included); oldest forgotten past this
_FAILS_FORGET_S = 900.0  # a name's failures are forgotten after this long without a new one
_DUMMY = {"kdf": "scrypt", **_SCRYPT, "salt": "00" * 16, "hash": ""}  # checked for unknown names (same timing)


class AccountError(ValueError):
    """A bad user name, password or users file; the message says what to do."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise AccountError(f"user name {name!r} is not allowed: use 1-64 letters, digits, '_', '.', '@' or '-', "
                           "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password too long: at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str, salt: bytes | None = None, **params: int) -> dict:
    """A salted scrypt record (hashlib, stdlib) for the users file."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    p = {**_SCRYPT, **params}
    digest = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=p["n"], r=p["r"], p=p["p"],
                            maxmem=256 * 1024 * 1024, dklen=32)
    return {"kdf": "scrypt", **p, "salt": salt.hex(), "hash": digest.hex()}


def verify_password(password: str, record: dict) -> bool:
    """Constant-time comparison against a stored record; False for any malformed record."""
    try:
        if record.get("kdf") != "scrypt" or len(password) > MAX_PASSWORD:
            return False
        again = hash_password(password, bytes.fromhex(record["salt"]), n=int(record["n"]), r=int(record["r"]),
                              p=int(record["p"]))
        return hmac.compare_digest(again["hash"], record["hash"])
    except (KeyError, TypeError, ValueError):
        return False


def users_file(home: Path, configured: str = "") -> Path:
    """serve.users_file, or HOME/users.json when it is empty."""
    return Path(configured).expanduser() if configured else Path(home) / "users.json"


@dataclass(frozen=True)
class Identity:
    """Who is acting: the logged-in user (login mode) or the default user (single-user mode)."""
    user: str
    admin: bool
    login: bool  # True when a users file is in force


class Accounts:
    """The users file. Re-read when it changes on disk, so `chatbot user add` takes effect in a running app."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._users: dict[str, dict] = {}
        self._fails: dict[str, tuple[int, float]] = {}  # name -> (consecutive failures, time of the last one)
        self._reload()

    # -- reading -------------------------------------------------------------------------------------------
    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._users, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            users = data["users"]
            if not isinstance(users, dict):
                raise TypeError("'users' is not an object")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise AccountError(f"users file {self.path} is unreadable ({e}): fix or remove it") from None
        self._users, self._mtime = users, mtime

    def users(self) -> dict[str, dict]:
        with self._lock:
            self._reload()
            return dict(self._users)

    @property
    def enabled(self) -> bool:
        """Login mode: the users file exists and lists someone."""
        return bool(self.users())

    def is_admin(self, name: str) -> bool:
        return bool(self.users().get(name, {}).get("admin"))

    def authenticate(self, name: str, password: str) -> bool:
        """Gradio's auth function. After repeated failures for a name, further tries are refused for a while
        (the scrypt cost already makes each guess slow)."""
        if not isinstance(name, str) or not isinstance(password, str):
            return False
        with self._lock:
            self._reload()
            now = time.time()
            fails, last = self._fails.get(name, (0, 0.0))
            if fails >= _FAILS_BEFORE_DELAY and now - last < _DELAY_S:
                return False
            # Count the attempt as failed before checking it, under the lock: concurrent guesses for one name
            # each see the others' count, so a burst cannot slip past the limit while the hashes run.
            self._fails[name] = (fails + 1, now)
            self._prune_fails(now)
            record = self._users.get(name)
        # Hash even for unknown names, so timing does not reveal which names exist.
        ok = verify_password(password, record or _DUMMY) and record is not None
        if ok:
            with self._lock:
                self._fails.pop(name, None)
        return ok

    def _prune_fails(self, now: float) -> None:
        """Bound the failure table (guessed names are unbounded): forget entries idle for _FAILS_FORGET_S, and
        past _FAILS_MAX entries the oldest ones. Caller holds the lock."""
        if len(self._fails) <= _FAILS_MAX:
            return
        for key in [k for k, (_, t) in self._fails.items() if now - t > _FAILS_FORGET_S]:
            del self._fails[key]
        if len(self._fails) > _FAILS_MAX:
            for key in sorted(self._fails, key=lambda k: self._fails[k][1])[:len(self._fails) - _FAILS_MAX]:
                del self._fails[key]

    def identity(self, username: str | None, default_user: str, login: bool) -> Identity:
        """The acting user for a request. `login` is the mode the app started in (fixed for its lifetime, never
        re-derived from the file), and both modes fail closed:
        - login mode: the name must be logged in and still listed; an emptied users file refuses everyone
          instead of turning every session into the admin of single-user mode;
        - single-user mode: the default user with admin rights, until accounts appear in the file; then every
          request is refused until the app is restarted with its login page."""
        users = self.users()
        if login:
            if not username or username not in users:
                raise AccountError("not logged in (or the account was removed): reload the page and log in")
            return Identity(username, admin=bool(users[username].get("admin")), login=True)
        if users:
            raise AccountError("accounts were created while the app ran in single-user mode: restart "
                               "`chatbot serve` to require a login")
        return Identity(default_user, admin=True, login=False)

    # -- writing -------------------------------------------------------------------------------------------
    def add(self, name: str, password: str, admin: bool = False) -> None:
        check_name(name)
        check_password(password)
        with self._lock:
            self._reload()
            if name in self._users:
                raise AccountError(f"user {name!r} exists: use `chatbot user passwd {name}` to change the password")
            users = {**self._users, name: {"admin": admin, **hash_password(password), "created_at": time.time()}}
            self._write(users)

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        with self._lock:
            self._reload()
            if name not in self._users:
                raise AccountError(f"no user {name!r} (see `chatbot user list`)")
            users = {**self._users, name: {**self._users[name], **hash_password(password)}}
            self._write(users)

    def set_admin(self, name: str, admin: bool) -> None:
        with self._lock:
            self._reload()
            if name not in self._users:
                raise AccountError(f"no user {name!r} (see `chatbot user list`)")
            self._write({**self._users, name: {**self._users[name], "admin": admin}})

    def remove(self, name: str) -> None:
        """Remove the login (not the user's conversations: `chatbot forget --user NAME` does that)."""
        with self._lock:
            self._reload()
            if name not in self._users:
                raise AccountError(f"no user {name!r} (see `chatbot user list`)")
            self._write({k: v for k, v in self._users.items() if k != name})

    def _write(self, users: dict[str, dict]) -> None:
        """Atomic, readable by the owner only."""
        write_json_atomic(self.path, {"version": 1, "users": users}, perm=0o600)
        self._users, self._mtime = users, self.path.stat().st_mtime_ns
