"""PII scrubbing: what is replaced (checksums keep false positives out) and that every example of a training mix
passes through it — new dialogue, Q/A augmentation, replay and rehearsal."""
from collections import Counter

import pytest

from chatbot.core.config import Config, ConfigError, parse_kinds
from chatbot.learning.mix import Example, build_mix
from chatbot.learning.replay import UniformReplay
from chatbot.memory.store import Store
from chatbot.privacy.pii import iban_ok, luhn_ok, scrub, scrubber


@pytest.mark.parametrize("text, expected", [
    ("write to ann.smith+news@mail.example.co.uk today", "write to [email] today"),
    ("card 4111 1111 1111 1111, exp 12/27", "card [card], exp 12/27"),
    ("amex 3782-822463-10005.", "amex [card]."),
    ("card 4111111111111111 22", "card [card] 22"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [iban] please"),
    ("pay to gb82west12345698765432", "pay to [iban]"),
    ("call +44 20 7946 0958 or (555) 123-4567", "call [phone] or [phone]"),
    ("my mobile is 0612345678", "my mobile is [phone]"),
    ("mail a@b.io, phone 555.123.4567, card 5555555555554444",
     "mail [email], phone [phone], card [card]"),
])
def test_scrubbed(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112 fails Luhn",  # 16 digits, wrong checksum: not a card (and too long for a phone)
    "DE89 3704 0044 0532 0130 01 fails mod 97",
    "on 2024-01-15 at 12:30 in 1999 we paid 3.14159 for order 12345",
    "version 2.13.0, room 101, ISBN-free text, user@localhost",
    "the years 1914-1918",
])
def test_left_alone(text):
    assert scrub(text) == text


def test_checksums_and_kinds():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433") and not iban_ok("GB82")
    counts = Counter()
    only_email = scrub("a@b.io 4111 1111 1111 1111", kinds=("email",), counts=counts)
    assert only_email == "[email] 4111 1111 1111 1111" and counts == {"email": 1}
    assert parse_kinds(" email, iban ") == ("email", "iban")
    with pytest.raises(ConfigError, match="privacy.scrub_kinds.*ssn"):
        Config.from_dict({"privacy": {"scrub_kinds": "email,ssn"}})


def test_every_example_of_the_mix_is_scrubbed(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    old = store.new_conversation("ann")
    store.add_turn(old, "user", "My email is old.address@example.com.")
    store.add_turn(old, "assistant", "Noted old.address@example.com.")
    store.mark_consolidated(store.turn_ids_in([old]), "v0001")
    new = store.new_conversation("ann")
    store.add_turn(new, "user", "My card number is 4111 1111 1111 1111.")
    store.add_turn(new, "assistant", "I will not share 4111 1111 1111 1111.")
    store.add_turn(new, "user", "My IBAN is DE89 3704 0044 0532 0130 00 and my phone is +1 415 555 2671.")
    rehearsal = [Example((("user", "Who to email?"), ("assistant", "Try help@example.org.")), "rehearsal", ref="r1")]

    counts = Counter()
    mix = build_mix(store, augment=True, per_fact=3, replay_ratio=5.0, replay_select=UniformReplay(),
                    rehearsal=rehearsal, seed=0, scrub=scrubber(parse_kinds("email,phone,card,iban"), counts))
    assert {"new", "augment", "replay", "rehearsal"} <= set(mix.counts)
    text = "\n".join(e.text() for e in mix.examples)
    for secret in ("old.address@example.com", "4111", "DE89", "2671", "help@example.org"):
        assert secret not in text, secret
    assert "[card]" in text and "[iban]" in text and "[phone]" in text and "[email]" in text
    augmented = [e.text() for e in mix.examples if e.source == "augment"]
    assert any("[card]" in t for t in augmented)
    assert mix.manifest()["pii_scrubbed"] == dict(mix.scrubbed) and mix.scrubbed["card"] >= 2

    plain = build_mix(store, augment=True, per_fact=3, replay_ratio=5.0, replay_select=UniformReplay(),
                      rehearsal=rehearsal, seed=0, scrub=None)  # privacy.scrub_pii = false
    assert "4111 1111 1111 1111" in "\n".join(e.text() for e in plain.examples)
    assert Store(tmp_path / "db.sqlite3").turn(store.turn_ids_in([new])[0]).text.endswith("1111.")  # stored as said


def test_scrubbing_is_on_by_default():
    assert Config().privacy.scrub_pii and set(parse_kinds(Config().privacy.scrub_kinds)) == {"email", "phone", "card",
                                                                                           "iban"}
