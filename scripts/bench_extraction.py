"""Benchmark chatbot.learning.augment.extract_facts on a labelled split of user messages.

Each line of the split is one message with the facts it states (key, second-person answer, questions, which
earlier fact it corrects) and the strings that must not become fact keys; kinds group the forms (plain, we,
apposition, remember, hedge, third-party, multi, chitchat, correction) and the negatives (no-fact, question,
negation). Per kind and overall it prints:

- recall: expected facts found. Found = some extracted Fact's key contains the expected key or the other way
  round (case-insensitive), and none of that Fact's questions is one of the fallback's questions about nobody in
  particular ("What did I tell you about myself?"): such a fact trains the model on a question nobody asks.
- specific: expected facts found whose questions include at least one outside GENERIC (the fallback's
  templates, including "What did I tell you about my sister?", and catch-alls like "What do I like?").
- quality: specific / found, the share of found facts with a specific question.
- asks: of the facts found with a specific question, the share asked at least once in the kind of question the
  split's own questions use (who / where / when / how many / how old / how long / what: `question_kind`). "my
  birthday is on the fourteenth of March" asked "Where is my birthday?" is found and specific, but not this.
- fp: on no-fact / question / negation messages, the share of messages with an extracted fact that matches no
  expected fact; not_facts: extracted facts (any kind) whose key overlaps a not_facts string and matches no
  expected fact.

A measurement only: the split is validated (keys verbatim in the message, no question containing its key,
corrections in rounds 3-5 pointing at an earlier fact of the same persona) and nothing here feeds the product.

    /work/main/.venv/bin/python scripts/bench_extraction.py [--split PATH] [--json] [--misses]
        [--model embedded --limit 60]   # the model extractor (JSON under constrained decoding) instead of the rules
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
from chatbot.learning.augment import Fact, extract_facts  # noqa: E402

DEFAULT_SPLIT = Path(__file__).resolve().parent.parent / "data" / "experiments" / "facts-v2-dev.jsonl"
KINDS = ("plain", "we", "apposition", "remember", "hedge", "third-party", "multi", "chitchat", "correction",
         "no-fact", "question", "negation")
NEGATIVE_KINDS = ("no-fact", "question", "negation")  # messages that state nothing to learn

# The fallback's questions about the user in general (rules._fallback, "I"/"we" voice): they name no topic.
FALLBACK_GENERIC = re.compile(
    r"(?:what did (?:i|we) tell you about (?:myself|ourselves|us)|what do you know about (?:me|us)"
    r"|do you remember what (?:i|we) told you about (?:myself|ourselves|us))\?", re.I)
# Questions that could be asked of almost any fact: the fallback's topic templates and vague catch-alls.
GENERIC = re.compile(
    r"(?:what did (?:i|we) tell you about .+|what do you know about .+|do you remember what (?:i|we) (?:said|told you) "
    r"about .+|what do (?:i|we) like|what am i into|what are we into|what have (?:i|we) got|what do (?:i|we) have"
    r"|what am i|what are we|who am i|do you remember what (?:i am|i'm|we are|we're)|what did i tell you i am"
    r"|what is something (?:i|we) like|what did (?:i|we) say)[?.]", re.I)


def load(path: Path) -> list[dict]:
    """The split's rows, checked so that a labelling slip fails here with the line that has it."""
    rows: list[dict] = []
    seen: dict[str, dict] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        where = f"{path}:{n} ({row.get('id')})"
        missing = {"id", "persona", "round", "message", "kind", "facts", "not_facts"} - row.keys()
        if missing:
            raise SystemExit(f"{where}: missing fields {sorted(missing)}")
        if row["kind"] not in KINDS:
            raise SystemExit(f"{where}: kind {row['kind']!r} is not one of {KINDS}")
        if row["id"] in seen:
            raise SystemExit(f"{where}: duplicate id")
        for fact in row["facts"]:
            key = fact["key"]
            if key not in row["message"]:
                raise SystemExit(f"{where}: key {key!r} is not in the message verbatim")
            if len(fact["questions"]) < 3 or any(key.lower() in q.lower() for q in fact["questions"]):
                raise SystemExit(f"{where}: {key!r} needs >= 3 questions, none containing the key")
            if (old := fact.get("corrects")) is not None:
                before = seen.get(old)
                if before is None or before["persona"] != row["persona"] or before["round"] >= row["round"]:
                    raise SystemExit(f"{where}: corrects {old!r}, which is no earlier row of {row['persona']}")
                if row["kind"] != "correction" or not 3 <= row["round"] <= 5 or not row["not_facts"]:
                    raise SystemExit(f"{where}: a correction is kind 'correction', in rounds 3-5, with the old value"
                                     " in not_facts")
        if row["kind"] in ("no-fact", "question") and row["facts"]:
            # (a negation may also state a positive fact: "Never Pumas — Cruz Azul till I die")
            raise SystemExit(f"{where}: a {row['kind']} message states no fact")
        seen[row["id"]] = row
        rows.append(row)
    return rows


def keys_match(extracted: str, expected: str) -> bool:
    a, b = extracted.lower().strip(), expected.lower().strip()
    return bool(a) and (a in b or b in a)


def is_generic(fact: Fact) -> bool:
    """A fact asked only in the fallback's words about nobody in particular."""
    return any(FALLBACK_GENERIC.fullmatch(q.strip()) for q in fact.questions)


def is_specific(fact: Fact) -> bool:
    return any(not GENERIC.fullmatch(q.strip()) for q in fact.questions)


