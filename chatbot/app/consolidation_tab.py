"""The Consolidation tab: "Consolidate now" (a background process; chat keeps working: every user with new data,
one after another), live progress, and one user's adapter line at a time (chosen in the "User" menu) with promote
and rollback. Admins only: the tab is hidden from other users and every handler
checks the role again, since hidden components can still be called through the API."""
from __future__ import annotations

import time
from collections.abc import Callable

import gradio as gr

from chatbot.core.lines import AdapterLines
from chatbot.core.registry import BASE, Registry, RegistryError, VersionStatus
from chatbot.learning.jobs import describe_progress, start_consolidation
from chatbot.memory.served import rollback, serve
from chatbot.runtime import Runtime

COLUMNS = ["version", "user", "status", "served", "created", "new turns", "facts", "examples", "train loss", "reasons"]


def versions_table(registry: Registry) -> list[list]:
    current = registry.current()
    rows = []
    for v in reversed(registry.versions()):
        rows.append([v.name, registry.owner, v.status, "yes" if v.name == current else "",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at)),
                     len(v.manifest.get("new_turn_ids", [])), len(v.manifest.get("fact_ids", [])),
                     sum(v.manifest.get("counts", {}).values()),
                     v.metrics.get("train_loss"), "; ".join(v.reasons)])
    return rows


NOT_ADMIN = "Only administrators can run consolidations, promote or roll back."


def consolidation_tab(rt: Runtime, is_admin: Callable[[gr.Request | None], bool], login: bool) -> None:
    lines = AdapterLines(rt.paths.adapters, rt.config.serve.default_user)
    home = rt.paths.home

    def owners() -> list[str]:
        names = set(lines.users()) | set(rt.store.user_names())
        return sorted(names | ({rt.config.serve.default_user} if not login else set()))

    def view(user: str | None):
        """(served line, versions table, version choices) of `user`'s line."""
        registry = lines.line(user or None)
        return (f"Serving **{registry.current()}** to **{registry.owner}**.", versions_table(registry),
                gr.update(choices=[BASE, *reversed(registry.names())]))

    def refresh(user, request: gr.Request):
        if not is_admin(request):
            return "", "", [], gr.update(choices=[]), gr.update(choices=[])
        names = owners()
        user = user if user in names else (names[0] if names else None)
        return (describe_progress(home), *view(user), gr.update(choices=names, value=user))

    gr.Markdown("Consolidation trains each user's new facts into that user's own LoRA adapter (with the base "
                "model's own answers to general prompts, and any facts an admin shared), probes it, and promotes it "
                "only if it passes the gate (scores and reasons: Dashboard tab). Pick a user to see and change the "
                "adapter they are served.")
    start = None if login else lines.line(None)
    # In login mode nothing is built into the page (every visitor can read it); admins get it on load/tick.
    with gr.Row():
        run_btn = gr.Button("Consolidate now", variant="primary", elem_id="consolidate-now")
        who = gr.Dropdown(label="User", choices=[] if login else owners(), value=None if login else start.owner,
                          elem_id="line-user", scale=1)
        served_md = gr.Markdown("" if login else f"Serving **{start.current()}** to **{start.owner}**.",
                                elem_id="served")
    progress_md = gr.Markdown("" if login else describe_progress(home), elem_id="progress")
    table = gr.Dataframe(headers=COLUMNS, value=[] if login else versions_table(start), interactive=False,
                         elem_id="versions", label="Adapter versions of this user (newest first)")
    with gr.Row():
        pick = gr.Dropdown(label="Version", choices=[] if login else [BASE, *reversed(start.names())], value=None,
                           scale=2)
        promote_btn = gr.Button("Promote", scale=1)
        rollback_btn = gr.Button("Rollback", scale=1)
    action_md = gr.Markdown("")
    timer = gr.Timer(2.0)

    def on_run(request: gr.Request):
        if not is_admin(request):
            return NOT_ADMIN
        return start_consolidation(home, rt.config_file)

    def on_promote(name, user, request: gr.Request):
        if not is_admin(request):
            return NOT_ADMIN
        if not name:
            return "Pick a version first."
        try:
            registry = lines.line(user or None) if name == BASE else lines.find(name)
            warn = ""
            if name != BASE and registry.get(name).status == VersionStatus.REJECTED:
                warn = f" Warning: {name} was rejected ({'; '.join(registry.get(name).reasons)})."
            serve(rt.store, registry, name)
        except RegistryError as e:
            return str(e)
        return f"Now serving {name} to {registry.owner} (from their next reply on).{warn}"

    def on_rollback(user, request: gr.Request):
        if not is_admin(request):
            return NOT_ADMIN
        registry = lines.line(user or None)
        before = registry.current()
        return f"{registry.owner}: rolled back from {before} to {rollback(rt.store, registry)}."

    outputs = [progress_md, served_md, table, pick, who]
    run_btn.click(on_run, None, action_md, api_name="consolidate_now").then(refresh, who, outputs)
    promote_btn.click(on_promote, [pick, who], action_md, api_name="promote").then(refresh, who, outputs)
    rollback_btn.click(on_rollback, who, action_md, api_name="rollback").then(refresh, who, outputs)
    who.input(refresh, who, outputs)
    timer.tick(refresh, who, outputs)
