"""Cost of one log line through the whole chain: context, sampling, redaction, JSON, write.

Lines go to /dev/null through a real file object, so the write is paid as in production;
the terminal or a pipe would add the reader's speed to the measurement. Time is
this process's CPU time (user + system), not wall-clock time: on a busy laptop or CI runner
the wall clock also counts the moments other processes had the CPU.
"""

from __future__ import annotations

import os
import time

from bookstore import logs

TRACE = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "trace_flags": "01",
    "request_id": "6f1c2a8e-1b7d-4c55-9a0e-3f4d2b1c0a99",
}
# A rejected order: nested body with a card number and a password, the redactor's worst case.
REJECTED_BODY = {
    "book_id": 1,
    "qty": "two",
    "payment": {"card_number": "4111 1111 1111 1111", "cvv": "737"},
    "customer": {"email": "reader@example.com", "password": "hunter2"},
}


def _request_line(log) -> None:
    # As bookstore.web writes it: every field is the service's own, so no redaction runs.
    logs.request_line("info", method="GET", route="/books/{book_id}", status=200, duration_ms=1.234)


def _rejected_line(log) -> None:
    log.warning("request rejected", reason="qty must be an integer", body=REJECTED_BODY)


def _business_line(log) -> None:
    log.info("order placed", order_id="ord-00f067aa0ba902b7", book_id=3, qty=2)


LINES = {
    "request_line": _request_line,
    "redacted_warn": _rejected_line,
    "business_info": _business_line,
}


def measure(lines: int = 2_000, rounds: int = 150) -> dict[str, list[float]]:
    """µs per line of each kind in LINES, one sample per round: the request line, a WARN line
    with a body to redact and a business INFO line (the lines every request writes).

    The kinds take turns round by round, so a slow moment of the machine (a neighbour's burst,
    the first second of the process) touches every kind alike instead of one. The best round
    is the figure to judge (as `timeit` advises: other processes only ever add time); the
    other samples show how noisy the machine was. Many short rounds spread over 10-20 seconds:
    a shared 2-core VM here ran ~1.8x slower in spells of 2-7 seconds, into which a few long
    rounds can all fall.
    """
    samples: dict[str, list[float]] = {name: [] for name in LINES}
    with open(os.devnull, "w") as devnull:
        log = logs.configure("catalog", stream=devnull)
        token = logs.bind_request(TRACE)
        try:
            for _ in range(rounds):
                for name, emit in LINES.items():
                    start = time.process_time()
                    for _ in range(lines):
                        emit(log)
                    samples[name].append((time.process_time() - start) / lines * 1e6)
        finally:
            logs.unbind_request(token)
    return samples