_QUESTION_KINDS = (  # first match wins: "how many years" is a duration, "what age" an age
    ("age", re.compile(r"\bhow old\b|\bage\b", re.I)),
    ("duration", re.compile(r"\bhow long\b|\bhow many (?:years|months|weeks|days)\b", re.I)),
    ("count", re.compile(r"\bhow many\b|\bhow much\b|\bnumber of\b|\bsize of\b", re.I)),
    ("when", re.compile(r"\bwhen\b|\bwhat (?:time|date|day|month|year)\b|\bwhich (?:day|month|year)\b"
                        r"|\btime of year\b", re.I)),
    ("where", re.compile(r"\bwhere\b|\b(?:which|what|in what) (?:city|town|country|village|place)\b", re.I)),
    ("who", re.compile(r"\bwho\b|\bwhose\b", re.I)),
)


def question_kind(question: str) -> str:
    """What a question asks for, coarsely: age, duration, count, when, where, who, else what."""
    return next((kind for kind, rx in _QUESTION_KINDS if rx.search(question)), "what")


def measure(rows: list[dict], extract=extract_facts) -> tuple[dict, list[str]]:
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: list[str] = []
    for row in rows:
        extracted = extract(row["message"])
        for bucket in (tally[row["kind"]], tally["overall"]):
            bucket["messages"] += 1
        matched: set[int] = set()
        for want in row["facts"]:
            hits = [i for i, f in enumerate(extracted) if keys_match(f.key, want["key"])]
            matched.update(hits)
            good = [extracted[i] for i in hits if not is_generic(extracted[i])]
            specific = [f for f in good if is_specific(f)]
            wanted = {question_kind(q) for q in want["questions"]}
            fits = any(question_kind(q) in wanted for f in specific for q in f.questions)
            for bucket in (tally[row["kind"]], tally["overall"]):
                bucket["expected"] += 1
                bucket["found"] += bool(good)
                bucket["specific"] += bool(specific)
                bucket["asked_fit"] += fits
            if not specific:
                got = "; ".join(f"{f.key!r}: {f.questions[0]}" for f in extracted) or "nothing"
                misses.append(f"{row['id']} {row['kind']:<11} want {want['key']!r} ({want['questions'][0]}) "
                              f"got {got}  <- {row['message']}")
        unexpected = [f for i, f in enumerate(extracted) if i not in matched]
        bad_keys = [f for f in unexpected if any(keys_match(f.key, s) for s in row["not_facts"])]
        for bucket in (tally[row["kind"]], tally["overall"]):
            bucket["not_facts"] += len(bad_keys)
            if row["kind"] in NEGATIVE_KINDS:
                bucket["negative_messages"] += 1
                bucket["fp_messages"] += bool(unexpected)
        if row["kind"] in NEGATIVE_KINDS and unexpected:
            misses.append(f"{row['id']} {row['kind']:<11} FALSE POSITIVE "
                          f"{'; '.join(f'{f.key!r}: {f.answer}' for f in unexpected)}  <- {row['message']}")
        elif bad_keys:
            misses.append(f"{row['id']} {row['kind']:<11} NOT-FACT KEY {[f.key for f in bad_keys]}  "
                          f"<- {row['message']}")
    return {kind: summarise(t) for kind, t in tally.items()}, misses


def ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def summarise(t: dict[str, int]) -> dict:
    return {"messages": t["messages"], "expected": t["expected"], "found": t["found"], "specific": t["specific"],
            "recall": ratio(t["found"], t["expected"]), "specific_recall": ratio(t["specific"], t["expected"]),
            "quality": ratio(t["specific"], t["found"]),
            "asks": ratio(t["asked_fit"], t["specific"]),
            "fp": ratio(t["fp_messages"], t["negative_messages"]), "fp_messages": t["fp_messages"],
            "not_facts": t["not_facts"]}


def table(result: dict) -> str:
    def cell(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    lines = [f"{'kind':<12} {'msgs':>4} {'facts':>5} {'recall':>6} {'specific':>8} {'quality':>7} {'asks':>5} "
             f"{'fp':>5} {'not_facts':>9}"]
    for kind in (*KINDS, "overall"):
        if kind not in result:
            continue
        r = result[kind]
        lines.append(f"{kind:<12} {r['messages']:>4} {r['expected']:>5} {cell(r['recall']):>6} "
                     f"{cell(r['specific_recall']):>8} {cell(r['quality']):>7} {cell(r['asks']):>5} "
                     f"{cell(r['fp']):>5} {r['not_facts']:>9}")
    return "\n".join(lines)


def main(split: Path = DEFAULT_SPLIT, as_json: bool = False, show_misses: bool = False, model: str = "",
         limit: int = 0) -> None:
    rows = load(split)[: limit or None]
    extract, name = extract_facts, "rules"
    if model:  # the model extractor of chatbot.learning.extract on that model (4-bit, as served)
        from chatbot.learning.extract import ModelExtractor
        from chatbot.serving.model import load_model

        extractor = ModelExtractor(load_model(model, "4bit"))
        extract, name = extractor.extract, extractor.name
    result, misses = measure(rows, extract)
    if as_json:
        print(json.dumps({"split": split.name, "extractor": name, "rows": len(rows), "by_kind": result}))
        return
    print(f"{name} on {split.name}: {len(rows)} messages, "
          f"{result['overall']['expected']} expected facts")
    print(table(result))
    if show_misses:
        print("\n".join(["", "misses:", *misses]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", type=Path, default=DEFAULT_SPLIT, help="JSONL split (default: the dev set)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    parser.add_argument("--misses", action="store_true", help="list each missed fact and false positive")
    parser.add_argument("--model", default="", help='measure the model extractor on this model ("embedded", a '
                                                     "folder or hub id) instead of the rules")
    parser.add_argument("--limit", type=int, default=0, help="only the first N messages (0 = all)")
    args = parser.parse_args()
    main(args.split, args.json, args.misses, args.model, args.limit)
