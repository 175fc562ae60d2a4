"""Probe suites: the shipped, versioned files in probe_suites/ (read from inside the package) and the Probe and
Suite values every other evaluation module passes around. A suite's version carries a hash of its content, so
a stored result always says exactly which questions it answered."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from chatbot.core.config import Config

PROBES_DIR = Path(str(resources.files("chatbot.evaluation") / "probe_suites"))  # shipped inside the package
SuiteKind = Literal["qa", "instruct", "kl", "perplexity", "acquisition", "canary"]
RETENTION = ("general-qa", "instruct")  # generated retention suites the gate compares with the base
LEAKS = "canary-leaks"  # the privacy result: score = number of leaks


@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str  # the user message (single-turn chat, no memories)
    accept: tuple[str, ...] = ()  # qa / acquisition: passed when any of these appears as a word in the reply
    reject: tuple[str, ...] = ()  # acquisition of a corrected fact: failed when any of these (old values) appears
    checks: tuple[dict, ...] = ()  # instruct: passed when every check holds
    response: str = ""  # kl: the fixed reply whose next-token distributions are compared


@dataclass
class Suite:
    name: str  # "general-qa", "instruct", "kl", "perplexity", "acquisition/v0001", "canary"
    kind: SuiteKind
    version: str  # file name (or derivation) + content hash: "general-qa-v1@1a2b3c4d"
    probes: list[Probe] = field(default_factory=list)
    text: str = ""  # perplexity: the reference text

    @property
    def generated(self) -> bool:
        return self.kind in ("qa", "instruct", "acquisition", "canary")


def digest(payload: object) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:8]


def load_suite(stem: str, kind: SuiteKind, folder: Path = PROBES_DIR) -> Suite:
    """A shipped suite: chatbot/evaluation/probe_suites/<stem>.jsonl (or .txt for the perplexity reference)."""
    path = folder / f"{stem}.{'txt' if kind == 'perplexity' else 'jsonl'}"
    if not path.exists():
        raise FileNotFoundError(f"probe suite {path} not found: check [probes] in the config "
                                "(chatbot/evaluation/probe_suites/ lists the shipped suites)")
    content = path.read_text(encoding="utf-8")
    version = f"{stem}@{hashlib.sha1(content.encode()).hexdigest()[:8]}"
    if kind == "perplexity":
        return Suite("perplexity", kind, version, text=content.strip())
    probes = []
    for n, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            probes.append(Probe(row["id"], row.get("question") or row["prompt"], tuple(row.get("accept", ())),
                                tuple(row.get("checks", ())), row.get("response", "")))
        except (ValueError, KeyError) as e:
            raise ValueError(f"{path}:{n}: not a probe ({e})") from None
    name = {"qa": "general-qa", "instruct": "instruct", "kl": "kl", "canary": "canary"}[kind]
    return Suite(name, kind, version, probes)


def shipped_suites(config: Config) -> dict[str, Suite]:
    p = config.probes
    return {"qa": load_suite(p.qa_suite, "qa"), "instruct": load_suite(p.instruct_suite, "instruct"),
            "kl": load_suite(p.kl_suite, "kl"), "perplexity": load_suite(p.reference, "perplexity"),
            "canary": load_suite(p.canary_suite, "canary")}
