"""Which turns the served weights hold. A turn's `consolidated_in` names the adapter version that learned it,
and it must stay true whichever path changes the served version: automatic promotion after a consolidation,
`chatbot promote`, the app's Promote and Rollback buttons, and the withdrawal of versions trained on forgotten
turns. Every one of them goes through `serve()`, which switches CURRENT and then recomputes the marks from the
served version's lineage: the turns of the served version and of the versions it continued from are learned;
every other turn is new again, so what only a rolled-back (or never-promoted) version learned is queued for the
next consolidation instead of being lost."""
from __future__ import annotations

from chatbot.core.registry import BASE, Registry
from chatbot.memory.store import Store


def held_turns(registry: Registry) -> dict[int, str]:
    """turn id → the version in the served lineage that learned it (the oldest one, as it was learned first)."""
    served = registry.current()
    if served == BASE:
        return {}
    held: dict[int, str] = {}
    for name in [*registry.lineage(served), served]:
        for tid in registry.get(name).manifest.get("new_turn_ids", []):
            held.setdefault(int(tid), name)
    return held


def serve(store: Store, registry: Registry, name: str) -> int:
    """Serve `name` (or BASE) and make the turns' marks match it; returns how many marks changed."""
    registry.promote(name)
    return store.set_consolidated(held_turns(registry))


def rollback(store: Store, registry: Registry) -> str:
    """Serve the previously promoted version again (turns only the left version learned become new again)."""
    target = registry.rollback()
    store.set_consolidated(held_turns(registry))
    return target
