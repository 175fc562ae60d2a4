"""The `chatbot` command line. Each command is a plain function; COMMANDS maps names to them (litgpt style).
With --json the last stdout line is one JSON object, for scripts."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable

from .config import ConfigError, default_home, load_config

log = logging.getLogger("chatbot")


class UsageError(Exception):
    """A command-line mistake; exit code 2 with the message."""


def _emit(args: argparse.Namespace, text: str, data: dict) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(text)


def _runtime(args: argparse.Namespace, with_model: bool):
    from .runtime import open_runtime

    return open_runtime(args.home, args.cfg, with_model=with_model,
                        config_file=str(Path(args.config).resolve()) if args.config else None)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the chat app in the browser."""
    from .app import build_app, launch

    from .schedule import start_nightly

    rt = _runtime(args, with_model=True)
    host = args.host or rt.config.serve.host
    port = args.port or rt.config.serve.port
    schedule = args.schedule if args.schedule is not None else rt.config.consolidate.schedule
    scheduler = start_nightly(rt.paths.home, schedule, rt.config_file) if schedule else None
    try:
        launch(build_app(rt), host, port)
    finally:
        if scheduler:
            scheduler.shutdown(wait=False)
        rt.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import conversations from a JSONL file."""
    from .transfer import import_jsonl

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"import: {args.file}: no such file")
    rt = _runtime(args, with_model=False)
    try:
        report = import_jsonl(path, rt.store, rt.buffer, rt.config.serve.default_user)
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
    from .chat import InputRefused

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
        }
    finally:
        rt.close()
    text = "\n".join(f"{k:>16}: {v}" for k, v in data.items())
    _emit(args, text, data)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export conversations to a JSONL file (the import format)."""
    from .runtime import open_store
    from .transfer import export_jsonl

    target = Path(args.file)
    if target.is_dir() or not target.parent.exists() and str(target.parent):
        raise UsageError(f"export: {args.file}: the folder does not exist or the path is a folder")
    store = open_store(args.home)
    try:
        n = export_jsonl(target, store, user=args.user)
    finally:
        store.close()
    _emit(args, f"exported {n} conversation(s) to {target}", {"exported": n, "file": str(target)})
    return 0


def cmd_consolidate(args: argparse.Namespace) -> int:
    """Fine-tune a new adapter version on new dialogue mixed with replay (QLoRA), probe it, promote it if it passes."""
    from .consolidate import AlreadyRunning, consolidate

    try:
        result = consolidate(args.home, args.cfg, dry_run=args.dry_run, show_progress=not args.quiet)
    except AlreadyRunning as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0 if result.status != "rejected" else 1
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
    return 0 if result.status != "rejected" else 1


