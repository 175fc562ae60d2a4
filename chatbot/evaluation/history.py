"""What the Dashboard tab and `chatbot report` show, read from the registry, the runs folder and the probe results
in SQLite: scores per suite over versions, KL and perplexity drift, forgetting and backward transfer, the runs,
and per-probe answer diffs between two versions. Plain data (pandas frames, lists): no UI code here."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from chatbot.core.config import Config
from chatbot.core.lines import AdapterLines
from chatbot.core.lock import is_running
from chatbot.core.paths import Paths
from chatbot.core.registry import BASE, Version, VersionStatus
from chatbot.core.runlog import FINISHED, Stage, all_progress
from chatbot.evaluation.canary import canary, redact
from chatbot.evaluation.results import ResultStore
from chatbot.evaluation.suite import LEAKS, load_suite
from chatbot.memory.store import Store

RUN_COLUMNS = ["run", "user", "started", "new turns", "examples (new/augment/replay/rehearsal)", "replay ratio",
               "duration (s)", "status", "version", "reasons"]
SUMMARY_COLUMNS = ["version", "status", "general-qa", "instruct", "learned (own facts)", "forgetting QA",
                   "forgetting instruct", "avg forgetting (facts)", "BWT (facts)", "KL to base", "perplexity ratio",
                   "canary leaks"]
DIFF_COLUMNS = ["suite", "probe", "prompt", "old answer", "new answer", "old score", "new score"]
_NOT_PLOTTED = ("kl", "perplexity", "canary", LEAKS)


@dataclass
class History:
    model: str | None  # whose results are shown (the newest probed model when not given)
    served: str
    versions: list[Version]
    results: list[dict]  # greedy suite results of `model`, oldest first
    verdicts: dict[str, dict]  # version -> the gate's verdict and metrics
    secrets: tuple[str, ...] = ()  # "don't learn" strings, for redaction only (shared by cached loads)
    db: Path | None = None  # where the per-probe answers are read from (diffs)

    def status(self, version: str) -> str:
        if version == BASE:
            return "base"
        return next((v.status for v in self.versions if v.name == version), "deleted")

    def label(self, version: str) -> str:
        """The x-axis label: rejected versions are marked."""
        return f"{version} (rejected)" if self.status(version) == VersionStatus.REJECTED else version

    def latest(self) -> dict[tuple[str, str], dict]:
        """(version, suite) -> newest result."""
        return {(r["version"], r["suite"]): r for r in self.results}

    def probed_versions(self) -> list[str]:
        names = {r["version"] for r in self.results}
        return [BASE] * (BASE in names) + sorted(n for n in names if n != BASE)


ALL = "all"  # every user's versions


def load_history(home: Path, config: Config, model: str | None = None, user: str | None = None) -> History:
    """The probe history of `user`'s adapter line (with the base), or of every line (None or ALL)."""
    paths = Paths(Path(home))
    lines = AdapterLines(paths.adapters, config.serve.default_user)
    if user and user != ALL:
        registry = lines.line(user)
        versions, served = registry.versions(), registry.current()
    else:
        versions = lines.versions()
        owners = lines.users()
        served = lines.line(owners[0]).current() if len(owners) == 1 else "one version per user"
    shown = {BASE, *(v.name for v in versions)}
    store, stored = Store(paths.db), ResultStore(paths.db)
    try:
        if model is None:
            rows = stored.results()
            model = rows[-1]["model"] if rows else None
        results = [r for r in stored.results(model) if r["version"] in shown] if model else []
        verdicts = {v: d for v, d in stored.verdicts(model).items() if v in shown} if model else {}
        secrets = canary_secrets(store, config.probes.canary_suite)
    finally:
        store.close()
        stored.close()
    return History(model, served, versions, results, verdicts, secrets, paths.db)


# (database, canary suite) -> (Store.learn_stamp() when computed, secrets); a few homes per process at most
_SECRETS: dict[tuple[str, str], tuple[tuple[int, int, int], tuple[str, ...]]] = {}
_SECRETS_KEPT = 8


