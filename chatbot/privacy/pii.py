"""PII scrubbing for training data: e-mail addresses, phone numbers, payment card numbers (Luhn-checked) and
IBANs (mod-97-checked) are replaced by placeholders in every example before it enters a training mix, so the
weights never learn them. Memories (retrieval) still see the original text of the user's own turns.

Checksums keep false positives down: a 16-digit number that fails Luhn is not a card, a string shaped like an
IBAN that fails mod 97 is not an IBAN. Phone numbers have no checksum: any 9-15 digit run written like a phone
number (or 7-15 digits after + / 00 / a parenthesised area code) is treated as one.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from chatbot.core.config import PII_KINDS as KINDS  # applied in this order

PLACEHOLDER = {"email": "[email]", "iban": "[iban]", "card": "[card]", "phone": "[phone]"}

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){11,30}(?![A-Za-z0-9])", re.IGNORECASE)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().\-/]{5,22}\d(?![\w])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters → 10..35, the number mod 97 must be 1."""
    s = compact.upper()
    if not (15 <= len(s) <= 34 and s[:2].isalpha() and s[2:4].isdigit() and s.isalnum()):
        return False
    rotated = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1


def _longest_valid(text: str, start: int, end: int, keep: Callable[[str], bool], min_len: int) -> int | None:
    """End of the longest match text[start:stop] that passes `keep` on its compact form (separators removed),
    where stop is the match end or the end of an earlier group (just before a separator); None if none does.
    So "DE89 3704 0044 0532 0130 00 ABC" is an IBAN up to "00", and a 16-digit card followed by " 22" is found,
    while the digits inside a group are never cut (a random 16-digit number is not shortened until Luhn passes)."""
    stops = [end] + [i for i in range(end - 1, start, -1) if not text[i].isalnum() and text[i - 1].isalnum()]
    for stop in stops:
        compact = "".join(ch for ch in text[start:stop] if ch.isalnum())
        if len(compact) >= min_len and keep(compact):
            return stop
    return None


def _sub_checked(text: str, pattern: re.Pattern, keep: Callable[[str], bool], min_len: int, placeholder: str,
                 counts: Counter, kind: str) -> str:
    out, pos = [], 0
    for m in pattern.finditer(text):
        if m.start() < pos:
            continue
        stop = _longest_valid(text, m.start(), m.end(), keep, min_len)
        if stop is None:
            continue
        out += [text[pos:m.start()], placeholder]
        pos = stop
        counts[kind] += 1
    out.append(text[pos:])
    return "".join(out)


def _phone_ok(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if not 7 <= digits <= 15:
        return False
    international = candidate.startswith(("+", "00")) or "(" in candidate
    if digits < 9 and not international:
        return False
    # Dates and times are not phone numbers: 2024-01-15, 15/01/2024, 12:30.
    if re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}", candidate.strip()):
        return False
    return True


def scrub(text: str, kinds: Iterable[str] = KINDS, counts: Counter | None = None) -> str:
    """Replace each PII item of the selected kinds by its placeholder; `counts` (if given) counts them by kind."""
    counts = counts if counts is not None else Counter()
    kinds = set(kinds)
    if "email" in kinds:
        text, n = EMAIL.subn(PLACEHOLDER["email"], text)
        counts["email"] += n
    if "iban" in kinds:
        text = _sub_checked(text, _IBAN, iban_ok, 15, PLACEHOLDER["iban"], counts, "iban")
    if "card" in kinds:
        text = _sub_checked(text, _CARD, lambda d: 13 <= len(d) <= 19 and luhn_ok(d), 13, PLACEHOLDER["card"],
                            counts, "card")
    if "phone" in kinds:
        def phone(m: re.Match) -> str:
            if _phone_ok(m.group(0)):
                counts["phone"] += 1
                return PLACEHOLDER["phone"]
            return m.group(0)
        text = _PHONE.sub(phone, text)
    return text


def scrubber(kinds: Iterable[str], counts: Counter) -> Callable:
    """An Example → Example function for the mix (counts what it replaced)."""
    kinds = tuple(kinds)

    def apply(example):
        messages = tuple((role, scrub(content, kinds, counts)) for role, content in example.messages)
        return example if messages == example.messages else replace(example, messages=messages)

    apply.counts = counts  # type: ignore[attr-defined]
    return apply

