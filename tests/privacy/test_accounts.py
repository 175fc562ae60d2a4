"""Accounts: salted scrypt hashes in a 0600 users file, name/password rules, login throttling, roles, and the
`chatbot user` command as a user runs it."""
import json
import stat
import subprocess
import sys

import pytest

from chatbot.privacy import accounts as acc
from chatbot.privacy.accounts import AccountError, Accounts, hash_password, verify_password


def test_hash_is_salted_and_verifies():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"] and a["kdf"] == "scrypt"
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct horsE", a)
    assert not verify_password("correct horse", {**a, "hash": "00"})
    assert not verify_password("x", {"kdf": "md5"}) and not verify_password("x", {"kdf": "scrypt"})
    assert "correct horse" not in json.dumps(a)


def test_users_file_roles_and_rules(tmp_path):
    path = tmp_path / "users.json"
    accounts = Accounts(path)
    assert not accounts.enabled
    single = accounts.identity(None, "me", login=False)
    assert (single.user, single.admin, single.login) == ("me", True, False)

    accounts.add("ann", "annspassword", admin=True)
    accounts.add("bob", "bobspassword")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "annspassword" not in path.read_text()
    assert accounts.enabled and accounts.is_admin("ann") and not accounts.is_admin("bob")
    assert accounts.identity("bob", "me", login=True) == acc.Identity("bob", admin=False, login=True)
    for nobody in (None, "", "carol"):  # login mode: no fallback to the default user
        with pytest.raises(AccountError):
            accounts.identity(nobody, "me", login=True)

    with pytest.raises(AccountError, match="exists"):
        accounts.add("ann", "anotherpassword")
    for bad in ("", "../etc", "a b", "ann\x00", "-rf", "x" * 65, "ann/../bob"):
        with pytest.raises(AccountError, match="not allowed"):
            accounts.add(bad, "longenoughpw")
    with pytest.raises(AccountError, match="too short"):
        accounts.add("carol", "short")

    assert accounts.authenticate("ann", "annspassword") and not accounts.authenticate("ann", "bobspassword")
    assert not accounts.authenticate("carol", "whatever12") and not accounts.authenticate("ann", "x" * 100_000)
    accounts.set_password("bob", "newbobpassword")
    other = Accounts(path)  # another process (the running app) sees the change
    assert other.authenticate("bob", "newbobpassword") and not other.authenticate("bob", "bobspassword")
    accounts.remove("bob")
    assert not Accounts(path).authenticate("bob", "newbobpassword")

    path.write_text("{broken")
    with pytest.raises(AccountError, match="unreadable"):
        Accounts(path)


def test_repeated_failures_are_throttled(tmp_path, monkeypatch):
    accounts = Accounts(tmp_path / "users.json")
    accounts.add("ann", "annspassword")
    now = [1000.0]
    monkeypatch.setattr(acc.time, "time", lambda: now[0])
    for _ in range(acc._FAILS_BEFORE_DELAY):
        assert not accounts.authenticate("ann", "guess-guess")
    assert not accounts.authenticate("ann", "annspassword")  # even the right one, for a while
    now[0] += acc._DELAY_S + 1
    assert accounts.authenticate("ann", "annspassword")


def test_the_mode_is_fixed_at_start_and_fails_closed(tmp_path):
    """An emptied users file does not turn a running app's sessions into the single-user admin (it refuses them),
    and accounts created under a single-user app refuse its anonymous sessions until a restart."""
    from chatbot.app import identity_resolver

    accounts = Accounts(tmp_path / "users.json")
    accounts.add("ann", "annspassword")
    accounts.add("root", "rootspassword", admin=True)
    who = identity_resolver(accounts, "me", login=accounts.enabled)  # as build_app does at start
    ann = type("Request", (), {"username": "ann"})()
    assert who(ann).user == "ann" and not who(ann).admin
    accounts.remove("ann")
    accounts.remove("root")  # the file lists nobody now, while the app runs
    with pytest.raises(Exception, match="not logged in"):
        who(ann)
    with pytest.raises(Exception, match="not logged in"):
        who(None)
    single = identity_resolver(Accounts(tmp_path / "other.json"), "me", login=False)
    assert single(None).admin
    Accounts(tmp_path / "other.json").add("eve", "evespassword")
    with pytest.raises(Exception, match="restart"):
        single(None)


def test_concurrent_guesses_cannot_pass_the_limit_and_the_table_is_bounded(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    accounts = Accounts(tmp_path / "users.json")
    accounts.add("ann", "annspassword")
    with ThreadPoolExecutor(8) as pool:  # 16 guesses at once: the hashes run in parallel
        list(pool.map(lambda i: accounts.authenticate("ann", f"guess-{i:04d}"), range(16)))
    # Only the first _FAILS_BEFORE_DELAY guesses were checked; the rest were refused unchecked.
    assert accounts._fails["ann"][0] == acc._FAILS_BEFORE_DELAY
    assert not accounts.authenticate("ann", "annspassword")  # throttled now, even the right password
    monkeypatch.setattr(acc, "_FAILS_MAX", 20)
    for i in range(60):
        accounts.authenticate(f"guessed-name-{i}", "whatever12")
    assert len(accounts._fails) <= 21


def run(home, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "chatbot", "--home", str(home), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_user_command(tmp_path):
    home = tmp_path / "home"
    p = run(home, "user", "add", "ann", "--admin", "--password-stdin", stdin="annspassword\n")
    assert p.returncode == 0 and "login is now required" in p.stdout, p.stderr
    assert run(home, "user", "add", "bob", "--password-stdin", stdin="bobspassword\n").returncode == 0
    listed = json.loads(run(home, "user", "list", "--json").stdout)
    assert listed["users"] == [{"name": "ann", "admin": True}, {"name": "bob", "admin": False}]
    assert Accounts(home / "users.json").authenticate("ann", "annspassword")

    for args, stdin, why in [
        (("user", "add", "ann", "--password-stdin"), "whatever12\n", "exists"),
        (("user", "add", "../../etc/passwd", "--password-stdin"), "whatever12\n", "not allowed"),
        (("user", "add", "carol", "--password-stdin"), "short\n", "too short"),
        (("user", "add", "carol"), "", "--password-stdin"),  # no terminal to prompt on
        (("user", "remove", "nobody"), "", "no user"),
    ]:
        p = run(home, *args, stdin=stdin)
        assert p.returncode == 2 and why in p.stderr, (args, p.stderr)
    assert run(home, "user", "remove", "bob").returncode == 0
    assert [u["name"] for u in json.loads(run(home, "user", "list", "--json").stdout)["users"]] == ["ann"]


def test_single_user_mode_refuses_a_public_bind(tmp_path):
    p = run(tmp_path / "home", "serve", "--host", "0.0.0.0")
    assert p.returncode == 2 and "127.0.0.1" in p.stderr and "chatbot user add" in p.stderr
