"""Payment card numbers in text and numbers: found by digit windows and the Luhn check.

Part of the redaction rules (`bookstore.redaction`), kept apart because it is its own
problem: in every run of digits (any Unicode digits; up to four separator characters
between two of them: any space, dashes, dots, slashes, zero-width characters, ...) every
13-19-digit window is tried with the Luhn check, and the whole run is masked when one
passes, so an expiry or a CVV written next to the card goes with it.

What is never a card: tokens shaped like the ids the services log by design (`ord-` + 16
hex, UUIDs, a `traceparent`, 16 or 32 hex digits with at least one letter) and windows of
one repeated digit (`0000000000000000`, which passes Luhn but is nobody's card). A run of
more than 64 digits is masked without trying windows: no id is that long.
"""

from __future__ import annotations

import re

_MAX_WINDOW_RUN = 64


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies (ISO/IEC 7812)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def has_card_window(digits: list[int]) -> bool:
    """True when some 13-19-digit window of `digits` passes Luhn and is not one digit repeated.

    Prefix sums per parity make each window O(1): the digit at index k of a window ending
    at j (exclusive) is doubled when (j - 1 - k) is odd.
    """
    n = len(digits)
    if n < 13:
        return False
    # plain[p][k] / doubled[p][k]: sums over indices < k with index % 2 == p.
    plain = ([0] * (n + 1), [0] * (n + 1))
    doubled = ([0] * (n + 1), [0] * (n + 1))
    same = [0] * n  # length of the run of equal digits ending at k
    for k, digit in enumerate(digits):
        parity = k & 1
        for p in (0, 1):
            plain[p][k + 1] = plain[p][k] + (digit if p == parity else 0)
            doubled[p][k + 1] = doubled[p][k] + (_DOUBLED[digit] if p == parity else 0)
        same[k] = same[k - 1] + 1 if k and digits[k - 1] == digit else 1
    for end in range(13, n + 1):
        last = (end - 1) & 1
        for length in range(13, min(19, end) + 1):
            start = end - length
            if same[end - 1] >= length:
                continue  # `0000000000000` passes Luhn but is nobody's card
            total = (plain[last][end] - plain[last][start]) + (
                doubled[1 - last][end] - doubled[1 - last][start]
            )
            if total % 10 == 0:
                return True
    return False


_SEP = r"[\s\-./_,:;|+*#~\u00ad\u200b-\u200d\u2010-\u2015\u2060\u2212\ufeff]"
# 13 or more digits, up to four separator characters (any space, dashes, dots, slashes,
# zero-width characters, ...) between any two of them.
_DIGIT_RUN = re.compile(rf"(?<!\d)\d(?:{_SEP}{{0,4}}\d){{12,}}")
# Tokens shaped like the ids we log by design: the card scan never looks inside them.
_ID_TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"ord-[0-9a-f]{16}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"
    r"|(?=[0-9]*[a-fA-F])[0-9a-fA-F]{32}"
    r"|(?=[0-9]*[a-fA-F])[0-9a-fA-F]{16}"
    r")(?![0-9A-Za-z])"
)


def _digits_of(run: str) -> list[int]:
    if run.isascii():
        return [ord(c) - 48 for c in run if "0" <= c <= "9"]
    return [int(c) for c in run if c.isdecimal()]


def _is_card_run(run: str) -> bool:
    digits = _digits_of(run)
    return len(digits) > _MAX_WINDOW_RUN or has_card_window(digits)


def mask_cards(text: str, mask: str) -> str:
    """`text` with every digit run holding a card number replaced by `mask`; id-shaped tokens
    are left alone."""
    if _DIGIT_RUN.search(text) is None:
        return text

    def mask_run(match: re.Match[str]) -> str:
        return mask if _is_card_run(match.group(0)) else match.group(0)

    pieces: list[str] = []
    position = 0
    for match in _ID_TOKEN.finditer(text):
        pieces.append(_DIGIT_RUN.sub(mask_run, text[position : match.start()]))
        pieces.append(match.group(0))
        position = match.end()
    pieces.append(_DIGIT_RUN.sub(mask_run, text[position:]))
    return "".join(pieces)


def contains_card_number(text: str) -> bool:
    return mask_cards(text, "") != text


def number_is_card(value: int | float) -> bool:
    """A JSON number that is (or holds) a card number."""
    if type(value) is float:
        if value != value or value in (float("inf"), float("-inf")):
            return False
        if abs(value) >= 1e16:
            return True  # beyond a float's exact digits: a card's prefix at best; never useful
        return abs(value) >= 1e12 and contains_card_number(repr(value))
    return (value >= 10**12 or value <= -(10**12)) and contains_card_number(str(value))
