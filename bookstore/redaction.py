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
# Fields the services fill in themselves from bounded values: skipped to keep lines cheap.
_OWN_FIELDS = TRUSTED_ID_KEYS | {"level", "route", "status", "duration_ms", "retry_attempt"}
_MAX_DEPTH = 8

# 13-19 digits, each optionally followed by one space or dash (as cards are usually written).
_CARD_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
# `password=x`, `"token": "x"`, `Bearer x`: group 1 is the part kept, group 2 the secret.
_SECRET_IN_TEXT = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|secret|token|access_token|api_key|apikey)\b[\"']?\s*[:=]\s*[\"']?"
    r"|\b(?:bearer|basic)\s+)([^\s\"'&,;}]+)"
)
_key_verdicts: dict[str, bool] = {}


def is_sensitive_key(key: str) -> bool:
    verdict = _key_verdicts.get(key)
    if verdict is None:
        name = key.lower().replace("-", "_")
        verdict = name in SENSITIVE_KEYS or name.endswith(_SENSITIVE_SUFFIXES)
        if len(_key_verdicts) < 4096:  # keys are few; a flood of new ones is not cached
            _key_verdicts[key] = verdict
    return verdict


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
    if len(text) >= 13:
        text = _CARD_RUN.sub(_mask_card, text)
    # The free-text regex is the slow part of a line: run it only when a keyword is present
    # (plain substring tests are far cheaper than a case-insensitive alternation).
    lowered = text.lower()
    if (
        "pass" in lowered
        or "pwd" in lowered
        or "secret" in lowered
        or "token" in lowered
        or "key" in lowered
        or "bearer" in lowered
        or "basic" in lowered
    ):
        text = _SECRET_IN_TEXT.sub(_keep_prefix, text)
    return text


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + MASK


def redact_value(value: Any, depth: int = 0) -> Any:
    """`value` with every secret in it masked (containers are copied, never changed in place)."""
    kind = type(value)  # exact-type checks first: this runs for every field of every line
    if kind is str:
        return redact_text(value)
    if kind is dict:
        if depth >= _MAX_DEPTH:
            return "[TRUNCATED]"
        masked = {}
        for k, v in value.items():
            if type(k) is str and is_sensitive_key(k):
                masked[k] = MASK
            elif type(v) is str:  # inlined: most leaves are short strings
                masked[k] = redact_text(v)
            else:
                masked[k] = redact_value(v, depth + 1)
        return masked
    if value is None or kind is bool or kind is float:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # A card number sent as a JSON number is still a card number.
        return MASK if value >= 10**12 and _mask_card_int(value) else value
    if isinstance(value, list | tuple | set | frozenset):
        if depth >= _MAX_DEPTH:
            return "[TRUNCATED]"
        return [redact_value(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return redact_value(dict(value), depth)
    return redact_text(str(value))


def _mask_card_int(value: int) -> bool:
    digits = str(value)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def processor(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every field except our own validated ids goes through the rules."""
    for key, value in event.items():
        if key in _OWN_FIELDS:
            continue
        if is_sensitive_key(key):
            event[key] = MASK
        elif type(value) is str:  # the common case first: this runs for every line
            event[key] = redact_text(value)
        elif type(value) is not float and value is not None:
            try:
                event[key] = redact_value(value)
            except Exception as exc:  # an object whose str() fails: drop it, keep the line
                event[key] = f"[UNREADABLE: {type(exc).__name__}]"
    return event
