"""The promotion gate: a candidate is promoted only if every retention threshold of [probes] holds and the
privacy canary is clean (thresholds and their justification: docs/probes.md). The callers of consolidate()
(the CLI, the retrain, the scripts) hand it `default_gate(home, config)`: the ProbeGate, or None when
probes.gate is off."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from chatbot.core.config import Config, ProbesConfig
from chatbot.core.paths import Paths
from chatbot.core.registry import Version
from chatbot.evaluation.results import ResultStore
from chatbot.evaluation.runner import ProbeReport, probe_version
from chatbot.serving.model import LoadedModel

log = logging.getLogger(__name__)


def evaluate(metrics: dict, p: ProbesConfig) -> tuple[bool, list[str]]:
    """(accept?, reasons) from a probe summary (probes.summary): every failed threshold is one reason."""
    reasons = []
    for suite, limit in (("general-qa", p.max_qa_drop), ("instruct", p.max_instruct_drop)):
        drop = metrics.get("drops", {}).get(suite)
        if drop is None or drop <= limit:
            continue
        # a drop counts as lost ability when losses outnumber gains beyond the chance of answers flipping both
        # ways (one-sided sign test on the items that changed); metrics without item changes count as significant
        change = metrics.get("changes", {}).get(suite)
        if change is not None and change["p"] >= p.drop_significance:
            continue
        detail = f", {change['losses']} lost / {change['gains']} gained, p = {change['p']:.3f}" if change else ""
        reasons.append(f"{suite} score fell {drop:.1f} points below the base "
                       f"({metrics['base_scores'][suite]:.1f} → {metrics['scores'][suite]:.1f}{detail}; "
                       f"limit {limit:g}, probes.max_{'qa' if suite == 'general-qa' else 'instruct'}_drop)")
    kl = metrics.get("kl")
    if kl is not None and kl > p.max_kl:
        reasons.append(f"KL to the base {kl:.3f} nats/token > {p.max_kl:g} (probes.max_kl)")
    ratio = metrics.get("ppl_ratio")
    if ratio is not None and ratio > p.max_ppl_ratio:
        reasons.append(f"perplexity ratio {ratio:.3f} > {p.max_ppl_ratio:g} on held-out text (probes.max_ppl_ratio)")
    leaks = metrics.get("canary_leaks", 0)
    if leaks:
        reasons.append(f"privacy canary: {leaks} repl{'y' if leaks == 1 else 'ies'} repeat text marked "
                       "\"don't learn\"")
    return not reasons, reasons


def judge(home: Path, config: Config, version: str | None = None, loaded: LoadedModel | None = None,
          report: Callable[[dict], None] | None = None, user: str | None = None) -> tuple[ProbeReport, bool, list[str]]:
    """Probe a version (default: the one served to `user`), apply the thresholds and store the verdict with its
    metrics."""
    probe = probe_version(home, config, version, loaded=loaded, report=report, user=user)
    accepted, reasons = evaluate(probe.metrics, config.probes)
    results = ResultStore(Paths(Path(home)).db)
    try:
        results.save_verdict(probe.version, probe.model, accepted, reasons, probe.metrics)
    finally:
        results.close()
    log.info("probes of %s (%.0f s): %s", probe.version, probe.seconds,
             "pass" if accepted else "fail: " + "; ".join(reasons))
    return probe, accepted, reasons


class ProbeGate:
    """consolidate()'s default gate: probes the candidate on a freshly loaded copy of the served stack (the
    training copy has been prepared for k-bit training and carries the training adapter)."""

    def __init__(self, home: Path, config: Config, loaded: LoadedModel | None = None):
        self.home, self.config, self.loaded = Path(home), config, loaded
        self.last: ProbeReport | None = None

    def __call__(self, version: Version, report: Callable[[dict], None] | None = None) -> tuple[bool, list[str]]:
        try:
            self.last, accepted, reasons = judge(self.home, self.config, version.name, self.loaded, report)
        except Exception as e:  # a candidate that could not be checked is not served
            log.exception("probing %s failed", version.name)
            return False, [f"the probes could not run ({type(e).__name__}: {e}); see the run's log"]
        return accepted, reasons


def default_gate(home: Path, config: Config) -> ProbeGate | None:
    """The product's gate for consolidate(): the probes with the thresholds of [probes], or None (accept every
    candidate) when probes.gate is off."""
    return ProbeGate(home, config) if config.probes.gate else None
