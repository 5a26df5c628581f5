"""Extra: no password, token or card number reached Loki.

The checker plants fresh secrets of every kind the chapter names, in every place a request can
carry one: a password, a token and an API key in a JSON body, a card number with and without
separators (as a field and in free text), a token in the query string and an API key in a
header. (Not in `Authorization`: the API server's proxy strips that header after it
authenticates the checker, k8s.io/apiserver pkg/endpoints/filters/authentication.go.)

Three requests share one trace: a rejected order (orders logs the body of a 422 at WARN), a
valid order (it crosses into catalog: `order placed` in orders, `stock reserved` in catalog)
and a 404 in catalog. The checker waits for the lines of both services (they reach Loki in
separate agent batches) before it judges, and judges only lines sampling never drops. Then it
scans the last hour for Luhn-valid card numbers, leaving out the ids the services log by
design (order, trace, span and request ids, UUIDs, runs of one digit).
"""

from __future__ import annotations

import random
import re

import pytest

from checks.evidence import (
    CheckFailed,
    Passed,
    card_numbers,
    json_field,
    luhn_valid,
    new_marker,
    new_trace,
    service_of,
    shorten,
)
from checks.lab import Lab

LAB_WINDOW_S = 3600
DIGIT_RUN = "[0-9][0-9 -]{11,}[0-9]"  # RE2; Luhn is checked in Python on what comes back
REDACTION = "bookstore/redaction.py"


def fresh_card_number() -> str:
    """A random Luhn-valid 16-digit number (test range 4000...), so the check never relies
    on a well-known test card that might be in the logs for another reason."""
    body = "4000" + "".join(random.choice("0123456789") for _ in range(11))
    for last in "0123456789":
        if luhn_valid(body + last):
            return body + last
    raise AssertionError("unreachable: one check digit always satisfies Luhn")


def spaced(card: str, sep: str) -> str:
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4))


def plant(lab: Lab, base_id: str) -> dict[str, str]:
    """Send the three requests; return each planted secret by what it is."""
    token = new_marker().removeprefix("lab2-check-")
    secrets = {
        "password in the body": f"pw-{token}a",
        "token in the body": f"tok-{token}b",
        "api key in the body": f"key-{token}c",
        "token in the query string": f"qs-{token}d",
        "api key in a header": f"hdr-{token}e",
        "card number without separators": fresh_card_number(),
        "card number with spaces": fresh_card_number(),
        "card number with dashes (free text)": fresh_card_number(),
    }
    body = {
        "password": secrets["password in the body"],
        "token": secrets["token in the body"],
        "api_key": secrets["api key in the body"],
        "card_number": secrets["card number without separators"],
        "payment": {"card": spaced(secrets["card number with spaces"], " ")},
        "note": f"pay with {spaced(secrets['card number with dashes (free text)'], '-')} please",
    }
    trace = new_trace()
    headers = {"X-Api-Key": secrets["api key in a header"]}
    query = f"?access_token={secrets['token in the query string']}"
    book_id = lab.first_book_id(f"{base_id}-0")
    rejected = lab.send(
        "orders", "POST", f"/orders{query}", request_id=f"{base_id}-1", trace=trace,
        json_body={**body, "book_id": book_id, "qty": "one"}, headers=headers,
    )  # fmt: skip
    placed = lab.order(f"{base_id}-2", trace, body=body, headers=headers, path=f"/orders{query}")
    lab.send(
        "catalog", "GET", f"/books/0{query}", request_id=f"{base_id}-3", trace=trace,
        headers=headers,
    )  # fmt: skip
    if not 400 <= rejected.status_code < 500 or placed.status_code != 201:
        raise CheckFailed(
            f"the planted requests answered {rejected.status_code} (qty 'one') and "
            f"{placed.status_code} (a valid order)",
            "a 4xx (422) for the rejected order and 201 for the valid one",
            f"kubectl -n {lab.app_ns} logs deploy/orders --tail=20; kubectl -n "
            f"{lab.app_ns} logs deploy/catalog --tail=20",
        )
    return secrets