def canary_secrets(store: Store, suite: str) -> tuple[str, ...]:
    """The canary's "don't learn" strings, for redaction. The canary scans every turn and the dashboard reloads
    every few seconds, so the result is kept until Store.learn_stamp() changes (a turn added, forgotten, or a
    learn flag changed). The stamp is read before the scan: a change racing with it only causes one more scan."""
    key = (str(store.path.resolve()), suite)
    stamp = store.learn_stamp()
    cached = _SECRETS.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        secrets = tuple(canary(store, load_suite(suite, "canary")).secrets)
    except FileNotFoundError:
        secrets = ()
    _SECRETS.pop(key, None)
    while len(_SECRETS) >= _SECRETS_KEPT:
        _SECRETS.pop(next(iter(_SECRETS)), None)  # the oldest entry
    _SECRETS[key] = (stamp, secrets)
    return secrets


def score_frame(h: History) -> pd.DataFrame:
    """One row per (version, suite) with a % score: general QA, instruction following, each acquisition suite."""
    rows = [{"version": h.label(v), "suite": s, "score": round(r["score"], 2), "status": h.status(v)}
            for (v, s), r in sorted(h.latest().items()) if s not in _NOT_PLOTTED and r["score"] is not None]
    return pd.DataFrame(rows, columns=["version", "suite", "score", "status"])


def drift_frame(h: History) -> pd.DataFrame:
    """KL to the base (nats/token) and the perplexity ratio (version / base) per probed version."""
    latest = h.latest()
    base_ppl = latest.get((BASE, "perplexity"), {}).get("score")
    rows = []
    for v in h.probed_versions():
        kl = 0.0 if v == BASE else latest.get((v, "kl"), {}).get("score")
        ppl = latest.get((v, "perplexity"), {}).get("score")
        if kl is not None:
            rows.append({"version": h.label(v), "metric": "KL to base (nats/token)", "value": round(kl, 5)})
        if ppl is not None and base_ppl:
            rows.append({"version": h.label(v), "metric": "perplexity ratio", "value": round(ppl / base_ppl, 5)})
    return pd.DataFrame(rows, columns=["version", "metric", "value"])


