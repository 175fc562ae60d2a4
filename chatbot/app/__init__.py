"""The Gradio app: `build_app(runtime, accounts) -> gr.Blocks`, one file per tab; handlers call the logic modules.

Who is acting comes from the request: the logged-in name when accounts exist (Gradio's login, checked by
`Accounts.authenticate`), else the configured single user, who is also the admin. Admin-only tabs are hidden
from other users and their handlers re-check the role."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable

import gradio as gr

from chatbot.app.chat_tab import chat_tab
from chatbot.app.consolidation_tab import consolidation_tab
from chatbot.app.dashboard_tab import dashboard_tab
from chatbot.app.knowledge_tab import knowledge_tab
from chatbot.learning.ledger import Knowledge
from chatbot.privacy.accounts import AccountError, Accounts, Identity, users_file
from chatbot.runtime import Runtime

log = logging.getLogger(__name__)


def header(rt: Runtime, ident: Identity) -> str:
    m = rt.loaded
    if ident.login:
        mode = f"signed in as **{ident.user}**{' (admin)' if ident.admin else ''} · [log out](/logout)"
    else:
        mode = (f"single-user mode (user **{ident.user}**, no login; serving 127.0.0.1 only — "
                "`chatbot user add NAME --admin` turns on accounts)")
    return (f"### Continual chatbot\nModel **{m.name}** ({rt.chat.generator.label}) · adapter "
            f"**{rt.chat.served_adapter(ident.user)[0]}** · {mode}")


def identity_resolver(accounts: Accounts, default_user: str,
                      login: bool) -> Callable[[gr.Request | None], Identity]:
    """Who is acting, per request, in the mode fixed when the app started (`login`); fails closed."""
    def who(request: gr.Request | None) -> Identity:
        try:
            return accounts.identity(getattr(request, "username", None), default_user, login)
        except AccountError as e:
            raise gr.Error(f"Refused: {e}.") from None
    return who


def build_app(rt: Runtime, accounts: Accounts | None = None) -> gr.Blocks:
    accounts = accounts or Accounts(users_file(rt.paths.home, rt.config.serve.users_file))
    login = accounts.enabled  # the mode is fixed here, for the app's lifetime
    who = identity_resolver(accounts, rt.config.serve.default_user, login)
    knowledge = Knowledge(rt.paths.db, rt.config, rt.loaded)
    with gr.Blocks(title="Continual chatbot") as app:
        head = gr.Markdown("### Continual chatbot" if login else header(rt, who(None)), elem_id="header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                load_chat, chat_outputs = chat_tab(rt, lambda r: who(r).user, login,
                                                   after_reply=knowledge.refresh_soon)
            with gr.Tab("What I know about you", id="facts") as facts_tab:
                load_facts, facts_outputs = knowledge_tab(knowledge, lambda r: who(r).user)
            # Admin tabs start hidden in login mode and are shown to admins on page load.
            with gr.Tab("Consolidation", id="consolidation", visible=not login) as consolidation:
                consolidation_tab(rt, lambda r: who(r).admin, login)
            with gr.Tab("Dashboard", id="dashboard", visible=not login) as dashboard:
                dashboard_tab(rt, lambda r: who(r).admin, login)

        def on_load(request: gr.Request):
            ident = who(request)
            admin = gr.update(visible=ident.admin)
            return (header(rt, ident), admin, admin, *_as_tuple(load_chat(request)),
                    *_as_tuple(load_facts(request)))

        def on_tick(request: gr.Request):
            return header(rt, who(request))

        app.load(on_load, None, [head, consolidation, dashboard, *chat_outputs, *facts_outputs])
        facts_tab.select(load_facts, None, facts_outputs)
        # The served version changes when a consolidation promotes one; the chat switches before its next reply.
        gr.Timer(3.0).tick(on_tick, None, head)
    return app


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def launch(app: gr.Blocks, host: str, port: int, block: bool = True,
           auth: Callable[[str, str], bool] | None = None) -> None:
    """Serve on host:port; never a public share link, analytics off; `auth` turns on Gradio's login page."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the app is reachable from other machines", host)
    app.queue(default_concurrency_limit=16)
    log.info("serving on http://%s:%d", host, port)
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=True,
               footer_links=[], auth=auth,
               auth_message="Continual chatbot: log in with your account." if auth else None)
