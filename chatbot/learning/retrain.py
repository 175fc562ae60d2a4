"""`chatbot forget --retrain`: withdraw every adapter version trained on forgotten turns (chatbot.privacy.forget
does that under the consolidation lock), then consolidate the remaining turns they had learned into a fresh
version from the clean one, through the gate the caller hands in."""
from __future__ import annotations

from pathlib import Path

from chatbot.core.config import Config
from chatbot.core.paths import Paths
from chatbot.learning.consolidate import Gate, RunResult, consolidate
from chatbot.memory.store import Store
from chatbot.privacy.forget import Withdrawal, withdraw_tainted


def retrain(home: Path, config: Config, *, gate: Gate | None, show_progress: bool = True,
            **consolidate_kwargs) -> tuple[Withdrawal, RunResult | None]:
    """Withdraw tainted versions, then consolidate the remaining data from the clean version."""
    store = Store(Paths(home).db)
    try:
        withdrawal = withdraw_tainted(Path(home), store, config.serve.default_user)
    finally:
        store.close()
    if not withdrawal.withdrawn and not withdrawal.relearn_turns:
        return withdrawal, None
    return withdrawal, consolidate(Path(home), config, gate=gate, show_progress=show_progress, **consolidate_kwargs)
