"""Probe results in SQLite, next to the turns (same database file, tables of their own): one row per suite run
on one model version, its items (what was asked and answered), and the gate's verdict per version. Results are
keyed by version, model, suite version and decoding, so a cached "before" is reused only when all match."""
from __future__ import annotations

import json
import sqlite3
import time

from chatbot.memory.db import Database, chunks

_SCHEMA = """
CREATE TABLE IF NOT EXISTS probe_results (     -- one suite run on one model version (docs/probes.md)
    id INTEGER PRIMARY KEY AUTOINCREMENT,      -- never reused: items always belong to the run that wrote them
    version TEXT NOT NULL,                     -- adapter version probed, or 'base'
    model TEXT NOT NULL,                       -- base model name and quantization
    suite TEXT NOT NULL,                       -- 'general-qa', 'instruct', 'kl', 'perplexity', 'acquisition/v0001',
                                               -- 'canary'
    suite_version TEXT NOT NULL,               -- suite file name + content hash, e.g. 'general-qa-v1@1a2b3c4d'
    decoding TEXT NOT NULL,                    -- JSON of the decoding settings (generated suites) or '{}'
    run TEXT NOT NULL DEFAULT 'greedy',        -- 'greedy', or 'sample-<seed>' for the base's noise-floor runs
    score REAL,                                -- % of probes passed; KL in nats/token; perplexity
    details TEXT NOT NULL DEFAULT '{}',        -- JSON: extra numbers of the suite
    created_at REAL NOT NULL,
    seconds REAL NOT NULL DEFAULT 0,
    UNIQUE (version, model, suite, suite_version, decoding, run)
);
CREATE TABLE IF NOT EXISTS probe_items (       -- one probe of a suite run: what was asked and answered
    result_id INTEGER NOT NULL REFERENCES probe_results(id) ON DELETE CASCADE,
    probe_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    output TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (result_id, probe_id)
);
CREATE TABLE IF NOT EXISTS probe_verdicts (    -- the gate's decision on a version, with its metrics
    version TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    accepted INTEGER NOT NULL,
    reasons TEXT NOT NULL,                     -- JSON list of failed thresholds
    metrics TEXT NOT NULL,                     -- JSON: scores, drops, forgetting, BWT, KL, perplexity ratio,
                                               -- noise floor
    PRIMARY KEY (version, model)
);
"""


class ResultStore(Database):
    SCHEMA = _SCHEMA
    TABLES = ("probe_results", "probe_items", "probe_verdicts")

    def save_result(self, version: str, model: str, suite: str, suite_version: str, decoding: str, run: str,
                          score: float | None, details: dict, seconds: float,
                          items: list[tuple[str, str, str, float]]) -> int:
        """Store one suite run (replacing an earlier identical key) with its items (probe id, prompt, output,
        score), in one transaction."""
        with self._tx() as db:
            db.execute("DELETE FROM probe_results WHERE version = ? AND model = ? AND suite = ? AND suite_version = ?"
                       " AND decoding = ? AND run = ?", (version, model, suite, suite_version, decoding, run))
            rid = int(db.execute(
                "INSERT INTO probe_results(version, model, suite, suite_version, decoding, run, score, details,"
                " created_at, seconds) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (version, model, suite, suite_version, decoding, run, score, json.dumps(details), time.time(),
                 seconds)).lastrowid)
            db.executemany("INSERT INTO probe_items(result_id, probe_id, prompt, output, score) VALUES (?,?,?,?,?)",
                           [(rid, *item) for item in items])
            return rid

    def result(self, version: str, model: str, suite: str, suite_version: str, decoding: str,
                     run: str = "greedy") -> dict | None:
        rows = self._query("SELECT * FROM probe_results WHERE version = ? AND model = ? AND suite = ?"
                           " AND suite_version = ? AND decoding = ? AND run = ?",
                           (version, model, suite, suite_version, decoding, run))
        return _probe_row(rows[0]) if rows else None

    def results(self, model: str | None = None, run: str | None = "greedy") -> list[dict]:
        """Suite results, oldest first (optionally of one model / one kind of run)."""
        sql, args = "SELECT * FROM probe_results WHERE 1 = 1", []
        if model is not None:
            sql, args = sql + " AND model = ?", [*args, model]
        if run is not None:
            sql, args = sql + " AND run = ?", [*args, run]
        return [_probe_row(r) for r in self._query(sql + " ORDER BY created_at, id", tuple(args))]

    def items(self, result_id: int) -> list[dict]:
        return [dict(r) for r in self._query("SELECT probe_id, prompt, output, score FROM probe_items"
                                             " WHERE result_id = ? ORDER BY probe_id", (result_id,))]

    def save_verdict(self, version: str, model: str, accepted: bool, reasons: list[str], metrics: dict) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO probe_verdicts(version, model, created_at, accepted, reasons, metrics)"
                       " VALUES (?,?,?,?,?,?)", (version, model, time.time(), int(accepted), json.dumps(reasons),
                                                 json.dumps(metrics)))

    def verdicts(self, model: str | None = None) -> dict[str, dict]:
        """version -> {accepted, reasons, metrics, created_at} (the newest model's when model is None)."""
        sql, args = "SELECT * FROM probe_verdicts", ()
        if model is not None:
            sql, args = sql + " WHERE model = ?", (model,)
        return {r["version"]: {"model": r["model"], "accepted": bool(r["accepted"]), "created_at": r["created_at"],
                               "reasons": json.loads(r["reasons"]), "metrics": json.loads(r["metrics"])}
                for r in self._query(sql + " ORDER BY created_at", args)}

    def forget_versions(self, versions: list[str]) -> int:
        """Delete the probe results, answers and verdicts of deleted versions (a forgotten user's: their
        acquisition probes quote that user's facts); returns how many suite results went."""
        n = 0
        with self._tx() as db:
            for chunk, marks in chunks(versions):
                n += db.execute(f"DELETE FROM probe_results WHERE version IN ({marks})", tuple(chunk)).rowcount
                db.execute(f"DELETE FROM probe_verdicts WHERE version IN ({marks})", tuple(chunk))
        return n

    def stamp(self) -> tuple[int, int, float]:
        """Changes whenever a probe result or verdict is stored (the dashboard's auto-refresh checks it)."""
        r = self._query("SELECT (SELECT COUNT(*) FROM probe_results) AS n, (SELECT COALESCE(MAX(id), 0) FROM"
                        " probe_results) AS last, (SELECT COALESCE(MAX(created_at), 0) FROM probe_verdicts)"
                        " AS verdict")[0]
        return int(r["n"]), int(r["last"]), float(r["verdict"])


def _probe_row(r: sqlite3.Row) -> dict:
    return {**dict(r), "details": json.loads(r["details"])}
