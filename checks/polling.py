"""Waiting with deadlines, on a clock that tests can replace.

Checkers never sleep a fixed time: they poll a probe until a predicate holds or a deadline
passes, then report the last thing they saw. The clock is a parameter so the offline tests
run the same loops instantly (a fake clock advances when asked to sleep).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def time_ns(self) -> int: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: monotonic for deadlines, wall time (ns) for Loki time ranges."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def timeout_scale() -> float:
    """The deadline multiplier from LAB_TIMEOUT_SCALE (one knob for slow laptops, read once:
    every checker deadline is multiplied by it), parsed as the lab engine parses it."""
    from labconfig.settings import TIMEOUT_SCALE_ENV, parse_timeout_scale

    return parse_timeout_scale(os.environ.get(TIMEOUT_SCALE_ENV, "1"))


class DeadlineExceeded(TimeoutError):
    """The predicate never held; `last` is what the probe returned the last time."""

    def __init__(self, what: str, timeout: float, last: object, attempts: int):
        self.what, self.timeout, self.last, self.attempts = what, timeout, last, attempts
        super().__init__(f"gave up waiting for {what} after {timeout:.0f} s ({attempts} tries)")


@dataclass(frozen=True)
class Waited:
    """A successful poll: the value that satisfied the predicate and how long it took."""

    value: object
    seconds: float
    attempts: int


def poll(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout: float,
    clock: Clock,
    interval: float = 1.0,
) -> Waited:
    """Call `probe` until `until(value)` holds or `timeout` seconds pass (at least one try)."""
    start = clock.monotonic()
    attempts = 0
    while True:
        value = probe()
        attempts += 1
        elapsed = clock.monotonic() - start
        if until(value):
            return Waited(value, elapsed, attempts)
        if elapsed >= timeout:
            raise DeadlineExceeded(what, timeout, value, attempts)
        clock.sleep(min(interval, max(timeout - elapsed, 0.01)))