def cmd_versions(args: argparse.Namespace) -> int:
    """List adapter versions and which one is served."""
    from .registry import Registry
    from .runtime import Paths

    reg = Registry(Paths(args.home).adapters)
    current = reg.current()
    rows = [{"version": v.name, "status": v.status, "served": v.name == current,
             "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
             "new_turns": len(v.manifest.get("new_turn_ids", [])), "counts": v.manifest.get("counts", {}),
             "train_loss": v.metrics.get("train_loss"), "reasons": v.reasons} for v in reg.versions()]
    if args.json:
        print(json.dumps({"served": current, "versions": rows}, ensure_ascii=False))
        return 0
    print(f"served: {current}")
    for r in rows:
        mark = "*" if r["served"] else " "
        why = f"  ({'; '.join(r['reasons'])})" if r["reasons"] else ""
        print(f"{mark} {r['version']}  {r['status']:<9} {r['created']}  new turns {r['new_turns']:<5} "
              f"loss {r['train_loss']}{why}")
    if not rows:
        print("no versions yet: run `chatbot consolidate`")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Serve version V (or 'base'); the running app switches between replies."""
    from .registry import BASE, Registry, RegistryError
    from .runtime import Paths

    reg = Registry(Paths(args.home).adapters)
    try:
        if args.version != BASE:
            v = reg.get(args.version)
            if v.status == "rejected":
                print(f"warning: {v.name} was rejected ({'; '.join(v.reasons)}); promoting it anyway",
                      file=sys.stderr)
        reg.promote(args.version)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    print(f"serving {args.version}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Serve the previously promoted version again."""
    from .registry import Registry
    from .runtime import Paths

    reg = Registry(Paths(args.home).adapters)
    before = reg.current()
    after = reg.rollback()
    print(f"rolled back from {before} to {after}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Run the regression probes on a version (default: the served one) and show the gate's verdict."""
    from .gate import judge
    from .registry import RegistryError

    def progress(info: dict) -> None:
        if not args.json:
            print(f"probing {info.get('version')}: {info.get('suite')} ({info.get('run', 'greedy')})…", file=sys.stderr)

    try:
        report, accepted, reasons = judge(args.home, args.cfg, args.version, report=progress)
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
    from .report import ReportPathError, write_report

    try:
        target = write_report(args.home, args.cfg, args.file)
    except ReportPathError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {target}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "import": cmd_import,
    "ask": cmd_ask,
    "status": cmd_status,
    "export": cmd_export,
    "consolidate": cmd_consolidate,
    "versions": cmd_versions,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "probe": cmd_probe,
    "report": cmd_report,
}


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
    s.add_argument("--host", default=None, help="bind address (default serve.host = 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default serve.port = 7860)")
    s.add_argument("--schedule", default=None, metavar="HH:MM",
                   help="consolidate every night at HH:MM while serving (default consolidate.schedule; '' = off)")

    s = sub.add_parser("import", help=cmd_import.__doc__)
    s.add_argument("file", metavar="FILE.jsonl", help='one conversation per line: {"messages": [{"role", "content"}, ...], '
                                                      '"user": optional, "learn": optional bool}')
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = sub.add_parser("ask", help=cmd_ask.__doc__)
    s.add_argument("question", nargs="*", metavar="QUESTION")
    s.add_argument("--no-memory", action="store_true", help="closed book: no retrieval of past turns")
    s.add_argument("--user", default=None, help="whose memories to recall (default serve.default_user)")
    s.add_argument("--json", action="store_true", help="print the answers as JSON")

    s = sub.add_parser("status", help=cmd_status.__doc__)
    s.add_argument("--json", action="store_true", help="print as JSON")

    s = sub.add_parser("export", help=cmd_export.__doc__)
    s.add_argument("file", metavar="FILE.jsonl")
    s.add_argument("--user", default=None, help="only this user's conversations")
    s.add_argument("--json", action="store_true", help="print the result as JSON")

    s = sub.add_parser("consolidate", help=cmd_consolidate.__doc__)
    s.add_argument("--dry-run", action="store_true", help="print the data mix (counts per source, samples), no training")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("versions", help=cmd_versions.__doc__)
    s.add_argument("--json", action="store_true", help="print as JSON")

    s = sub.add_parser("promote", help=cmd_promote.__doc__)
    s.add_argument("version", metavar="V", help="a version name such as v0003, or 'base' for no adapter")

    sub.add_parser("rollback", help=cmd_rollback.__doc__)

    s = sub.add_parser("probe", help=cmd_probe.__doc__,
                       description=cmd_probe.__doc__ + " Exit code 1 when the version fails the gate's thresholds.")
    s.add_argument("--version", default=None, metavar="V",
                   help="a version such as v0003, or 'base' (default: the served version)")
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
    from .embed import EmbedderError
    from .model import ModelError
    from .store import StoreError

    try:
        args.home = Path(args.home).expanduser() if args.home else default_home()
        args.cfg = load_config(args.home, args.config)
        if getattr(args, "schedule", None):
            from .config import ConsolidateConfig

            ConsolidateConfig(schedule=args.schedule)  # validates HH:MM with a clear message
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, StoreError, ModelError, EmbedderError) as e:
        print(f"chatbot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
