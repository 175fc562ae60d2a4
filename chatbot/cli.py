"""The `chatbot` command line. Each command is a plain function; COMMANDS maps names to them (litgpt style).
With --json the last stdout line is one JSON object, for scripts."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
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

    return open_runtime(args.home, args.cfg, with_model=with_model)


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the chat app in the browser."""
    from .app import build_app, launch

    rt = _runtime(args, with_model=True)
    host = args.host or rt.config.serve.host
    port = args.port or rt.config.serve.port
    try:
        launch(build_app(rt), host, port)
    finally:
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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "import": cmd_import,
    "ask": cmd_ask,
    "status": cmd_status,
    "export": cmd_export,
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
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, StoreError, ModelError, EmbedderError) as e:
        print(f"chatbot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
