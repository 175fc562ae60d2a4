"""Which turns and facts the served weights hold. A turn's `consolidated_in` (and a ledger fact's `learned_in`)
names the adapter version that learned it, and it must stay true whichever path changes the served version:
automatic promotion after a consolidation, `chatbot promote`, the app's Promote and Rollback buttons, and the
withdrawal of versions trained on forgotten turns. Every one of them goes through `serve()`, which switches CURRENT
and then recomputes the marks from the served version's lineage: the turns of the served version and of the
versions it continued from are learned (a rebuilt version lists every turn it holds in `held_turn_ids`, and every
fact in `fact_ids`); every other turn is new again, so what only a rolled-back (or never-promoted) version learned
is queued for the next consolidation instead of being lost.

Each user has a line of versions (chatbot.core.lines); a line's marks cover its owner's turns and facts only, so
serving one user's version never changes what another user's marks say."""
from __future__ import annotations

from chatbot.core.lines import AdapterLines
from chatbot.core.registry import BASE, Registry
from chatbot.memory.facts import FactStore
from chatbot.memory.store import Store


def _served_chain(registry: Registry) -> list[str]:
    """The served version and the versions whose data it holds, oldest first. A rebuilt version holds all of it
    itself (its manifest lists every turn and fact), so the chain starts at the newest rebuilt one: what an older
    version learned and the rebuild dropped (a superseded or forgotten fact) is not held."""
    served = registry.current()
    if served == BASE:
        return []
    chain = [*registry.lineage(served), served]
    rebuilt = [i for i, name in enumerate(chain) if registry.get(name).manifest.get("strategy") == "rebuild"]
    return chain[rebuilt[-1]:] if rebuilt else chain


def held_turns(registry: Registry) -> dict[int, str]:
    """turn id → the version in the served lineage that learned it (the oldest one, as it was learned first)."""
    held: dict[int, str] = {}
    for name in _served_chain(registry):
        manifest = registry.get(name).manifest
        for tid in manifest.get("held_turn_ids", manifest.get("new_turn_ids", [])):
            held.setdefault(int(tid), name)
    return held


def held_facts(registry: Registry) -> dict[int, str]:
    """ledger fact id → the version in the served lineage that holds it (the served one for a rebuilt version)."""
    held: dict[int, str] = {}
    for name in reversed(_served_chain(registry)):
        for fid in registry.get(name).manifest.get("fact_ids", []):
            held.setdefault(int(fid), name)
    return held


def serve(store: Store, registry: Registry, name: str) -> int:
    """Serve `name` (or BASE) and make the turns' and facts' marks match it; returns how many turn marks changed."""
    registry.promote(name)
    return _remark(store, registry)


def rollback(store: Store, registry: Registry) -> str:
    """Serve the previously promoted version again (turns only the left version learned become new again)."""
    target = registry.rollback()
    _remark(store, registry)
    return target


def remark_all(store: Store, lines: AdapterLines) -> int:
    """Make every user's marks match that user's served version (users without a line: nothing learned)."""
    owners = set(store.user_names())
    facts = FactStore(store.path)
    try:
        owners |= set(facts.owners())
    finally:
        facts.close()
    return sum(_remark(store, lines.line(u)) for u in sorted(owners | set(lines.users())))


def _remark(store: Store, registry: Registry) -> int:
    n = store.set_consolidated(held_turns(registry), user=registry.owner)
    facts = FactStore(store.path)
    try:
        facts.set_learned(held_facts(registry), owner=registry.owner)
    finally:
        facts.close()
    return n
