"""The Gradio app: `build_app(runtime) -> gr.Blocks`, one file per tab; handlers call the logic modules."""
from __future__ import annotations

import logging
import os

import gradio as gr

from ..runtime import Runtime
from .chat_tab import chat_tab
from .consolidation_tab import consolidation_tab
from .dashboard_tab import dashboard_tab

log = logging.getLogger(__name__)


def header(rt: Runtime) -> str:
    m = rt.loaded
    mode = f"single-user mode (user **{rt.config.serve.default_user}**)"
    return (f"### Continual chatbot\nModel **{m.name}** ({m.quantization}) · adapter "
            f"**{rt.chat.generator.adapter}** · {mode}")


def build_app(rt: Runtime) -> gr.Blocks:
    with gr.Blocks(title="Continual chatbot") as app:
        head = gr.Markdown(header(rt), elem_id="header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat_tab(rt)
            with gr.Tab("Consolidation", id="consolidation"):
                consolidation_tab(rt)
            with gr.Tab("Dashboard", id="dashboard"):
                dashboard_tab(rt)
        # The served version changes when a consolidation promotes one; the chat switches before its next reply.
        gr.Timer(3.0).tick(lambda: header(rt), None, head)
    return app


def launch(app: gr.Blocks, host: str, port: int, block: bool = True) -> None:
    """Serve on host:port; never a public share link, analytics off."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the app is reachable from other machines", host)
    app.queue(default_concurrency_limit=16)
    log.info("serving on http://%s:%d", host, port)
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=True,
               footer_links=[])
