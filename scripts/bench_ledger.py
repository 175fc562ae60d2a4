"""Benchmark supersession in the knowledge ledger (chatbot.learning.ledger) on a labelled split.

The split's messages are logged in round order, each persona as its own user, and read into a real ledger
(SQLite) by the rules extractor. Gold: facts whose `corrects` names an earlier message. Prints:
- corrections found: a fact of the corrected message is superseded, and how many of them by a fact whose key
  holds the new value (or is part of it);
- false supersessions: superseded facts of messages nothing corrects;
- facts read, and the corrections whose new statement the extractor did not read at all (nothing to supersede).

    /work/main/.venv/bin/python scripts/bench_ledger.py [--split PATH] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chatbot.learning.extract import RulesExtractor  # noqa: E402
from chatbot.learning.ledger import sync  # noqa: E402
from chatbot.memory.facts import FactStore  # noqa: E402
from chatbot.memory.store import Store  # noqa: E402

DEFAULT_SPLIT = ROOT / "data" / "experiments" / "facts-v2-dev.jsonl"


def _same_value(key: str, gold: str) -> bool:
    key, gold = key.lower(), gold.lower()
    return bool(key) and (gold in key or key in gold)


def measure(rows: list[dict]) -> dict:
    rows = sorted(rows, key=lambda r: (r["round"], r["id"]))
    with tempfile.TemporaryDirectory() as tmp:
        store, facts = Store(Path(tmp) / "db.sqlite3"), FactStore(Path(tmp) / "db.sqlite3")
        turn = {}
        for r in rows:
            turn[r["id"]] = store.add_turn(store.new_conversation(r["persona"]), "user", r["message"])
            sync(facts, RulesExtractor())
        every = facts.facts()
        by_turn: dict[int, list] = {}
        for f in every:
            by_turn.setdefault(f.turn_id, []).append(f)
        corrections = [(r, g) for r in rows for g in r["facts"] if g.get("corrects")]
        corrected_turns = {turn[g["corrects"]] for _, g in corrections}
        found = [r["id"] for r, g in corrections
                 if any(f.status == "superseded" for f in by_turn.get(turn[g["corrects"]], []))]
        by_id = {f.id: f for f in every}
        # found, and the fact that replaced the old one holds the new value ("27 kilos" for the gold "27 kilos")
        new_value = [r["id"] for r, g in corrections
                     if any(f.status == "superseded" and f.superseded_by in by_id
                            and _same_value(by_id[f.superseded_by].key, g["key"])
                            for f in by_turn.get(turn[g["corrects"]], []))]
        unread = [r["id"] for r, g in corrections if not by_turn.get(turn[r["id"]])]
        false = [(f.statement, f.key) for f in every
                 if f.status == "superseded" and f.turn_id not in corrected_turns]
        n_facts = len(every)
        facts.close()
        store.close()
    return {"corrections": len(corrections), "found": len(found), "new_value": len(new_value),
            "false_supersessions": len(false),
            "false_examples": false[:5], "correction_not_read": unread, "facts": n_facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", type=Path, default=DEFAULT_SPLIT, help="JSONL split (default: the dev set)")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()
    rows = [json.loads(x) for x in args.split.read_text(encoding="utf-8").splitlines() if x.strip()]
    m = measure(rows)
    if args.json:
        print(json.dumps({"split": args.split.name, **m}))
        return
    print(f"{args.split.name}: {m['facts']} facts read; corrections found {m['found']}/{m['corrections']} "
          f"({m['new_value']} with the new value as the new fact's key), "
          f"false supersessions {m['false_supersessions']}; corrections not read at all: "
          f"{', '.join(m['correction_not_read']) or 'none'}")


if __name__ == "__main__":
    main()
