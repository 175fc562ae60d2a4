"""Where an experiment's closed-book recall goes: extraction or answering.

Reads the output folder of `scripts/experiment.py` (its results.json names the facts file and the users; its
answers.jsonl holds every answer) and splits each round's recall of the current facts by whether the rules
(`augment.extract_facts` on the fact's message, with the names the person gave before) read the fact with a
specific question, in the sense of `scripts/bench_extraction.py`. Recall is then about (share read) x (answered
when read). The rules are today's: run it at the commit of the experiment to see what that run's rules read. A
measurement only.

    .venv/bin/python scripts/recall_breakdown.py docs/experiment/test5 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
from bench_extraction import is_generic, is_specific, keys_match  # noqa: E402
from experiment import current_facts, gold_facts, load_jsonl, rate, scenario  # noqa: E402

from chatbot.evaluation.scoring import has_word  # noqa: E402
from chatbot.learning.augment import Fact, extract_facts, names_in  # noqa: E402


def facts_read(messages: list[dict]) -> dict[str, Fact]:
    """Fact id -> the first Fact the rules extract for it from its message with a specific question; the facts they
    do not read are absent. Each person's messages are read in round order with the names their earlier ones gave
    (`augment.names_in`), as the ledger reads turns."""
    read = {}
    said: dict[str, list[Fact]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: m["round"]):  # a stable sort: message order within a round
        extracted = extract_facts(m["message"], names_in(said[m["persona"]]))
        said[m["persona"]] += extracted
        found = [x for x in extracted if not is_generic(x) and is_specific(x)]
        for i, f in enumerate(m["facts"]):
            if match := [x for x in found if keys_match(x.key, f["key"])]:
                read[f"{m['id']}.{i}"] = match[0]
    return read


def read_by_rules(messages: list[dict]) -> dict[str, bool]:
    """Fact id -> whether the rules extract it from its message with a specific question."""
    read = facts_read(messages)
    return {f"{m['id']}.{i}": f"{m['id']}.{i}" in read for m in messages for i in range(len(m["facts"]))}


def load_run(out: Path, facts: Path | None = None) -> tuple[list[dict], list[dict]]:
    """An experiment's output folder: (the messages of its users and rounds, its answers.jsonl)."""
    results_path, answers_path = out / "results.json", out / "answers.jsonl"
    for path in (results_path, answers_path):
        if not path.exists():
            raise SystemExit(f"{path} not found: give the --out folder of a scripts/experiment.py run "
                             "(answers.jsonl is written since session 22)")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    facts_path = facts or Path(results["facts_file"]["path"])
    if not facts and not facts_path.exists():  # a run made in another checkout: the split of this one
        facts_path = Path(__file__).resolve().parent.parent / "data" / "experiments" / facts_path.name
    if not facts_path.exists():
        raise SystemExit(f"{facts_path} not found: pass --facts data/experiments/<split>.jsonl")
    messages = scenario(load_jsonl(facts_path), max(results["rounds"]), users=results["facts_file"]["users"])
    return messages, load_jsonl(answers_path)


def breakdown(messages: list[dict], answers: list[dict], read: dict[str, bool]) -> list[dict]:
    """Per round: current facts and recall, each for the facts the rules read and for the others."""
    facts = gold_facts(messages)
    said: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for a in answers:
        said[a["round"]][a["fact"]].append(a["answer"])
    rows = []
    for r in sorted(said):
        current = current_facts(facts, r)
        row: dict = {"round": r, "facts": len(current)}
        for name, want in (("read", True), ("unread", False)):
            mine = [f for f in current if read[f["id"]] == want]
            hits = [has_word(a, f["key"]) for f in mine for a in said[r][f["id"]]]
            row[name] = {"facts": len(mine), "answers": len(hits), "recalled": sum(hits), "recall": rate(hits)}
        row["recall"] = rate([has_word(a, f["key"]) for f in current for a in said[r][f["id"]]])
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="an experiment's output folder (results.json + answers.jsonl)")
    p.add_argument("--facts", type=Path, help="the facts file, if not where results.json says")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args()
    messages, answers = load_run(args.out, args.facts)
    rows = breakdown(messages, answers, read_by_rules(messages))
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| round | current facts | recall | read by the rules | recall when read | not read | recall when not |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['round']} | {r['facts']} | {r['recall']} | {r['read']['facts']} | {r['read']['recall']} "
              f"| {r['unread']['facts']} | {r['unread']['recall']} |")


if __name__ == "__main__":
    main()
