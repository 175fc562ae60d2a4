"""`chatbot report FILE.html`: the dashboard as one self-contained static page (inline SVG plots, no script, no
external file) for sharing. Everything shown is escaped, and "don't learn" strings are redacted."""
from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pandas as pd

from chatbot.core.config import Config
from chatbot.core.fsio import write_text_atomic
from chatbot.evaluation.history import (
    DIFF_COLUMNS,
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    diff_rows,
    drift_frame,
    load_history,
    runs_rows,
    score_frame,
    summary_markdown,
    summary_rows,
)
from chatbot.privacy.safepath import PathRefused, output_file

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def svg_lines(frame: pd.DataFrame, x: str, y: str, color: str, title: str, y_lim: tuple | None = None,
              width: int = 760, height: int = 300) -> str:
    """A line chart as inline SVG: one line per `color` value over the categorical `x` (sorted), rejected
    versions (labels ending in '(rejected)') marked in red with a dashed line."""
    esc = html.escape
    if frame.empty:
        return f'<svg width="{width}" height="60" role="img"><title>{esc(title)}' \
               f'</title><text x="10" y="35" font-size="14">{esc(title)}: no data yet</text></svg>'
    xs = sorted(frame[x].unique())
    lo, hi = (y_lim or (float(frame[y].min()), float(frame[y].max())))
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    left, right, top, bottom = 60, 170, 30, 60
    pw, ph = width - left - right, height - top - bottom

    def px(i: int) -> float:
        return left + (pw * (i + 0.5) / len(xs))

    def py(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'font-family="sans-serif" font-size="11"><title>{esc(title)}</title>',
           f'<text x="{left}" y="18" font-size="14" font-weight="bold">{esc(title)}</text>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    for i, label in enumerate(xs):
        rejected = str(label).endswith("(rejected)")
        fill = "#d62728" if rejected else "#333"
        if rejected:
            out.append(f'<line x1="{px(i):.1f}" x2="{px(i):.1f}" y1="{top}" y2="{top + ph}" stroke="#d62728" '
                       'stroke-dasharray="4 3"/>')
        out.append(f'<text x="{px(i):.1f}" y="{top + ph + 16}" text-anchor="middle" fill="{fill}">{esc(str(label))}'
                   '</text>')
    for n, (name, part) in enumerate(sorted(frame.groupby(color), key=lambda kv: str(kv[0]))):
        c = PALETTE[n % len(PALETTE)]
        pts = sorted((xs.index(a), float(b)) for a, b in zip(part[x], part[y]))
        path = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in pts)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        out += [f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3.5" fill="{c}"><title>{esc(str(name))} '
                f'{esc(str(xs[i]))}: {v:.4g}</title></circle>' for i, v in pts]
        out.append(f'<rect x="{left + pw + 12}" y="{top + 16 * n}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{left + pw + 26}" y="{top + 9 + 16 * n}">{esc(str(name))}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(headers: list[str], rows: list[list], css: str = "") -> str:
    if not rows:
        return "<p><em>none yet</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _markdown(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def render(home: Path, config: Config) -> str:

    h = load_history(home, config)
    names = h.probed_versions()
    new = h.served if h.served in names else (names[-1] if names else None)
    old = names[names.index(new) - 1] if new in names and names.index(new) > 0 else None
    diff = diff_rows(h, old, new) if old and new else []
    when = time.strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Continual chatbot: probe report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
table.diff td {{ max-width: 380px; white-space: pre-wrap; }}
</style></head><body>
<h1>Continual chatbot: probe report</h1>
<p>Generated {when}. Model <strong>{html.escape(h.model or "none probed yet")}</strong>, serving
<strong>{html.escape(h.served)}</strong>. Formulas and gate thresholds: docs/probes.md.</p>
<p>{_markdown(summary_markdown(h))}</p>
<h2>Scores over versions</h2>
{svg_lines(score_frame(h), "version", "score", "suite", "Probe scores (%)", (0, 100))}
{svg_lines(drift_frame(h), "version", "value", "metric", "Drift from the base (KL nats/token, perplexity ratio)")}
<h2>Forgetting and backward transfer</h2>
{_table(SUMMARY_COLUMNS, summary_rows(h))}
<h2>Consolidation runs</h2>
{_table(RUN_COLUMNS, runs_rows(home))}
<h2>Answers that changed: {html.escape(old or "-")} → {html.escape(new or "-")}</h2>
{_table(DIFF_COLUMNS, diff, "diff")}
</body></html>
"""


def write_report(home: Path, config: Config, path: str) -> Path:
    """Check `path` (chatbot.privacy.safepath's rules for outputs, and an .html name), render and write the page
    atomically, readable by its owner only: it holds what users said. Returns the target."""
    target = output_file(path, home, "report")
    if target.suffix.lower() not in (".html", ".htm"):
        raise PathRefused(f"report: {path}: the report is an HTML page; name it FILE.html")
    write_text_atomic(target, render(home, config), perm=0o600)
    return target
