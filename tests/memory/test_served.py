"""Which turns the served weights hold stays true whichever path changes the served version: automatic
promotion, `chatbot promote`, rollback, and withdrawal (issue: manual promotion never recorded what was learned;
rollback never queued again what only the left version had learned)."""
from chatbot.cli import main
from chatbot.core.fsio import write_json_atomic
from chatbot.core.lines import AdapterLines
from chatbot.core.paths import Paths
from chatbot.core.registry import BASE, Registry
from chatbot.memory.served import held_turns, rollback, serve
from chatbot.memory.store import Store


def version(reg: Registry, new_turn_ids: list[int], continued_from: str = BASE) -> str:
    staging = reg.staging()
    write_json_atomic(staging / "manifest.json", {"new_turn_ids": new_turn_ids, "continued_from": continued_from})
    return reg.commit(staging).name


def home_with_turns(tmp_path, n: int = 4):
    paths = Paths(tmp_path / "home")
    store = Store(paths.db)
    cid = store.new_conversation("ann")
    ids = [store.add_turn(cid, "user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(n)]
    return paths, store, AdapterLines(paths.adapters, "me").line("ann"), ids


def marks(store: Store, ids: list[int]) -> list[str | None]:
    return [store.turn(i).consolidated_in for i in ids]


def test_cli_promote_records_what_the_served_weights_hold(tmp_path):
    paths, store, reg, ids = home_with_turns(tmp_path)
    v1 = version(reg, ids[:2])  # a candidate (auto_promote off): its turns are still new
    assert marks(store, ids) == [None] * 4 and len(store.learnable_turns(consolidated=False)) == 4
    assert main(["--home", str(paths.home), "promote", v1]) == 0
    assert marks(store, ids) == [v1, v1, None, None]  # promoted by hand: no longer trained again as new
    v2 = version(reg, ids[2:], continued_from=v1)
    assert main(["--home", str(paths.home), "promote", v2]) == 0
    assert marks(store, ids) == [v1, v1, v2, v2]


def test_rollback_queues_again_what_only_the_left_version_learned(tmp_path):
    paths, store, reg, ids = home_with_turns(tmp_path)
    v1 = version(reg, ids[:2])
    serve(store, reg, v1)
    v2 = version(reg, ids[2:], continued_from=v1)
    serve(store, reg, v2)
    assert main(["--home", str(paths.home), "rollback"]) == 0
    assert reg.current() == v1 and marks(store, ids) == [v1, v1, None, None]  # v2's turns are new again
    assert rollback(store, reg) == BASE and marks(store, ids) == [None] * 4
    serve(store, reg, v2)  # promoting v2 again: its lineage (v1, v2) is held again
    assert marks(store, ids) == [v1, v1, v2, v2] and held_turns(reg) == dict(zip(ids, [v1, v1, v2, v2]))


def test_serving_a_version_not_continued_from_the_served_one(tmp_path):
    paths, store, reg, ids = home_with_turns(tmp_path)
    v1 = version(reg, ids[:2])
    serve(store, reg, v1)
    v2 = version(reg, ids[2:])  # trained from the base: it does not hold v1's turns
    serve(store, reg, v2)
    assert marks(store, ids) == [None, None, v2, v2]
