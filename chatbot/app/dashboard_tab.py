"""The Dashboard tab, for the user chosen in its "Versions of" menu (or all users): probe scores per suite over
versions (rejected ones marked), KL and perplexity drift,
forgetting and backward transfer, the consolidation runs, and old-vs-new answers per probe for two versions.
Refreshes itself while a consolidation runs (and once when it ends). Admins only: in login mode the page is
built empty and every handler checks the role (hidden components can still be called through the API)."""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from chatbot.core.lines import AdapterLines
from chatbot.evaluation.history import (
    ALL,
    DIFF_COLUMNS,
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    diff_rows,
    drift_frame,
    fingerprint,
    load_history,
    runs_rows,
    score_frame,
    summary_markdown,
    summary_rows,
)
from chatbot.evaluation.runner import model_key
from chatbot.runtime import Runtime


def dashboard_tab(rt: Runtime, is_admin: Callable[[gr.Request | None], bool], login: bool) -> None:
    home, config = rt.paths.home, rt.config
    model = model_key(rt.chat.generator, config) if rt.chat else None

    def users() -> list[str]:
        return [ALL, *sorted(set(AdapterLines(rt.paths.adapters).users()) | set(rt.store.user_names()))]

    def history(user: str | None = ALL):
        return load_history(home, config, model, user)

    def refresh(only: bool, user: str | None, request: gr.Request):
        if login and not is_admin(request):
            return (None, None, "", [], [], gr.update(choices=[]), gr.update(choices=[]), [], gr.update(choices=[]))
        h = history(user)
        names = h.probed_versions()
        old = names[-2] if len(names) >= 2 else None
        new = names[-1] if names else None
        return (score_frame(h), drift_frame(h), summary_markdown(h), summary_rows(h), runs_rows(home, user),
                gr.update(choices=names, value=old), gr.update(choices=names, value=new),
                diff_rows(h, old, new, only), gr.update(choices=users(), value=user or ALL))

    h = None if login else history()  # login mode: filled for admins by the first tick
    who = gr.Dropdown(label="Versions of", choices=[] if login else users(), value=None if login else ALL,
                      elem_id="dashboard-user", info="one user's adapter line, or all users'")
    gr.Markdown("Regression probes of every adapter version (docs/probes.md): general QA and instruction "
                "following must not fall below the base, each version's own facts should be learned, and text "
                "marked \"don't learn\" must never come out. Run `chatbot probe` to probe the served version.")
    with gr.Row():
        scores = gr.LinePlot(score_frame(h) if h else None, x="version", y="score", color="suite",
                             title="Probe scores (%)", y_lim=[0, 100], sort="x", elem_id="scores-plot", height=320)
        drift = gr.LinePlot(drift_frame(h) if h else None, x="version", y="value", color="metric",
                            title="Drift from the base (KL, perplexity ratio)", sort="x", elem_id="drift-plot",
                            height=320)
    summary_md = gr.Markdown(summary_markdown(h) if h else "", elem_id="forgetting")
    summary = gr.Dataframe(headers=SUMMARY_COLUMNS, value=summary_rows(h) if h else [], interactive=False,
                           label="Forgetting and backward transfer per version (newest first)", elem_id="summary")
    runs = gr.Dataframe(headers=RUN_COLUMNS, value=[] if login else runs_rows(home), interactive=False,
                        label="Consolidation runs (newest first)", elem_id="runs")
    names = h.probed_versions() if h else []
    with gr.Row():
        old = gr.Dropdown(label="Old version", choices=names, value=names[-2] if len(names) >= 2 else None)
        new = gr.Dropdown(label="New version", choices=names, value=names[-1] if names else None)
        changed = gr.Checkbox(value=True, label="Only probes whose answer changed")
    diff = gr.Dataframe(headers=DIFF_COLUMNS, value=diff_rows(h, old.value, new.value) if h else [], interactive=False,
                        wrap=True, column_widths=["11%", "9%", "22%", "25%", "25%", "4%", "4%"],
                        label="Answers per probe (changed scores first)", elem_id="probe-diff")
    refresh_btn = gr.Button("Refresh", size="sm")
    seen = gr.State(None if login else fingerprint(home))

    def on_diff(a, b, only, user, request: gr.Request):
        if login and not is_admin(request):
            return []
        return diff_rows(history(user), a, b, only)

    def tick(last, only, user, request: gr.Request):
        if login and not is_admin(request):
            return (last, *[gr.skip()] * 9)
        now = fingerprint(home)
        if now == last:
            return (last, *[gr.skip()] * 9)
        return (now, *refresh(only, user, request))

    outputs = [scores, drift, summary_md, summary, runs, old, new, diff, who]
    for control in (old, new, changed):
        control.change(on_diff, [old, new, changed, who], diff)
    refresh_btn.click(refresh, [changed, who], outputs)
    who.input(refresh, [changed, who], outputs)
    gr.Timer(3.0).tick(tick, [seen, changed, who], [seen, *outputs])
