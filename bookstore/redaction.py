"""Masking secrets before a log line is written: once it is in Loki it is everywhere.

Two rules, applied to every field at any depth (dicts, lists, tuples):

- by key: a field whose name says it holds a secret (`password`, `token`, `authorization`,
  `card_number`, `cvv`, ... case-insensitive, `-` and `_` alike, also as a suffix such as
  `db_password` or `x-api-key`) has its whole value replaced;
- by value: any run of 13-19 digits (spaces or dashes between them allowed) that passes the
  Luhn check is a payment card number wherever it appears, and inside free text
  `password=...`, `token: ...` and `Bearer ...` have their secret part replaced.

The ids this service generates or validates itself (`trace_id`, `span_id`, `request_id`,
`order_id`) are left alone: they are hex or checked against a pattern, and masking one by
accident (a random hex id can contain a Luhn-valid digit run) would break correlation.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "card_number",
        "cardnumber",
        "card_no",
        "pan",
        "cvv",
        "cvc",
        "cvv2",
        "ssn",
        "private_key",
    }
)
_SENSITIVE_SUFFIXES = ("_password", "_passwd", "_secret", "_token", "_api_key", "_apikey")
TRUSTED_ID_KEYS = frozenset(
    {"trace_id", "span_id", "parent_span_id", "trace_flags", "request_id", "order_id"}
)
_MAX_DEPTH = 8

# 13-19 digits, each optionally followed by one space or dash (as cards are usually written).
_CARD_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_SECRET_IN_TEXT = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|secret|token|access_token|api_key|apikey)\b[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"'&,;}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def is_sensitive_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in SENSITIVE_KEYS or name.endswith(_SENSITIVE_SUFFIXES)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies (ISO/IEC 7812)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = run.replace(" ", "").replace("-", "")
    return MASK if 13 <= len(digits) <= 19 and luhn_valid(digits) else run


def contains_card_number(text: str) -> bool:
    return any(_mask_card(m) == MASK for m in _CARD_RUN.finditer(text))


def redact_text(text: str) -> str:
    """Free text with card numbers and `key=secret` / `Bearer x` secrets masked."""
    if sum(c.isdigit() for c in text) >= 13:
        text = _CARD_RUN.sub(_mask_card, text)
    if "=" in text or ":" in text:
        text = _SECRET_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)
    if " " in text:
        text = _BEARER.sub(lambda m: m.group(1) + " " + MASK, text)
    return text


def redact_value(value: Any, depth: int = 0) -> Any:
    """`value` with every secret in it masked (containers are copied, never changed in place)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        # A card number sent as a JSON number is still a card number.
        return MASK if value >= 10**12 and _mask_card_int(value) else value
    if depth >= _MAX_DEPTH:
        return "[TRUNCATED]"
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_sensitive_key(k) else redact_value(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, depth + 1) for v in value]
    return redact_text(str(value))


def _mask_card_int(value: int) -> bool:
    digits = str(value)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def processor(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every field except our own validated ids goes through the rules."""
    for key, value in event.items():
        if key in TRUSTED_ID_KEYS:
            continue
        if is_sensitive_key(key):
            event[key] = MASK
        elif isinstance(value, str | dict | list | tuple | int) and not isinstance(value, bool):
            event[key] = redact_value(value)
    return event
