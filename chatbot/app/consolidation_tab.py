"""The Consolidation tab: "Consolidate now" (a background process; chat keeps working), live progress, the
adapter versions with promote and rollback. Admins only: the tab is hidden from other users and every handler
checks the role again, since hidden components can still be called through the API."""
from __future__ import annotations

import time
from collections.abc import Callable

import gradio as gr

from chatbot.core.registry import BASE, Registry, RegistryError, VersionStatus
from chatbot.learning.jobs import describe_progress, start_consolidation
from chatbot.memory.served import rollback, serve
from chatbot.runtime import Runtime

COLUMNS = ["version", "status", "served", "created", "new turns", "examples", "train loss", "reasons"]


def versions_table(registry: Registry) -> list[list]:
    current = registry.current()
    rows = []
    for v in reversed(registry.versions()):
        rows.append([v.name, v.status, "yes" if v.name == current else "",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
                     len(v.manifest.get("new_turn_ids", [])), sum(v.manifest.get("counts", {}).values()),
                     v.metrics.get("train_loss"), "; ".join(v.reasons)])
    return rows


NOT_ADMIN = "Only administrators can run consolidations, promote or roll back."


def consolidation_tab(rt: Runtime, is_admin: Callable[[gr.Request | None], bool], login: bool) -> None:
    registry = Registry(rt.paths.adapters)
    home = rt.paths.home

    def refresh(request: gr.Request):
        if not is_admin(request):
            return "", "", [], gr.update(choices=[])
        names = [BASE, *reversed(registry.names())]
        return (describe_progress(home), f"Serving **{registry.current()}**.", versions_table(registry),
                gr.update(choices=names))

    gr.Markdown("Consolidation fine-tunes a new LoRA adapter on the new learnable turns, mixed with replayed "
                "old samples and the base model's own answers to general prompts, probes it, and promotes it only "
                "if it passes the gate (scores and reasons: Dashboard tab).")
    # In login mode nothing is built into the page (every visitor can read it); admins get it on load/tick.
    with gr.Row():
        run_btn = gr.Button("Consolidate now", variant="primary", elem_id="consolidate-now")
        served_md = gr.Markdown("" if login else f"Serving **{registry.current()}**.", elem_id="served")
    progress_md = gr.Markdown("" if login else describe_progress(home), elem_id="progress")
    table = gr.Dataframe(headers=COLUMNS, value=[] if login else versions_table(registry), interactive=False,
                         elem_id="versions", label="Adapter versions (newest first)")
    with gr.Row():
        pick = gr.Dropdown(label="Version", choices=[] if login else [BASE, *reversed(registry.names())], value=None,
                           scale=2)
        promote_btn = gr.Button("Promote", scale=1)
        rollback_btn = gr.Button("Rollback", scale=1)
    action_md = gr.Markdown("")
    timer = gr.Timer(2.0)

    def on_run(request: gr.Request):
        if not is_admin(request):
            return NOT_ADMIN
        return start_consolidation(home, rt.config_file)

    def on_promote(name, request: gr.Request):
        if not is_admin(request):
            return NOT_ADMIN
        if not name:
            return "Pick a version first."
        try:
            warn = ""
            if name != BASE and registry.get(name).status == VersionStatus.REJECTED:
                warn = f" Warning: {name} was rejected ({'; '.join(registry.get(name).reasons)})."
            serve(rt.store, registry, name)
        except RegistryError as e:
            return str(e)
        return f"Now serving {name} (from the next reply on).{warn}"

    def on_rollback(request: gr.Request):
        if not is_admin(request):
            return NOT_ADMIN
        before = registry.current()
        return f"Rolled back from {before} to {rollback(rt.store, registry)}."

    outputs = [progress_md, served_md, table, pick]
    run_btn.click(on_run, None, action_md, api_name="consolidate_now").then(refresh, None, outputs)
    promote_btn.click(on_promote, pick, action_md, api_name="promote").then(refresh, None, outputs)
    rollback_btn.click(on_rollback, None, action_md, api_name="rollback").then(refresh, None, outputs)
    timer.tick(refresh, None, outputs)
