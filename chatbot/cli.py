"""The `chatbot` command line. Each command is a plain function; COMMANDS maps names to them (litgpt style).
With --json the last stdout line is one JSON object, for scripts.

Commands import what they use inside their function, on purpose: start-up cost (`chatbot user list` or `status`
must not pay seconds for torch and transformers). The layering contract in pyproject.toml checks these imports
too."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chatbot.core.config import ConfigError, default_home, load_config

log = logging.getLogger("chatbot")


class UsageError(Exception):
    """A command-line mistake; exit code 2 with the message."""


def _emit(args: argparse.Namespace, text: str, data: dict) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(text)


def _runtime(args: argparse.Namespace, with_model: bool, start_server: bool = False):
    from chatbot.runtime import open_runtime

    return open_runtime(args.home, args.cfg, with_model=with_model,
                        config_file=str(Path(args.config).resolve()) if args.config else None,
                        start_server=start_server)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the chat app in the browser (login required once accounts exist, else single-user on 127.0.0.1)."""
    accounts = _accounts(args)
    host = args.host or args.cfg.serve.host
    port = args.port or args.cfg.serve.port
    if accounts.enabled:
        log.info("login required: %d account(s) in %s", len(accounts.users()), accounts.path)
    else:
        if host not in LOOPBACK:
            raise UsageError(f"serve: --host {host} would expose the app without a login. Single-user mode binds "
                             "127.0.0.1 only; create accounts first (`chatbot user add NAME --admin`)")
        log.warning("single-user mode: no accounts in %s, so no login; serving 127.0.0.1 only, as user %r with "
                    "admin rights. Create accounts with `chatbot user add NAME --admin` to require a login",
                    accounts.path, args.cfg.serve.default_user)
    from chatbot.app import build_app, launch
    from chatbot.learning.schedule import start_nightly

    rt = _runtime(args, with_model=True, start_server=True)
    schedule = args.schedule if args.schedule is not None else rt.config.consolidate.schedule
    scheduler = start_nightly(rt.paths.home, schedule, rt.config_file) if schedule else None
    try:
        launch(build_app(rt, accounts), host, port, auth=accounts.authenticate if accounts.enabled else None)
    finally:
        if scheduler:
            scheduler.shutdown(wait=False)
        rt.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import conversations from a JSONL file."""
    from chatbot.memory.transfer import import_jsonl
    from chatbot.privacy.safepath import input_file

    path = input_file(args.file, "import")
    rt = _runtime(args, with_model=False)
    try:
        report = import_jsonl(path, rt.store, rt.buffer, rt.config.serve.default_user,
                              max_chars=rt.config.buffer.max_message_chars)
    finally:
        rt.close()
    for lineno, why in report.errors:
        print(f"{args.file}:{lineno}: skipped: {why}", file=sys.stderr)
    _emit(args, report.summary(), {
        "imported": report.imported, "duplicates": report.duplicates, "turns": report.turns,
        "errors": [{"line": n, "error": e} for n, e in report.errors],
    })
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Ask the served model questions, each in a fresh single-turn chat (not logged)."""
    from chatbot.serving.chat import InputRefused

    if not args.question:
        raise UsageError("ask: give at least one QUESTION")
    rt = _runtime(args, with_model=True)
    user = args.user or rt.config.serve.default_user
    answers = []
    try:
        for q in args.question:
            try:
                a = rt.chat.ask(q, user=user, use_memory=not args.no_memory)
            except InputRefused as e:
                a = {"question": q, "answer": None, "error": str(e)}
            answers.append(a)
            if not args.json:
                print(f"Q: {q}\nA: {a['answer'] if a['answer'] is not None else 'refused: ' + a['error']}\n")
    finally:
        rt.close()
    if args.json:
        print(json.dumps({"model": rt.loaded.name, "memory": not args.no_memory, "answers": answers},
                         ensure_ascii=False))
    return 0 if all(a["answer"] is not None for a in answers) else 1


