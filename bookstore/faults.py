"""Injected database failures: the TechFlow incident ("Database connection failed"), on demand.

The services keep their data in memory or in a file, so there is no real database to break.
`SimulatedDatabase` stands in for the connection layer: each call first "connects", and
connections fail with `DatabaseConnectionError` for

- a share `FaultSwitch.rate` of requests (env `FAULT_RATE`, changed at runtime through
  `PUT /admin/faults`): every attempt fails and the request is answered 503. FAULT_RATE=0.1
  means one request in ten fails, which is what a learner expects to see;
- as many other requests again, only the first attempt fails and the retry succeeds: a WARN
  and no error. That is the incident's signature: more warnings than errors, and users who
  see only some of the failures;
- every request that says `X-Inject-Fault: database`: one guaranteed failure a checker or a
  learner can trigger and then look for.

A failed connection is retried (`ATTEMPTS` in all, a WARN per failed attempt with
`retry_attempt`); when the last one fails the caller gets `DatabaseUnavailable` and answers 503
with an ERROR line carrying `error_type`, `retry_attempt` and the stack trace.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bookstore import redaction
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
    shown = redaction.describe(value, 60)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0.0
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number between 0 and 1, got {shown}") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{source} must be between 0 and 1 (0 = off, 1 = always), got {shown}")
    return rate


class FaultSwitch:
    """The current fault rate of one process; `/admin/faults` reads and flips it."""

    def __init__(self, rate: float = 0.0, rng: random.Random | None = None) -> None:
        self.rate = rate
        self._rng = rng or random.Random()

    def failing_attempts(self, forced: bool) -> int:
        """How many connection attempts of this request fail: all, one (transient), or none."""
        if forced:
            return ATTEMPTS
        if self.rate <= 0.0:
            return 0
        draw = self._rng.random()
        if draw < self.rate:
            return ATTEMPTS
        return 1 if draw < 2 * self.rate else 0


def requested_fault(header_value: str | None) -> str | None:
    """The fault an `X-Inject-Fault` header asks for; ValueError if it names an unknown one."""
    if header_value is None:
        return None
    fault = header_value.strip().lower()
    if fault not in KNOWN_FAULTS:
        raise ValueError(
            f"X-Inject-Fault: {redaction.describe(header_value, 40)} is not a known fault "
            "(known: database)"
        )
    return fault


class SimulatedDatabase:
    """Runs a data operation behind a connection that the fault switch can break."""

    def __init__(self, name: str, switch: FaultSwitch) -> None:
        self.name = name
        self.switch = switch

    def _connect(self, attempt: int, failing_attempts: int) -> None:
        if attempt <= failing_attempts:
            raise DatabaseConnectionError(
                f"could not connect to database {self.name!r}: connection refused (simulated fault)"
            )

    async def run(self, operation: Callable[[], T | Awaitable[T]], *, forced: bool = False) -> T:
        """`operation()` after a successful connect, retrying failed connects with backoff."""
        log = get_logger()
        failing_attempts = self.switch.failing_attempts(forced)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._connect(attempt, failing_attempts)
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
