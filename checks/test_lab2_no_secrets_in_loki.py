"""Extra: no password, token or card number reached Loki during the lab window."""

from __future__ import annotations

import random

import pytest

from checks.evidence import CheckFailed, Passed, card_numbers, luhn_valid, new_marker, shorten
from checks.lab import APP_NAMESPACE, Lab

LAB_WINDOW_S = 3600
DIGIT_RUN = "[0-9][0-9 -]{11,}[0-9]"  # RE2; Luhn is checked in Python on what comes back


def fresh_card_number() -> str:
    """A random Luhn-valid 16-digit number (test range 4000...), so the check never relies
    on a well-known test card that might be in the logs for another reason."""
    body = "4000" + "".join(random.choice("0123456789") for _ in range(11))
    for last in "0123456789":
        if luhn_valid(body + last):
            return body + last
    raise AssertionError("unreachable: one check digit always satisfies Luhn")


def check_no_secrets_in_loki(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    marker = new_marker()
    password = f"pw-{new_marker()}"
    card = fresh_card_number()
    start_ns = lab.evidence_start_ns()
    lab.send(
        "orders", "POST", "/orders", request_id=marker,
        json_body={"book_id": "1", "qty": 1, "password": password, "card_number": card},
    )  # fmt: skip
    # (No secret in an Authorization header: through the service proxy that header is the
    # API server's own credential.)
    lab.wait_in_loki(
        f'{{namespace="{APP_NAMESPACE}"}} |= "{marker}"', lambda es: bool(es),
        start_ns=start_ns, timeout=ingest_timeout, what="the marker request never reached Loki",
    )  # fmt: skip
    end_ns = lab.clock.time_ns() + 1
    leaked = lab.loki.entries(
        f'{{namespace="{APP_NAMESPACE}"}} |= "{password}"', start_ns=start_ns, end_ns=end_ns
    )
    if leaked:
        raise CheckFailed(
            f"the password the checker sent is in Loki: {shorten(leaked[0].line)!r} "
            f"(pod {leaked[0].labels.get('pod', '?')})",
            "secrets masked before the line is written",
            "redact sensitive keys in bookstore/redaction.py (password, token, authorization, ...)",
        )
    window_start = lab.clock.time_ns() - LAB_WINDOW_S * 10**9
    candidates = lab.loki.entries(
        f'{{namespace="{APP_NAMESPACE}"}} |~ "{DIGIT_RUN}"',
        start_ns=window_start, end_ns=end_ns, limit=5000, direction="backward",
    )  # fmt: skip
    for entry in candidates:
        numbers = card_numbers(entry.line)
        if numbers:
            masked = numbers[0][:4] + "…" + numbers[0][-4:]
            raise CheckFailed(
                f"a card number ({masked}) is in Loki, pod {entry.labels.get('pod', '?')}: "
                f"{shorten(entry.line.replace(numbers[0], masked))!r}",
                "Luhn-valid 13-19 digit numbers masked before the line is written",
                "mask card numbers in the bookstore's redaction step (bookstore/redaction.py)",
            )
    return Passed(
        f"the request with a password and card number was logged without either; "
        f"{len(candidates)} digit-bearing lines in the last hour hold no card number"
    )


@pytest.mark.checker("lab2.no-secrets-in-loki")
def test_no_secrets_in_loki(lab, record_outcome):
    record_outcome(check_no_secrets_in_loki(lab))