def _fmt(x, digits: int = 1, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def summary_rows(h: History) -> list[list]:
    """Per version (newest first): scores, forgetting (Chaudhry), BWT (Lopez-Paz & Ranzato), KL, perplexity
    ratio and canary leaks, from the gate's stored metrics."""
    rows = []
    for v in reversed(h.probed_versions()):
        m = h.verdicts.get(v, {}).get("metrics", {})
        if not m:
            continue
        f = m.get("forgetting", {})
        acq = m.get("acquisition") or {}
        learned = f"{acq['score']:.0f} (base {acq['base']:.0f})" if acq.get("score") is not None and \
            acq.get("base") is not None else ""
        rows.append([h.label(v), h.status(v), _fmt(m["scores"].get("general-qa")), _fmt(m["scores"].get("instruct")),
                     learned, _fmt(f.get("general-qa"), signed=True), _fmt(f.get("instruct"), signed=True),
                     _fmt(m.get("average_forgetting"), signed=True), _fmt(m.get("bwt"), signed=True),
                     _fmt(m.get("kl"), 4), _fmt(m.get("ppl_ratio"), 3), m.get("canary_leaks", 0)])
    return rows


def summary_markdown(h: History) -> str:
    """One paragraph about the served version (or the newest probed one): what it learned and what it forgot."""
    if not h.results:
        return "No probe results yet: they are computed by each consolidation's gate, or by `chatbot probe`."
    v = h.served if h.served in h.verdicts else next(iter(reversed(h.probed_versions())))
    m = h.verdicts.get(v, {}).get("metrics")
    if not m:
        return f"Model {h.model}: no verdict stored for {v} yet."
    noise = m.get("noise_sd") or {}
    parts = [f"**{v}** ({'served' if v == h.served else h.status(v)}), model {h.model}:"]
    for s in ("general-qa", "instruct"):
        if s in m["scores"]:
            sd = f", noise floor ±{noise[s]:.1f}" if noise.get(s) is not None else ""
            parts.append(f"{s} {m['scores'][s]:.1f} (base {m['base_scores'].get(s, 0):.1f}{sd});")
    if m.get("acquisition"):
        parts.append(f"learned {m['acquisition']['score']:.0f} % of its own facts;")
    if m.get("bwt") is not None:
        parts.append(f"BWT {m['bwt']:+.1f} points and average forgetting {m['average_forgetting']:.1f} over "
                     "earlier versions' facts;")
    parts.append(f"KL to base {m.get('kl', 0):.4f} nats/token, perplexity ratio {m.get('ppl_ratio') or 1:.3f}, "
                 f"canary leaks {m.get('canary_leaks', 0)}.")
    verdict = h.verdicts[v]
    if not verdict["accepted"]:
        parts.append("Gate: **rejected** — " + "; ".join(verdict["reasons"]))
    return " ".join(parts)


def runs_rows(home: Path, user: str | None = None) -> list[list]:
    """One row per consolidation run (of `user`, or everyone's), newest first: user, start time, data counts,
    replay ratio, duration, status and reasons (a run that produced no version — nothing to do, failed, killed — is
    listed too)."""
    versions = {v.name: v for v in AdapterLines(Paths(Path(home)).adapters).versions()}
    rows = []
    progress = all_progress(home)
    live = is_running(home)
    for p in reversed(progress):
        if user and user != ALL and p.get("user") not in (user, None):
            continue
        running = live and p is progress[-1] and p.get("stage") not in FINISHED
        v = versions.get(p.get("version") or "")
        stage = p.get("stage")
        status = p.get("status") or ("running" if running else "failed" if stage == Stage.FAILED else
                                     "killed" if stage != Stage.DONE else "")
        counts = v.manifest.get("counts", {}) if v else {}
        replay_ratio = None
        if v:
            try:
                replay_ratio = json.loads((v.path / "config.json").read_text())["config"]["train"]["replay_ratio"]
            except (OSError, ValueError, KeyError):
                pass
        reasons = "; ".join(v.reasons) if v and v.reasons else p.get("error") or (p.get("message") if not v else "")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.get("started", 0)))
        rows.append([p["run"], p.get("user", ""), started,
                     len(v.manifest.get("new_turn_ids", [])) if v else "",
                     "/".join(str(counts.get(k, 0)) for k in ("new", "augment", "replay", "rehearsal")) if v else "",
                     replay_ratio if replay_ratio is not None else "",
                     round(p.get("updated", 0) - p.get("started", 0), 1),
                     "running" if running else v.status if v else status, p.get("version") or "",
                     reasons or ""])
    return rows


def diff_rows(h: History, old: str, new: str, only_changed: bool = True) -> list[list]:
    """Per probe of every generated suite both versions answered: the two answers and scores (changed ones
    first). "Don't learn" strings are redacted."""
    if not old or not new:
        return []
    if h.db is None:
        return []
    stored = ResultStore(h.db)
    latest = h.latest()
    rows: list[list] = []
    try:
        for (v, suite), r in sorted(latest.items()):
            if v != new or suite in ("kl", "perplexity", LEAKS) or (old, suite) not in latest:
                continue
            a = {i["probe_id"]: i for i in stored.items(latest[(old, suite)]["id"])}
            for item in stored.items(r["id"]):
                before = a.get(item["probe_id"])
                if before is None:
                    continue
                changed = before["output"] != item["output"] or before["score"] != item["score"]
                if only_changed and not changed:
                    continue
                rows.append([suite, item["probe_id"], redact(item["prompt"], h.secrets),
                             redact(before["output"], h.secrets), redact(item["output"], h.secrets),
                             before["score"], item["score"]])
    finally:
        stored.close()
    rows.sort(key=lambda r: (r[5] == r[6], r[0], r[1]))  # score changes first
    return rows


def fingerprint(home: Path) -> tuple:
    """Changes whenever something the dashboard shows may have changed (for auto-refresh)."""
    paths = Paths(Path(home))
    progress = sorted(paths.runs.glob("*/progress.json"))
    stamp: list = []
    for p in progress[-1:]:
        try:
            stamp += [p.stat().st_mtime, is_running(home)]
        except OSError:
            pass
    stamp.append(AdapterLines(paths.adapters).stamp())
    if paths.db.exists():
        stored = ResultStore(paths.db)
        try:
            stamp.append(stored.stamp())
        finally:
            stored.close()
    return (len(progress), *stamp)
