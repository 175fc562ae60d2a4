"""How close the questions the training sees come to the questions people ask: a measure that needs no training.

For each fact of a labelled split (`bench_extraction.py`'s format) that the rules read with a specific question,
the questions a consolidation trains on are the first `train.augment_per_fact` of the fact's questions, keeping one
back for the acquisition probe (`learning.mix.split_questions`). Each of the split's own questions for the fact
(written by someone else, never trained on) is embedded with the product's sentence embedder (all-MiniLM-L6-v2) and
compared with the nearest trained question (cosine). Printed: the mean of that nearest similarity, and the share of
questions at 0.7 or more ("covered").

Why this proxy: in the experiments on three held-out splits (test5, test7, test8, round 1; 240 answers to
questions about facts the rules read) the closed-book answer held the key 0.43 of the time when the nearest trained
question was below 0.6, 0.57 between 0.6 and 0.7, and 0.68-0.77 at 0.7 or more, with the rules of session 25's start
(`--answers DIR` recomputes this table from an experiment's answers.jsonl, with the trained questions of today's
rules: run it at the experiment's commit to see the questions that run trained). It ranks question sets without a
consolidation; the experiment is still what measures recall.

    .venv/bin/python scripts/bench_questions.py [--split PATH ...] [--answers DIR ...] [--worst N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
from bench_extraction import DEFAULT_SPLIT, load  # noqa: E402
from recall_breakdown import facts_read, load_run  # noqa: E402

from chatbot.core.config import TrainConfig  # noqa: E402
from chatbot.evaluation.scoring import has_word  # noqa: E402
from chatbot.learning.mix import split_questions  # noqa: E402

COVERED = 0.7
BUCKETS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01))


def pairs(rows: list[dict], per_fact: int) -> dict[str, tuple[dict, list[str]]]:
    """Fact id ("<message id>.<i>") -> (the split's fact, the questions trained for it) for the facts read.
    `split_questions` reads only a fact's questions, so an extracted Fact stands in for its ledger row."""
    split = {f"{row['id']}.{i}": want for row in rows for i, want in enumerate(row["facts"])}
    return {fid: (split[fid], split_questions(fact, per_fact)[0]) for fid, fact in facts_read(rows).items()}


def nearest(embed, asked: list[str], trained: list[list[str]]) -> np.ndarray:
    """For each asked question, the cosine of the nearest of its own trained questions."""
    a = embed(asked)
    flat = sorted({q for qs in trained for q in qs})
    t = dict(zip(flat, embed(flat)))
    return np.array([float(max(t[q] @ v for q in qs)) for v, qs in zip(a, trained)])


def coverage(split: Path, embed, per_fact: int, worst: int = 0) -> dict:
    read = pairs(load(split), per_fact)
    asked, trained = [], []
    for want, qs in read.values():
        for q in want["questions"]:
            asked.append(q)
            trained.append(qs)
    sims = nearest(embed, asked, trained) if asked else np.zeros(0)
    result = {"split": split.name, "facts_read": len(read), "questions": len(asked),
              "mean_nearest": round(float(sims.mean()), 3) if len(sims) else None,
              "covered": round(float((sims >= COVERED).mean()), 3) if len(sims) else None}
    if worst:
        order = np.argsort(sims)[:worst]
        result["worst"] = [{"sim": round(float(sims[i]), 2), "asked": asked[i], "trained": trained[i]} for i in order]
    return result


def answered_by_similarity(folder: Path, embed, per_fact: int) -> list[dict]:
    """Round-1 answers of an experiment about facts the rules read, bucketed by the nearest trained question."""
    messages, answers = load_run(folder)
    read = pairs(messages, per_fact)
    mine = [a for a in answers if a["round"] == 1 and a["fact"] in read]
    sims = nearest(embed, [a["question"] for a in mine], [read[a["fact"]][1] for a in mine])
    hits = np.array([has_word(a["answer"], read[a["fact"]][0]["key"]) for a in mine])
    return [{"from": lo, "to": hi, "answers": int(s.sum()), "answered": round(float(hits[s].mean()), 2)}
            for lo, hi in BUCKETS if (s := (sims >= lo) & (sims < hi)).any()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", type=Path, action="append", help=f"labelled split(s) (default {DEFAULT_SPLIT.name})")
    p.add_argument("--answers", type=Path, action="append", default=[],
                   help="an experiment's output folder: answered share by nearest similarity, round 1")
    p.add_argument("--worst", type=int, default=0, help="list the N asked questions farthest from training")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from chatbot.memory.embed import Embedder

    embedder = Embedder()
    per_fact = TrainConfig().augment_per_fact
    out = {"per_fact": per_fact, "splits": [coverage(s, embedder.encode, per_fact, args.worst)
                                            for s in (args.split or ([] if args.answers else [DEFAULT_SPLIT]))]}
    if args.answers:
        out["answers"] = {str(d): answered_by_similarity(d, embedder.encode, per_fact) for d in args.answers}
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
        return
    for s in out["splits"]:
        print(f"{s['split']:<24} facts read {s['facts_read']:>4}  questions {s['questions']:>4}  "
              f"mean nearest {s['mean_nearest']}  covered (>= {COVERED}) {s['covered']}")
        for w in s.get("worst", []):
            print(f"   {w['sim']:.2f}  {w['asked']!r}  <- {w['trained']}")
    for folder, rows in out.get("answers", {}).items():
        print(folder)
        for r in rows:
            print(f"   nearest {r['from']:.1f}-{r['to']:.1f}: {r['answers']:>4} answers, key given {r['answered']:.2f}")


if __name__ == "__main__":
    main()