def evidence_complete(entries, base_id: str) -> bool:
    """The unsampled lines of all three requests, from both services."""
    seen = {
        (json_field(e, "request_id"), service_of(e), json_field(e, "msg") or "") for e in entries
    }
    rid = {r: f"{base_id}-{r}" for r in "123"}
    return (
        any(r == rid["1"] and s == "orders" for r, s, _ in seen)
        and (rid["2"], "orders", "order placed") in seen
        and (rid["2"], "catalog", "stock reserved") in seen
        and any(r == rid["3"] and s == "catalog" for r, s, _ in seen)
    )


def check_no_secrets_in_loki(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    base_id = new_marker()
    start_ns = lab.evidence_start_ns()
    secrets = plant(lab, base_id)
    found = lab.wait_in_loki(
        f'{{namespace="{lab.app_ns}"}} |= "{base_id}"',
        lambda es: evidence_complete(es, base_id), start_ns=start_ns, timeout=ingest_timeout,
        what="not all of the planted requests' lines (orders' 422 and `order placed`, "
        "catalog's `stock reserved` and 404) are there",
        expected="the planted requests' lines from both orders and catalog",
    )  # fmt: skip
    # Every line of the window that holds a planted value, marker or not (an access log, a
    # line of the agent's own...). Separators inside card numbers are matched either way.
    patterns = [re.escape(v) for v in secrets.values() if not v.isdigit()]
    patterns += ["[ -]?".join(v) for v in secrets.values() if v.isdigit()]
    leaked = lab.loki_entries(
        f'{{namespace="{lab.app_ns}"}} |~ `{"|".join(patterns)}`', start_ns=start_ns
    )
    for entry in leaked:
        digits = re.sub(r"[ -]", "", entry.line)
        for kind, value in secrets.items():
            if value in entry.line or (value.isdigit() and value in digits):
                raise CheckFailed(
                    f"the {kind} the checker sent is in Loki, pod "
                    f"{entry.labels.get('pod', '?')}: {around(entry.line, value, secrets)!r}",
                    "secrets masked before the line is written, wherever they come from",
                    f"mask it in the bookstore's redaction step ({REDACTION}: sensitive keys, "
                    "secrets in free text and query strings, Luhn-valid card numbers); never "
                    "log raw headers or URLs with their query string",
                )
    window_start = lab.clock.time_ns() - LAB_WINDOW_S * 10**9
    candidates = lab.loki.entries(
        f'{{namespace="{lab.app_ns}"}} |~ "{DIGIT_RUN}"',
        start_ns=window_start, end_ns=lab.evidence_end_ns(), limit=5000, direction="backward",
    )  # fmt: skip
    for entry in candidates:
        numbers = card_numbers(entry.line)
        if numbers:
            masked = numbers[0][:4] + "…" + numbers[0][-4:]
            raise CheckFailed(
                f"a card number ({masked}) is in Loki, pod {entry.labels.get('pod', '?')}: "
                f"{shorten(entry.line.replace(numbers[0], masked))!r}",
                "Luhn-valid 13-19 digit numbers masked before the line is written",
                f"mask card numbers in the bookstore's redaction step ({REDACTION})",
            )
    return Passed(
        f"{len(secrets)} planted secrets ({', '.join(secrets)}) in 3 requests: none in the "
        f"{len(found.entries)} lines of orders and catalog; {len(candidates)} digit-bearing "
        "lines in the last hour hold no card number"
    )


def around(line: str, value: str, secrets: dict[str, str], width: int = 70) -> str:
    """The part of the line around the leaked value, every planted value cut short."""
    found = re.search("[ -]?".join(value) if value.isdigit() else re.escape(value), line)
    if found is None:
        return shorten(mask(line, secrets))
    at = found.start()
    piece = line[max(0, at - width) : found.end() + width]
    return ("…" if at > width else "") + mask(piece, secrets) + "…"


def mask(line: str, secrets: dict[str, str]) -> str:
    """The line with the planted values cut short, so a report never repeats a secret."""
    for value in secrets.values():
        pattern = "[ -]?".join(value) if value.isdigit() else re.escape(value)
        line = re.sub(pattern, value[:4] + "…", line)
    return line


@pytest.mark.checker("lab2.no-secrets-in-loki")
def test_no_secrets_in_loki(lab, record_outcome):
    record_outcome(check_no_secrets_in_loki(lab))
