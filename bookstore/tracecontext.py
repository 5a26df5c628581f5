"""W3C Trace Context (`traceparent`) for the bookstore: parse, start, and continue a trace.

Only the `traceparent` header is handled (https://www.w3.org/TR/trace-context/): it is what puts
the same `trace_id` on an order's log lines in both services. `tracestate` carries vendor data
that these services neither read nor need, so it is not forwarded.

Header shape: `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, lowercase, all-zero ids
invalid, version `ff` invalid. A future version (01..fe) may append fields after a dash; the
first four are read the same way, as the spec asks.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

HEADER = "traceparent"
SAMPLED = "01"
_VERSION_00_LENGTH = 55
_FIELDS = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class InvalidTraceparent(ValueError):
    """An inbound `traceparent` that cannot be honoured; the message says why."""


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One span's identity: the trace it belongs to, its own id, and the W3C flags."""

    trace_id: str
    span_id: str
    trace_flags: str = SAMPLED
    # The caller's span, when this context continues an inbound trace.
    parent_span_id: str | None = None

    @property
    def sampled(self) -> bool:
        return int(self.trace_flags, 16) & 1 == 1

    def to_header(self) -> str:
        """The `traceparent` value that names this span as the parent of the next hop."""
        return f"00-{self.trace_id}-{self.span_id}-{self.trace_flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, parented by this one (an outbound call, a server span)."""
        return TraceContext(self.trace_id, new_span_id(), self.trace_flags, self.span_id)


def new_trace_id() -> str:
    # 128 random bits: never all zero in practice, but the spec forbids it, so make sure.
    trace_id = secrets.token_hex(16)
    return trace_id if trace_id != _ZERO_TRACE else new_trace_id()


def new_span_id() -> str:
    span_id = secrets.token_hex(8)
    return span_id if span_id != _ZERO_SPAN else new_span_id()


def new_trace() -> TraceContext:
    """Start a trace here: this service is the root (no or unusable inbound header)."""
    return TraceContext(new_trace_id(), new_span_id(), SAMPLED)


def parse(header: str) -> TraceContext:
    """The caller's span described by `header`; raises InvalidTraceparent naming the problem."""
    value = header.strip()
    match = _FIELDS.match(value)
    if match is None:
        raise InvalidTraceparent(
            "expected 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>"
        )
    version, trace_id, span_id, flags = match.groups()
    if version == "ff":
        raise InvalidTraceparent("version ff is forbidden")
    rest = value[_VERSION_00_LENGTH:]
    if version == "00" and rest:
        raise InvalidTraceparent("version 00 has exactly four fields")
    if version != "00" and rest and not rest.startswith("-"):
        raise InvalidTraceparent("fields after the flags must be separated by '-'")
    if trace_id == _ZERO_TRACE:
        raise InvalidTraceparent("trace-id is all zeros")
    if span_id == _ZERO_SPAN:
        raise InvalidTraceparent("parent-id is all zeros")
    return TraceContext(trace_id, span_id, flags)


def continue_or_start(header: str | None) -> tuple[TraceContext, str | None]:
    """The server span for an inbound request, and why the header was rejected (None if not).

    A valid header continues the caller's trace (new span, parent = caller's span). A missing
    one starts a trace silently; an invalid one starts a trace and the reason is returned so
    the caller can log a WARN: a broken propagator upstream is worth knowing about.
    """
    if header is None:
        return new_trace(), None
    try:
        return parse(header).child(), None
    except InvalidTraceparent as exc:
        return new_trace(), str(exc)
