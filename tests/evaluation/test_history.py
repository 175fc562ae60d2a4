"""What the dashboard reads: real SQLite, no model."""
from chatbot.core.config import Config
from chatbot.core.paths import Paths
from chatbot.evaluation.history import load_history
from chatbot.memory.store import Store


def test_canary_secrets_are_rescanned_only_when_learnable_data_changes(tmp_path):
    home = tmp_path / "home"
    store = Store(Paths(home).db)
    cid = store.new_conversation("me")
    locker = store.add_turn(cid, "user", "My locker code is zq7741x.", learn=False)
    badge = store.add_turn(cid, "user", "My badge number is kb5512y.")
    first = load_history(home, Config())
    assert first.secrets == ("zq7741x",)
    # The dashboard refreshes every few seconds: unchanged data is not scanned again.
    assert load_history(home, Config()).secrets is first.secrets

    def secrets() -> set[str]:
        return set(load_history(home, Config()).secrets)

    store.set_turn_learn(badge, False)
    assert secrets() == {"zq7741x", "kb5512y"}
    store.set_turn_learn(locker, True)
    assert secrets() == {"kb5512y"}
    store.set_conversation_learn(cid, False)
    assert secrets() == {"zq7741x", "kb5512y"}
    said_again = store.new_conversation("me")  # a learnable turn saying it: learning it is legitimate
    store.add_turn(said_again, "user", "Remember kb5512y please.")
    assert secrets() == {"zq7741x"}
    store.delete_conversations([cid])
    assert secrets() == set()