def cmd_status(args: argparse.Namespace) -> int:
    """Show the model and buffer counts."""
    rt = _runtime(args, with_model=False)
    try:
        counts = rt.store.counts()
        m = rt.config.model
        data = {
            "home": str(rt.paths.home),
            "model": m.source, "quantization": m.quantization,
            **counts,
            "indexed_vectors": len(rt.buffer),
            "index_kind": rt.buffer.index.kind,
            "accounts": len(_accounts(args).users()),  # 0 = single-user mode (no login, 127.0.0.1 only)
        }
    finally:
        rt.close()
    text = "\n".join(f"{k:>16}: {v}" for k, v in data.items())
    _emit(args, text, data)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export conversations to a JSONL file (the import format)."""
    from chatbot.memory.transfer import export_jsonl
    from chatbot.privacy.safepath import output_file
    from chatbot.runtime import open_store

    target = output_file(args.file, args.home, "export")
    store = open_store(args.home)
    try:
        n = export_jsonl(target, store, user=args.user)
    finally:
        store.close()
    _emit(args, f"exported {n} conversation(s) to {target}", {"exported": n, "file": str(target)})
    return 0


def cmd_conversations(args: argparse.Namespace) -> int:
    """List conversations (oldest first): id, user, title, turns, dates, learn flag; the ids `forget` takes."""
    from chatbot.runtime import open_store

    store = open_store(args.home)
    try:
        convs = sorted(store.conversations(user=args.user), key=lambda c: c.id)
        counts = store.turn_counts(user=args.user)
    finally:
        store.close()

    def when(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

    rows = [{"id": c.id, "user": c.user, "title": c.title, "turns": counts.get(c.id, 0), "created": when(c.created_at),
             "updated": when(c.updated_at), "learn": c.learn, "source": c.source} for c in convs]
    if args.json:
        print(json.dumps({"conversations": rows}, ensure_ascii=False))
        return 0
    for r in rows:
        flag = "" if r["learn"] else "  [don't learn]"
        print(f"#{r['id']:<5} {r['user']:<12} {r['turns']:>4} turn(s)  {r['created']}  updated {r['updated']}"
              f"{flag}  {r['title'] or '(empty)'}")
    if not rows:
        print(f"no conversations{f' of user {args.user!r}' if args.user else ''}")
    return 0


def cmd_facts(args: argparse.Namespace) -> int:
    """The knowledge ledger: what the bot knows (or will learn) about each user; correct or forget a fact."""
    from chatbot.core.paths import Paths
    from chatbot.learning.ledger import CorrectionError, Knowledge

    knowledge = Knowledge(Paths(args.home).db, args.cfg)
    try:
        knowledge.refresh()  # read the turns logged since (the rules need no model)
        if args.action in ("correct", "forget"):
            if args.id is None:
                raise UsageError(f"facts {args.action}: give the fact ID (`chatbot facts` lists them)")
            if args.action == "correct":
                fact = knowledge.correct(args.id, " ".join(args.text))
                _emit(args, f"fact {fact.id} replaces fact {args.id}: {fact.answer} (learned by the next "
                            "consolidation; until then the served version may still give the old value)",
                      {"corrected": args.id, "fact": fact.to_dict()})
            else:
                if args.text:
                    raise UsageError("facts forget takes only the fact ID")
                fact = knowledge.forget(args.id)
                _emit(args, f"forgot fact {args.id} ({fact.owner}): its text is erased from the ledger and no "
                            "consolidation trains it again; the served version holds it until the next "
                            "consolidation rebuilds without it (`chatbot consolidate`)",
                      {"forgotten": args.id})
            return 0
        if args.id is not None or args.text:
            raise UsageError("facts: list takes no ID (did you mean `facts correct ID TEXT` or `facts forget ID`?)")
        facts = [f for f in knowledge.listed(args.user) if args.all or f.status in ("pending", "learned")]
        unread = knowledge.unread()
    except CorrectionError as e:
        raise UsageError(str(e)) from None
    finally:
        knowledge.close()
    if args.json:
        print(json.dumps({"facts": [f.to_dict() for f in facts], "unread_turns": unread}, ensure_ascii=False))
        return 0
    for f in facts:
        status = f"learned in {f.learned_in}" if f.status == "learned" else f.status
        if f.status == "superseded":
            status += f" by #{f.superseded_by}"
        print(f"#{f.id:<5} {f.owner:<12} {status:<20} {f.answer or '(erased)'}   [key: {f.key}]")
    if not facts:
        print(f"no facts{f' of user {args.user!r}' if args.user else ''} yet")
    if unread:
        print(f"({unread} turn(s) not read yet: the configured extractor needs the model; the next consolidation "
              "reads them)")
    return 0


def cmd_consolidate(args: argparse.Namespace) -> int:
    """Train each user's new knowledge into that user's adapter (QLoRA), probe it, promote it if it passes."""
    from chatbot.core.lock import AlreadyRunning
    from chatbot.evaluation.gate import default_gate
    from chatbot.learning.consolidate import RunStatus, consolidate

    try:
        result = consolidate(args.home, args.cfg, gate=default_gate(args.home, args.cfg), dry_run=args.dry_run,
                             show_progress=not args.quiet, user=args.user)
    except AlreadyRunning as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0 if result.status != RunStatus.REJECTED else 1
    for one in result.per_user or [result]:
        if result.per_user:
            print(f"== user {one.user}")
        _print_run(one)
    return 0 if result.status != RunStatus.REJECTED else 1


def _print_run(result) -> None:
    print(result.message)
    if result.counts:
        print("mix: " + ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items())))
    for row in result.preview:
        print(f"  [{row['source']}] " + " | ".join(f"{r}: {c[:70]}" for r, c in row["messages"]))
    if result.metrics:
        m = result.metrics
        print(f"train loss {m['train_loss']}, {m['steps']} steps, {m['tokens_per_s']} tok/s, "
              f"padding waste {m['padding_waste']:.1%}, {m['seconds']} s")
    if result.run_dir:
        print(f"log: {result.run_dir}/consolidate.log")


def cmd_versions(args: argparse.Namespace) -> int:
    """List adapter versions (each user's line) and which one each user is served."""
    with _lines(args) as (_, lines):
        regs = [lines.line(args.user)] if args.user else lines.lines()
        served = {reg.owner: reg.current() for reg in regs}
        rows = [{"version": v.name, "user": reg.owner, "status": v.status, "served": v.name == served[reg.owner],
                 "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
                 "new_turns": len(v.manifest.get("new_turn_ids", [])), "facts": len(v.manifest.get("fact_ids", [])),
                 "counts": v.manifest.get("counts", {}), "train_loss": v.metrics.get("train_loss"),
                 "reasons": v.reasons} for reg in regs for v in reg.versions()]
    rows.sort(key=lambda r: int(r["version"][1:]))
    if args.json:
        print(json.dumps({"served": served, "versions": rows}, ensure_ascii=False))
        return 0
    print("served: " + (", ".join(f"{u} → {v}" for u, v in sorted(served.items())) or "base (no versions yet)"))
    for r in rows:
        mark = "*" if r["served"] else " "
        why = f"  ({'; '.join(r['reasons'])})" if r["reasons"] else ""
        print(f"{mark} {r['version']}  {r['user']:<12} {r['status']:<9} {r['created']}  new turns "
              f"{r['new_turns']:<4} facts {r['facts']:<4} loss {r['train_loss']}{why}")
    if not rows:
        print("no versions yet: run `chatbot consolidate`")
    return 0


@contextlib.contextmanager
def _lines(args: argparse.Namespace):
    """(store, adapter lines) for the commands that read or change the served versions; chatbot.memory.served keeps
    the turns' and facts' "learned in" marks true whichever version each user is served."""
    from chatbot.core.lines import AdapterLines
    from chatbot.core.paths import Paths
    from chatbot.core.registry import RegistryError
    from chatbot.memory.store import Store

    paths = Paths(args.home)
    store = Store(paths.db)
    try:
        yield store, AdapterLines(paths.adapters, args.cfg.serve.default_user)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    finally:
        store.close()


def _user_line(lines, user: str | None, verb: str):
    """The line of --user; without it the only line there is (single-user mode), else a usage error."""
    if user:
        return lines.line(user)
    users = lines.users()
    if len(users) > 1:
        raise UsageError(f"{verb}: several users have adapters ({', '.join(users)}): say whose with --user NAME")
    return lines.line(users[0] if users else None)


def cmd_promote(args: argparse.Namespace) -> int:
    """Serve version V (or 'base') to its user; the running app switches between replies; its turns count as
    learned."""
    from chatbot.core.registry import BASE, VersionStatus
    from chatbot.memory.served import serve

    with _lines(args) as (store, lines):
        if args.version == BASE:
            reg = _user_line(lines, args.user, "promote base")
        else:
            reg = lines.find(args.version)
            if args.user and reg.owner != args.user:
                raise UsageError(f"promote: {args.version} is user {reg.owner!r}'s version, not {args.user!r}'s")
            v = reg.get(args.version)
            if v.status == VersionStatus.REJECTED:
                print(f"warning: {v.name} was rejected ({'; '.join(v.reasons)}); promoting it anyway",
                      file=sys.stderr)
        serve(store, reg, args.version)
    print(f"serving {args.version} to user {reg.owner}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Serve a user's previously promoted version again."""
    from chatbot.memory.served import rollback

    with _lines(args) as (store, lines):
        reg = _user_line(lines, args.user, "rollback")
        before = reg.current()
        after = rollback(store, reg)
    print(f"user {reg.owner}: rolled back from {before} to {after}")
    return 0


def cmd_share(args: argparse.Namespace) -> int:
    """Share a conversation or a fact with every user (admin): its facts are learned by every user's adapter."""
    from chatbot.core.paths import Paths
    from chatbot.memory.facts import FactStore
    from chatbot.runtime import open_store

    if bool(args.conversation) == bool(args.fact):
        raise UsageError("share: give --conversation ID or --fact ID")
    store, facts = open_store(args.home), FactStore(Paths(args.home).db)
    try:
        if args.conversation:
            if store.conversation(args.conversation) is None:
                raise UsageError(f"share: no conversation {args.conversation} (`chatbot conversations` lists them)")
            facts.share_conversation(args.conversation, not args.off)
            what = f"conversation {args.conversation}"
        else:
            if facts.get(args.fact) is None:
                raise UsageError(f"share: no fact {args.fact} (`chatbot facts` lists them)")
            facts.share_fact(args.fact, not args.off)
            what = f"fact {args.fact}"
    finally:
        facts.close()
        store.close()
    _emit(args, f"{what} is private to its user again; the next consolidation rebuilds the other users' adapters "
                "without it" if args.off else f"{what} is shared with every user; the next consolidation trains "
                "it into every user's adapter",
          {"shared": not args.off, "conversation": args.conversation, "fact": args.fact})
    return 0


def _accounts(args: argparse.Namespace):
    from chatbot.privacy.accounts import Accounts, users_file

    return Accounts(users_file(args.home, args.cfg.serve.users_file))


def _read_password(args: argparse.Namespace) -> str:
    """From stdin (--password-stdin: the first line) or an interactive prompt typed twice."""
    import getpass

    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("user: no terminal to prompt for the password; pipe it with --password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("user: the two passwords differ")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    """Manage logins: add, passwd, list, remove (accounts turn on the login; see serve.users_file)."""
    from chatbot.privacy.accounts import AccountError

    accounts = _accounts(args)
    try:
        if args.action == "list":
            users = accounts.users()
            rows = [{"name": n, "admin": bool(u.get("admin"))} for n, u in sorted(users.items())]
            if args.json:
                print(json.dumps({"users_file": str(accounts.path), "users": rows}))
            elif rows:
                print("\n".join(f"{r['name']}{'  (admin)' if r['admin'] else ''}" for r in rows))
            else:
                print(f"no accounts in {accounts.path}: the app runs single-user on 127.0.0.1")
            return 0
        if not args.name:
            raise UsageError(f"user {args.action}: give the user NAME")
        if args.action == "add":
            from chatbot.privacy.accounts import check_name

            check_name(args.name)  # before asking for a password
            was_enabled = accounts.enabled
            accounts.add(args.name, _read_password(args), admin=args.admin)
            print(f"added {'admin ' if args.admin else ''}user {args.name} to {accounts.path}")
            if not was_enabled:
                print("login is now required: restart `chatbot serve` to switch from single-user mode")
        elif args.action == "passwd":
            accounts.set_password(args.name, _read_password(args))
            print(f"password of {args.name} changed")
        elif args.action == "remove":
            accounts.remove(args.name)
            print(f"removed the login of {args.name} (their conversations stay; `chatbot forget --user "
                  f"{args.name}` deletes them)")
    except AccountError as e:
        raise UsageError(str(e)) from None
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete conversations for good (database, index, future training) and name the versions trained on them."""
    from chatbot.core.lines import AdapterLines
    from chatbot.core.lock import AlreadyRunning
    from chatbot.evaluation.gate import default_gate
    from chatbot.learning.retrain import retrain
    from chatbot.privacy.forget import forget_conversations

    if not (args.conversation or args.user or args.retrain):
        raise UsageError("forget: give --conversation ID, --user NAME, or --retrain")
    if args.conversation and args.user:
        raise UsageError("forget: give either --conversation or --user, not both")
    out: dict = {}
    if args.conversation or args.user:
        from chatbot.runtime import open_store

        store = open_store(args.home)  # check the arguments before loading the embedder
        try:
            if args.user:
                convs = store.conversations(user=args.user)
                if not convs and store.user_id(args.user, create=False) is None:
                    raise UsageError(f"forget: no user {args.user!r} in the database")
                ids, what = [c.id for c in convs], f"all {len(convs)} conversation(s) of user {args.user!r}"
            else:
                ids = sorted(set(args.conversation))
                missing = [i for i in ids if store.conversation(i) is None]
                if missing:
                    raise UsageError(f"forget: no conversation {', '.join(map(str, missing))} "
                                     "(`chatbot conversations` lists the ids)")
                what = f"conversation(s) {', '.join(map(str, ids))}"
        finally:
            store.close()
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(f"forget: this deletes {what} for good; add --yes to confirm")
            if input(f"Delete {what} for good? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing forgotten")
                return 1
        rt = _runtime(args, with_model=False)
        try:
            lines = AdapterLines(rt.paths.adapters, args.cfg.serve.default_user)
            report = forget_conversations(rt.store, rt.buffer, lines, ids, user=args.user or None)
            if report.deleted_versions:  # their probe answers quote the user's facts
                from chatbot.evaluation.results import ResultStore

                results = ResultStore(rt.paths.db)
                try:
                    results.forget_versions(report.deleted_versions)
                finally:
                    results.close()
                rt.store.compact()
        finally:
            rt.close()
        out["forgotten"] = report.to_dict()
        if not args.json:
            print(report.message())
    if args.retrain:
        try:
            withdrawal, result = retrain(args.home, args.cfg, gate=default_gate(args.home, args.cfg),
                                         show_progress=not args.quiet and not args.json)
        except AlreadyRunning as e:
            raise UsageError(str(e)) from None
        out["retrain"] = {"withdrawn": withdrawal.withdrawn, "serving": withdrawal.serving,
                          "relearn_turns": withdrawal.relearn_turns, "result": result.to_dict() if result else None}
        if not args.json:
            print(withdrawal.message())
            if result:
                print(result.message)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Run the regression probes on a version (default: the served one) and show the gate's verdict."""
    from chatbot.core.registry import RegistryError
    from chatbot.evaluation.gate import judge

    def progress(info: dict) -> None:
        if not args.json:
            print(f"probing {info.get('version')}: {info.get('suite')} ({info.get('run', 'greedy')})…", file=sys.stderr)

    try:
        report, accepted, reasons = judge(args.home, args.cfg, args.version, report=progress, user=args.user)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    m = report.metrics
    suites = {name: {"suite_version": r.suite_version, "score": r.score, "cached": r.cached, "seconds": r.seconds,
                     "base": report.base[name].score if name in report.base else None}
              for name, r in report.results.items()}
    if args.json:
        print(json.dumps({"version": report.version, "model": report.model, "accepted": accepted, "reasons": reasons,
                          "seconds": report.seconds, "suites": suites, "metrics": m}, ensure_ascii=False))
        return 0 if accepted else 1
    print(f"probes of {report.version} on {report.model} ({report.seconds:.0f} s; cached results reused where the "
          "suite, decoding and weights are unchanged)")
    for name, r in suites.items():
        if name == "canary" or r["score"] is None:
            continue
        base = f"  base {r['base']:.4g}" if r["base"] is not None and report.version != "base" else ""
        noise = m["noise_sd"].get(name)
        sd = f"  noise floor ±{noise:.1f}" if noise is not None else ""
        print(f"  {name:<22} {r['score']:>9.4g}{base}{sd}   [{r['suite_version']}]")
    if m.get("ppl_ratio") is not None:
        print(f"  perplexity ratio {m['ppl_ratio']:.3f}, KL to base {m['kl']:.4f} nats/token, "
              f"canary leaks {m['canary_leaks']} ({m['canary_secrets']} don't-learn string(s) watched)")
    if m.get("bwt") is not None:
        print(f"  backward transfer {m['bwt']:+.1f} points, average forgetting {m['average_forgetting']:.1f}")
    print("gate: pass" if accepted else "gate: FAIL: " + "; ".join(reasons))
    return 0 if accepted else 1


def cmd_report(args: argparse.Namespace) -> int:
    """Write the dashboard (plots, forgetting, runs, answer diffs) as one self-contained HTML page."""
    from chatbot.evaluation.report import write_report

    target = write_report(args.home, args.cfg, args.file)  # a refused path exits 2 with the reason (main)
    print(f"wrote {target}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "import": cmd_import,
    "ask": cmd_ask,
    "status": cmd_status,
    "export": cmd_export,
    "conversations": cmd_conversations,
    "facts": cmd_facts,
    "consolidate": cmd_consolidate,
    "versions": cmd_versions,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "share": cmd_share,
    "user": cmd_user,
    "forget": cmd_forget,
    "probe": cmd_probe,
    "report": cmd_report,
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatbot",
        description="A continual chatbot: chat, remember every turn, consolidate what it learned into the weights.",
    )
    p.add_argument("--home", default=None,
                   help="data folder (database, index, models, adapters); default $CHATBOT_HOME, "
                        "else $XDG_DATA_HOME/chatbot, else ~/.local/share/chatbot")
    p.add_argument("--config", default=None, help="TOML file overriding HOME/config.toml and the defaults "
                                                    "(see data/config.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("serve", help=cmd_serve.__doc__)
    s.add_argument("--host", default=None, help="bind address (default serve.host = 127.0.0.1); another address "
                                                  "is refused unless accounts exist (`chatbot user add`)")
    s.add_argument("--port", type=int, default=None, help="port (default serve.port = 7860)")
    s.add_argument("--schedule", default=None, metavar="HH:MM",
                   help="consolidate every night at HH:MM while serving (default consolidate.schedule; '' = off)")

    s = sub.add_parser("import", help=cmd_import.__doc__)
    s.add_argument("file", metavar="FILE.jsonl",
                   help='one conversation per line: {"messages": [{"role", "content"}, ...], "user": optional, '
                        '"learn": optional bool}; an "id" (written by export) is ignored')
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = sub.add_parser("ask", help=cmd_ask.__doc__)
    s.add_argument("question", nargs="*", metavar="QUESTION")
    s.add_argument("--no-memory", action="store_true", help="closed book: no retrieval of past turns")
    s.add_argument("--user", default=None,
                   help="ask as this user: their adapter, their memories (default serve.default_user)")
    s.add_argument("--json", action="store_true", help="print the answers as JSON")

    s = sub.add_parser("status", help=cmd_status.__doc__)
    s.add_argument("--json", action="store_true", help="print as JSON")

    s = sub.add_parser("export", help=cmd_export.__doc__)
    s.add_argument("file", metavar="FILE.jsonl", help="where to write (its folder must exist; not inside --home)")
    s.add_argument("--user", default=None, help="only this user's conversations")
    s.add_argument("--json", action="store_true", help="print the result as JSON")

    s = sub.add_parser("conversations", help=cmd_conversations.__doc__)
    s.add_argument("--user", default=None, help="only this user's conversations")
    s.add_argument("--json", action="store_true", help="print as JSON")

    s = sub.add_parser("facts", help=cmd_facts.__doc__,
                       description="Lists the facts read from what users said (current ones; --all adds superseded "
                                   "and forgotten ones), each with its status: pending (not in the weights yet) or "
                                   "learned in vN. `facts correct ID TEXT` replaces a fact (TEXT: a statement, or "
                                   "just the right value); `facts forget ID` erases one. Both take effect at the "
                                   "next consolidation.")
    s.add_argument("action", nargs="?", default="list", choices=("list", "correct", "forget"))
    s.add_argument("id", nargs="?", type=int, metavar="ID", help="correct/forget: the fact id")
    s.add_argument("text", nargs="*", metavar="TEXT", help="correct: the right statement or value")
    s.add_argument("--user", default=None, help="list: only this user's facts")
    s.add_argument("--all", action="store_true", help="list: also superseded and forgotten facts")
    s.add_argument("--json", action="store_true", help="print as JSON")

    s = sub.add_parser("consolidate", help=cmd_consolidate.__doc__)
    s.add_argument("--dry-run", action="store_true",
                   help="print the data mix (counts per source, samples), no training")
    s.add_argument("--user", default=None, metavar="NAME",
                   help="only this user's adapter (default: every user with new data, one after another)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("versions", help=cmd_versions.__doc__)
    s.add_argument("--user", default=None, metavar="NAME", help="only this user's versions")
    s.add_argument("--json", action="store_true", help="print as JSON")

    s = sub.add_parser("promote", help=cmd_promote.__doc__)
    s.add_argument("version", metavar="V", help="a version name such as v0003, or 'base' for no adapter")
    s.add_argument("--user", default=None, metavar="NAME",
                   help="whose version (a version name is unique, so this only checks it; needed for 'base' "
                        "when several users have adapters)")

    s = sub.add_parser("rollback", help=cmd_rollback.__doc__)
    s.add_argument("--user", default=None, metavar="NAME",
                   help="whose adapter (needed when several users have adapters)")

    s = sub.add_parser("share", help=cmd_share.__doc__,
                       description="Facts are private: each user's facts train only that user's adapter. Sharing a "
                                   "conversation (every fact read from it) or one fact makes every user's adapter "
                                   "learn it at the next consolidation; --off makes it private again.")
    s.add_argument("--conversation", type=int, default=None, metavar="ID", help="a conversation id")
    s.add_argument("--fact", type=int, default=None, metavar="ID", help="a fact id (`chatbot facts`)")
    s.add_argument("--off", action="store_true", help="stop sharing it")
    s.add_argument("--json", action="store_true", help="print the result as JSON")

    s = sub.add_parser("user", help=cmd_user.__doc__,
                       description="Accounts live in serve.users_file (default HOME/users.json) as salted scrypt "
                                   "hashes. Once it lists anyone, `serve` requires a login; admins also get the "
                                   "Consolidation and Dashboard tabs.")
    s.add_argument("action", choices=("add", "passwd", "list", "remove"))
    s.add_argument("name", nargs="?", metavar="NAME", help="user name (letters, digits, _ . @ -)")
    s.add_argument("--admin", action="store_true", help="add: may run consolidations, promote, roll back")
    s.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin instead of prompting")
    s.add_argument("--json", action="store_true", help="list: print as JSON")

    s = sub.add_parser("forget", help=cmd_forget.__doc__,
                       description="Deletes turns from SQLite (secure delete, WAL checkpoint, VACUUM) and the FAISS "
                                   "index, so no future mix contains them, and lists the adapter versions whose data "
                                   "manifest contains them. --retrain withdraws those versions (weights deleted), "
                                   "serves the newest clean one and consolidates the remaining data again.")
    s.add_argument("--conversation", type=int, action="append", metavar="ID",
                   help="a conversation id (repeatable; `chatbot conversations` lists them)")
    s.add_argument("--user", default=None, metavar="NAME", help="every conversation of this user")
    s.add_argument("--retrain", action="store_true",
                   help="withdraw the versions trained on forgotten turns and consolidate without them "
                        "(also works on its own, after an earlier forget)")
    s.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar while retraining")

    s = sub.add_parser("probe", help=cmd_probe.__doc__,
                       description=cmd_probe.__doc__ + " Exit code 1 when the version fails the gate's thresholds.")
    s.add_argument("--version", default=None, metavar="V",
                   help="a version such as v0003, or 'base' (default: the version served to --user)")
    s.add_argument("--user", default=None, metavar="NAME",
                   help="whose served version, without --version (default serve.default_user)")
    s.add_argument("--json", action="store_true", help="print the scores, metrics and verdict as JSON")

    s = sub.add_parser("report", help=cmd_report.__doc__)
    s.add_argument("file", metavar="FILE.html", help="where to write the page (its folder must exist)")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("faiss.loader", "httpx", "sentence_transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from chatbot.memory.embed import EmbedderError
    from chatbot.memory.store import StoreError
    from chatbot.privacy.accounts import AccountError
    from chatbot.privacy.safepath import PathRefused, home_dir

    try:
        args.home = home_dir(args.home) if args.home is not None else default_home()
        args.cfg = load_config(args.home, args.config)
        if getattr(args, "schedule", None):
            from chatbot.core.config import ConsolidateConfig

            ConsolidateConfig(schedule=args.schedule)  # validates HH:MM with a clear message
        return COMMANDS[args.command](args)
    except Exception as e:
        # chatbot.model imports torch (seconds): commands that never load a model do not import it just to
        # name its error class; if it was never imported, its error cannot have been raised.
        model, engine = sys.modules.get("chatbot.serving.model"), sys.modules.get("chatbot.serving.engine")
        expected = (UsageError, ConfigError, StoreError, EmbedderError, PathRefused, AccountError,
                    *((model.ModelError,) if model else ()), *((engine.EngineError,) if engine else ()))
        if not isinstance(e, expected):
            raise
        print(f"chatbot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
