"""Filling the knowledge ledger (chatbot.memory.facts) from the turns, and deciding when a new fact replaces an
old one.

`sync` reads every learnable user turn no extractor has read yet, extracts its facts (chatbot.learning.extract),
and records them with the earlier facts of the same owner they supersede. It runs off the chat path — the app
calls it in a background thread after a reply, consolidation and `chatbot facts` call it before they read the
ledger — and it is crash-safe: a turn and its facts are recorded in one transaction, so a killed process leaves
the turn unread and the next sync reads it.

Supersession ("the same fact, said again"), per owner, against the facts that are still current:
  1. a correction names the value it replaces ("I'm a sonographer, not a radiographer", "... instead of
     Leslieville", "Juniper is the neighbours' guinea pig", "quit the Crooked Spoon", and who is gone: "Uldis has
     retired"): an earlier fact whose key shares a word with the replaced value is superseded;
  2. otherwise the same slot: the new fact and an earlier one share a specific question form ("What is my dog's
     name?"). Generic forms ("What did I tell you about myself?", "What am I?") do not make a slot;
  3. otherwise, in a message with a correction cue ("I was wrong about my staff ID — it's HT-4401"), the earlier
     fact with the most similar key, if similar enough;
  4. a correction of one current fact that the extractor cannot read as a fact of its own ("it was eight years
     in the navy, not six"; chatbot.learning.corrections): the old fact with its value swapped supersedes it, in
     place of what the extractor made of the same value — unless the extractor's key is what the message says
     before ", not X" (its reading is plain there).
Measured on the development set (docs/extraction.md)."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from difflib import SequenceMatcher

from chatbot.learning.augment import names_in
from chatbot.learning.augment.text import _CORRECTING, _norm
from chatbot.learning.corrections import corrected, gone_values, replaced_values, stated_as_new
from chatbot.learning.corrections import words as _words
from chatbot.learning.extract import Extractor, make_extractor
from chatbot.memory.facts import FactStore, LedgerFact, NewFact

log = logging.getLogger(__name__)

_SIMILAR = 0.6  # difflib ratio of two keys for a cue-only correction ("HT-4410" → "HT-4401": 0.86)
# question forms shared by unrelated facts: never a slot. "Where am I based?" is asked of where someone lives and of
# where each of their jobs is (augment.rules._placed): a job in the Atacama is no correction of a home in Bergen.
_GENERIC = re.compile(r"\babout (?:me|myself|us|ourselves)\b|^what did i tell you about\b|^what do you know about\b|"
                      r"^(?:do you remember )?what (?:am|are) (?:i|we)\??$|^who am i\??$|^what do (?:i|we) do\??$|"
                      r"^where (?:am|are|is|was|were) [\w' -]+ based\??$", re.I)


def _slot(questions: Iterable[str]) -> set[str]:
    return {q.strip().lower().rstrip("?").strip() for q in questions if not _GENERIC.search(q.strip())}


def superseded(new: NewFact, message: str, earlier: list[LedgerFact]) -> list[int]:
    """Ids of the owner's current facts that `new` (said in `message`) replaces."""
    current = [f for f in earlier if f.current and f.key]
    new_key = _words(new.key)
    out: list[int] = []
    for value in replaced_values(message) + gone_values(message):
        gone = _words(value) - new_key
        out += [f.id for f in current if gone & _words(f.key) and not _words(f.key) <= new_key]
    if out:
        return sorted(set(out))
    slot = _slot(new.questions)
    out = [f.id for f in current if slot & _slot(f.questions) and f.key.lower() != new.key.lower()]
    if out or not _CORRECTING.search(_norm(message)):
        return out
    # "I was wrong about my staff ID — it's HT-4401": a correction that names no old value replaces the most
    # similar one ("HT-4410"), if one is similar enough
    near = [(SequenceMatcher(None, f.key.lower(), new.key.lower()).ratio(), f.id) for f in current
            if f.key.lower() != new.key.lower()]
    best = max(near, default=(0.0, 0))
    return [best[1]] if best[0] >= _SIMILAR else []


def same_as_current(new: NewFact, earlier: list[LedgerFact]) -> bool:
    """The owner said this exact fact before (same key, same slot): recording it again would only duplicate it."""
    return any(f.current and f.key.lower() == new.key.lower() and _slot(new.questions) & _slot(f.questions)
               for f in earlier)


def read_turn(facts: FactStore, extractor: Extractor, user: str, turn_id: int | None, text: str) -> list[int]:
    """Extract one text's facts and record them with what they supersede (turn_id None: a typed-in correction)."""
    earlier = facts.facts(user)
    found: list[tuple[NewFact, list[int]]] = []
    # "Zofia switched to the cello", a week after "my daughter Zofia plays the violin": who Zofia is
    for fact in extractor.extract(text, names_in(f for f in earlier if f.current)):
        new = NewFact(fact.statement, fact.answer, fact.key, tuple(fact.questions))
        if same_as_current(new, earlier):
            continue
        found.append((new, superseded(new, text, earlier)))
    found = _one_successor(found, earlier)
    fix = corrected(text, [f for f in earlier if f.current])
    if fix:  # a correction of one fact: the old fact with its value swapped, instead of what the extractor made
        # of the same value ("it was eight years in the navy, not six"; "we open new one for yaba")
        new, old_id = fix
        rivals = [(f, r) for f, r in found if old_id in r or _words(f.key) & _words(new.key)]
        if not any(stated_as_new(text, f.key) for f, _ in rivals):  # the extractor's reading, where it is plain
            found = [x for x in found if x not in rivals] + [(new, [old_id])]
    return facts.record(user, turn_id, found, extractor.name)


