"""The "What I know about you" tab: each fact the bot read from what this user said (chatbot.memory.facts), its
status (pending: not in the weights yet; learned in vN), with Correct and Forget. Every handler acts as the
request's user, and a user can only see and change their own facts (Knowledge checks the owner)."""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from chatbot.learning.ledger import CorrectionError, Knowledge

COLUMNS = ["id", "what I know", "status", "you said"]


def _status(f) -> str:
    return f"learned in {f.learned_in}" if f.status == "learned" else f.status


def knowledge_tab(knowledge: Knowledge, user_of: Callable[[gr.Request | None], str]):
    """Lay out the tab; returns (load function, its outputs) for the app's page-load event (the page itself
    carries nobody's facts)."""

    def rows(user: str) -> list[list]:
        knowledge.refresh()  # the rules read the newest turns in milliseconds; a model extractor reads them later
        return [[f.id, f.answer, _status(f), f.statement] for f in knowledge.listed(user)
                if f.status in ("pending", "learned")]

    gr.Markdown("What the bot has read from your messages and will learn (or has learned) into its weights at the "
                "next consolidation. Correct a fact by giving its id and the right value or sentence; forget "
                "removes it for good (the weights drop it at the next consolidation).")
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, label="What I know about you",
                         elem_id="facts-table")
    with gr.Row():
        fact_id = gr.Number(label="fact id", precision=0, elem_id="fact-id", scale=1)
        text = gr.Textbox(label="the right value or sentence", elem_id="fact-text", scale=3)
    with gr.Row():
        correct_btn = gr.Button("Correct", elem_id="fact-correct")
        forget_btn = gr.Button("Forget", variant="stop", elem_id="fact-forget")
        refresh_btn = gr.Button("Refresh", elem_id="fact-refresh")
    notice = gr.Markdown("", elem_id="fact-notice")

    def on_load(request: gr.Request):
        return rows(user_of(request))

    def on_correct(fid, value: str, request: gr.Request):
        user = user_of(request)
        if fid is None:
            return gr.skip(), gr.skip(), "Give the id of the fact to correct."
        try:
            fact = knowledge.correct(int(fid), value or "", user)
        except CorrectionError as e:
            return gr.skip(), gr.skip(), f"Not corrected: {e}."
        return rows(user), "", f"Fact {int(fid)} corrected: {fact.answer} (learned at the next consolidation)."

    def on_forget(fid, request: gr.Request):
        user = user_of(request)
        if fid is None:
            return gr.skip(), "Give the id of the fact to forget."
        try:
            knowledge.forget(int(fid), user)
        except CorrectionError as e:
            return gr.skip(), f"Not forgotten: {e}."
        return rows(user), (f"Fact {int(fid)} forgotten: erased here, dropped from the weights at the next "
                            "consolidation.")

    correct_btn.click(on_correct, [fact_id, text], [table, text, notice])
    forget_btn.click(on_forget, [fact_id], [table, notice])
    refresh_btn.click(on_load, None, [table])
    return on_load, [table]
