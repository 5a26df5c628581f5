"""Injected database failures: the TechFlow incident ("Database connection failed"), on demand.

The services keep their data in memory or in a file, so there is no real database to break.
`SimulatedDatabase` stands in for the connection layer: each call first "connects", and a
connection fails with `DatabaseConnectionError`

- at random with probability `FaultSwitch.rate` (env `FAULT_RATE`, changed at runtime through
  `PUT /admin/faults`): the intermittent errors of the story, some of them hidden by retries;
- on every attempt when the request says `X-Inject-Fault: database`: one guaranteed failure a
  checker or a learner can trigger and then look for.

A failed connection is retried (`ATTEMPTS` in all, WARN per failed attempt with
`retry_attempt`); when the last one fails the caller gets `DatabaseUnavailable` and answers 503
with an ERROR line carrying `error_type`, `retry_attempt` and the stack trace.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bookstore.logs import get_logger

FAULT_HEADER = "x-inject-fault"
KNOWN_FAULTS = frozenset({"database"})
ATTEMPTS = 3
BACKOFF_SECONDS = 0.005

T = TypeVar("T")


class DatabaseConnectionError(ConnectionError):
    """The simulated database refused a connection."""


class DatabaseUnavailable(Exception):
    """Every attempt failed; `last` is the final DatabaseConnectionError."""

    def __init__(self, attempts: int, last: DatabaseConnectionError) -> None:
        super().__init__(f"database unavailable after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last


def parse_rate(value: object, source: str = "FAULT_RATE") -> float:
    """A fault rate in [0, 1]; raises ValueError naming the source and the accepted range."""
    if isinstance(value, bool):
        raise ValueError(f"{source} must be a number between 0 and 1, got {value!r}")
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0.0
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{source} must be between 0 and 1 (0 = off, 1 = always), got {value!r}")
    return rate


class FaultSwitch:
    """The current fault rate of one process; `/admin/faults` reads and flips it."""

    def __init__(self, rate: float = 0.0, rng: random.Random | None = None) -> None:
        self.rate = rate
        self._rng = rng or random.Random()

    def should_fail(self, forced: bool) -> bool:
        return forced or (self.rate > 0.0 and self._rng.random() < self.rate)


def requested_fault(header_value: str | None) -> str | None:
    """The fault an `X-Inject-Fault` header asks for; ValueError if it names an unknown one."""
    if header_value is None:
        return None
    fault = header_value.strip().lower()
    if fault not in KNOWN_FAULTS:
        raise ValueError(
            f"X-Inject-Fault: {header_value[:40]!r} is not a known fault (known: database)"
        )
    return fault


class SimulatedDatabase:
    """Runs a data operation behind a connection that the fault switch can break."""

    def __init__(self, name: str, switch: FaultSwitch) -> None:
        self.name = name
        self.switch = switch

    def _connect(self, forced: bool) -> None:
        if self.switch.should_fail(forced):
            raise DatabaseConnectionError(
                f"could not connect to database {self.name!r}: connection refused (simulated fault)"
            )

    async def run(self, operation: Callable[[], T | Awaitable[T]], *, forced: bool = False) -> T:
        """`operation()` after a successful connect, retrying failed connects with backoff."""
        log = get_logger()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._connect(forced)
            except DatabaseConnectionError as exc:
                if attempt == ATTEMPTS:
                    raise DatabaseUnavailable(attempt, exc) from exc
                log.warning(
                    "database connection failed, retrying",
                    error=str(exc),
                    error_type=type(exc).__name__,
                    retry_attempt=attempt,
                    database=self.name,
                )
                await asyncio.sleep(BACKOFF_SECONDS * attempt)
                continue
            result = operation()
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[return-value]
        raise AssertionError("unreachable: the loop returns or raises")