def _one_successor(found: list[tuple[NewFact, list[int]]], earlier: list[LedgerFact]
                   ) -> list[tuple[NewFact, list[int]]]:
    """An old fact that several facts of one message replace ("I'm actually 31, not 29, i just like saying 29")
    is replaced by the one most like it: asked the same, else a number for a number, else one asked in specific
    words, else the first said. Each of them would supersede it alike; this decides which the ledger shows as its
    successor."""
    old = {f.id: f for f in earlier}

    def likeness(new: NewFact, old_id: int) -> tuple[bool, bool, bool]:
        was = old[old_id]
        numeric = bool(re.search(r"\d", new.key)) == bool(re.search(r"\d", was.key))
        return bool(_slot(new.questions) & _slot(was.questions)), numeric, bool(_slot(new.questions))

    best: dict[int, int] = {}
    for i, (new, replaces) in enumerate(found):
        for old_id in replaces:
            if old_id in old and (old_id not in best
                                  or likeness(new, old_id) > likeness(found[best[old_id]][0], old_id)):
                best[old_id] = i
    return [(new, [r for r in replaces if best.get(r, i) == i]) for i, (new, replaces) in enumerate(found)]


def sync(facts: FactStore, extractor: Extractor, limit: int | None = None) -> int:
    """Read the turns no extractor has read yet (at most `limit`); returns how many facts were added."""
    added = 0
    for n, (user, turn_id, text) in enumerate(facts.unread_turns()):
        if limit is not None and n >= limit:
            break
        added += len(read_turn(facts, extractor, user, turn_id, text))
    if added:
        log.info("ledger: %d new fact(s)", added)
    return added


class CorrectionError(ValueError):
    """A correction that cannot be applied, with what to do instead."""


def correct(facts: FactStore, extractor: Extractor, fact_id: int, text: str) -> LedgerFact:
    """`chatbot facts correct ID TEXT`: TEXT is either a statement ("My dog is called Max") or just the right
    value ("Max"); either way the new fact supersedes fact ID and is asked with its questions."""
    old = facts.get(fact_id)
    text = text.strip()
    if old is None:
        raise CorrectionError(f"no fact {fact_id}: `chatbot facts` lists the ids")
    if old.forgotten:
        raise CorrectionError(f"fact {fact_id} was forgotten; state the fact again in a chat instead")
    if not text:
        raise CorrectionError("the correction is empty: give the right value or a statement")
    stated = extractor.extract(text)
    if stated:
        f = stated[0]
        new = NewFact(f.statement, f.answer, f.key, tuple(dict.fromkeys((*f.questions, *old.questions))))
    else:  # just the value: the old answer with the old key replaced
        answer = re.sub(re.escape(old.key), text.replace("\\", r"\\"), old.answer, flags=re.I) \
            if old.key.lower() in old.answer.lower() else f"{old.answer.rstrip('.')} — {text}."
        new = NewFact(text, answer, text, old.questions)
    [new_id] = facts.record(old.owner, None, [(new, [old.id])], "user")
    return facts.get(new_id)


def ledger_extractor(config, loaded=None) -> Extractor | None:
    """The extractor for reading turns outside a consolidation (the app's background reader, `chatbot facts`):
    the rules where they are what train.extractor resolves to. A model extractor is left to the consolidation,
    where nothing else is using the model (None: the next consolidation reads those turns)."""
    kind = config.train.extractor
    if kind == "rules":
        return make_extractor("rules")
    if kind == "model" or config.train.extractor_model:
        return None
    if loaded is None:  # auto, no model at hand: the embedded model is known to be below the threshold
        return make_extractor("rules") if config.model.source == "embedded" else None
    extractor = make_extractor("auto", loaded)
    return extractor if extractor.name == "rules" else None


class Knowledge:
    """The ledger as the CLI and the app use it: list a user's facts, correct one, forget one, and read new turns
    in a background thread (off the chat path: `refresh_soon()` after each reply). Users may only touch their own
    facts; `user=None` is the operator."""

    def __init__(self, db_path, config, loaded=None):
        self.facts = FactStore(db_path)
        self.extractor = ledger_extractor(config, loaded)
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def refresh(self) -> int:
        """Read the unread turns now (no-op when no extractor is at hand)."""
        if self.extractor is None:
            return 0
        with self._lock:
            return sync(self.facts, self.extractor)

    def unread(self) -> int:
        return len(self.facts.unread_turns())

    def refresh_soon(self) -> None:
        """Wake the background reader (started on first use); returns at once."""
        if self.extractor is None:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ledger", daemon=True)
            self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.refresh()
            except Exception:  # a bad turn must not stop the reader; consolidation reads it again
                log.exception("reading facts from new turns failed")

    def listed(self, user: str | None) -> list[LedgerFact]:
        """A user's facts (every user's for None), without those of turns marked "don't learn"."""
        return [f for f in self.facts.facts(user) if f.status != "ineligible"]

    def _own(self, fact_id: int, user: str | None) -> LedgerFact:
        fact = self.facts.get(fact_id)
        if fact is None or (user is not None and fact.owner != user):
            raise CorrectionError(f"no fact {fact_id}" + (f" of {user}" if user else "")
                                  + ": the list shows the ids")
        return fact

    def correct(self, fact_id: int, text: str, user: str | None = None) -> LedgerFact:
        self._own(fact_id, user)
        with self._lock:
            return correct(self.facts, self.extractor or make_extractor("rules"), fact_id, text)

    def forget(self, fact_id: int, user: str | None = None) -> LedgerFact:
        fact = self._own(fact_id, user)
        if fact.forgotten:
            raise CorrectionError(f"fact {fact_id} is already forgotten")
        self.facts.forget(fact_id)
        return fact

    def close(self) -> None:
        self.facts.close()
