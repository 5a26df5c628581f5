"""`LOG_SAMPLE_RATE`: keep a share of the successful request lines, all of everything else.

Only a request line (one with a `status`) at INFO with status < 400 can be dropped. WARN and
ERROR lines, 4xx/5xx request lines and every non-request line (startup, `order placed`, ...)
are always written: the lines you need in an incident are never sampled out.

The decision is made from the trace id, not from a coin flip per line: the lowest 56 bits of a
W3C trace id are random, so `int(trace_id[-14:], 16) < rate * 2**56` keeps the same share of
traces, and because every service sees the same trace id, a kept request keeps its lines in
catalog *and* orders (a per-line coin would keep half an order's story). It is also
deterministic, so tests can predict which lines stay.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

_RANDOM_BITS = 56


def parse_rate(value: str | None) -> float:
    """`LOG_SAMPLE_RATE` as a float in [0, 1]; raises ValueError saying what was expected."""
    if value is None or value.strip() == "":
        return 1.0
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"LOG_SAMPLE_RATE={value!r} is not a number between 0 and 1") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"LOG_SAMPLE_RATE={value!r} is outside 0..1 (1.0 keeps every line)")
    return rate


def by_trace_id(rate: float) -> Callable[[str | None], bool]:
    """Keep a trace when its random low bits fall below `rate`; no trace id -> a coin flip."""
    threshold = int(rate * (1 << _RANDOM_BITS))

    def keep(trace_id: str | None) -> bool:
        if rate >= 1.0:
            return True
        if trace_id is None or len(trace_id) < 14:
            return random.random() < rate
        try:
            return int(trace_id[-14:], 16) < threshold
        except ValueError:
            return random.random() < rate

    return keep


def is_sampleable(level: str, fields: dict[str, Any]) -> bool:
    """A successful request line (slog `level`, the line's fields): the only kind of line
    sampling may drop. (`isinstance`: a status may be an `HTTPStatus`, an int subclass.)"""
    status = fields.get("status")
    return (
        isinstance(status, int)
        and status < 400
        and level in ("INFO", "DEBUG")
        and "duration_ms" in fields
    )
