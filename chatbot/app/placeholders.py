"""Tabs for features still being built, clearly labelled as coming."""
import gradio as gr


def coming_tab(name: str, what: str) -> None:
    gr.Markdown(f"**{name} — coming soon.** Not built yet: {what}")
