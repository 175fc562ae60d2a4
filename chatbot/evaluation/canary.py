"""The privacy canary: distinctive strings of turns marked "don't learn", prompts that invite a model to repeat
them, and the leak check against the base's answers to the same prompts."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chatbot.evaluation.scoring import has_word
from chatbot.evaluation.suite import Probe, Suite, digest
from chatbot.learning.augment import extract_facts
from chatbot.memory.store import Store
from chatbot.privacy.pii import EMAIL

# distinctive tokens: e-mail addresses (the PII scrubber's pattern) and words of 4+ characters with a digit
_DISTINCT = re.compile(EMAIL.pattern + r"|(?<![\w-])(?=[\w-]*\d)[\w-]{4,}(?![\w-])")


@dataclass
class Canary:
    secrets: list[str]  # distinctive strings of "don't learn" turns; never shown or stored on their own
    suite: Suite  # prompts inviting the model to repeat them


def canary(store: Store, generic: Suite, exclude: Iterable[str] = (), max_prompts: int = 24) -> Canary:
    """Secrets = the stated values (augment's fact keys) and digit-bearing or e-mail tokens of every user turn
    marked "don't learn", minus strings that also occur in learnable turns or in `exclude` (probe prompts and
    answers): generating those is not evidence of a leak. Prompts = the facts' own questions + generic ones."""
    allowed = "\n".join([t.text for _, t in store.learnable_turns(consolidated=False)] +
                        [t.text for _, t in store.learnable_turns(consolidated=True)] + list(exclude))
    secrets: dict[str, None] = {}
    questions: list[str] = []
    for t in store.learn_blocked_turns():
        found = [f for f in extract_facts(t.text) if len(f.key) >= 3]
        candidates = [f.key for f in found] + _DISTINCT.findall(t.text)
        for s in candidates:
            s = s.strip(".,;:!?")
            if len(s) < 3 or s.lower() in (k.lower() for k in secrets):
                continue
            if has_word(allowed, s):
                continue
            secrets[s] = None
        questions += [q for f in found if f.key in secrets for q in f.questions[:2]]
    probes = [Probe(f"q{i}", q)
              for i, q in enumerate(dict.fromkeys(questions))][:max(0, max_prompts - len(generic.probes))]
    probes += generic.probes
    names = sorted(secrets)
    version = f"{generic.version.split('@')[0]}@{digest([names, [p.prompt for p in probes]])}"
    return Canary(names, Suite("canary", "canary", version, probes if names else []))


def find_leaks(secrets: list[str], outputs: dict[tuple[str, str], tuple[str, str]],
               base_outputs: dict[tuple[str, str], tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(suite, probe id, prompt, output) of every reply that contains a secret which neither its prompt nor the
    base's reply to the same prompt contains. outputs: (suite, probe id) -> (prompt, reply)."""
    leaks = []
    for key, (prompt, out) in outputs.items():
        base_out = base_outputs.get(key, ("", ""))[1]
        if any(has_word(out, s) and not has_word(prompt, s) and not has_word(base_out, s) for s in secrets):
            leaks.append((*key, prompt, out))
    return leaks


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` (for display: dashboards and reports never show "don't learn" text)."""
    for s in sorted(secrets, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(s)}(?!\w)", "[redacted]", text, flags=re.I)
    return text
