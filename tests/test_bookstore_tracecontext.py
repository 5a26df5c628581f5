"""W3C traceparent: what is accepted, what is refused and why, and how a trace continues."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookstore import tracecontext
from bookstore.tracecontext import InvalidTraceparent, TraceContext

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HEX = "0123456789abcdef"


def test_parse_reads_the_four_fields():
    ctx = tracecontext.parse(VALID)
    assert ctx == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
    assert ctx.sampled
    assert not tracecontext.parse(VALID[:-2] + "00").sampled


def test_surrounding_whitespace_is_tolerated():
    assert tracecontext.parse(f"  {VALID}\t").trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "expected 00-"),
        ("garbage", "expected 00-"),
        (VALID.upper(), "expected 00-"),  # uppercase hex is not allowed
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "expected 00-"),  # 31 hex
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "trace-id is all zeros"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "parent-id is all zeros"),
        ("ff" + VALID[2:], "version ff"),
        (VALID + "-extra", "exactly four fields"),
        ("01" + VALID[2:] + "x", "separated by '-'"),
    ],
)
def test_invalid_headers_are_refused_with_a_reason(header, reason):
    with pytest.raises(InvalidTraceparent, match=re.escape(reason)):
        tracecontext.parse(header)


def test_a_future_version_may_append_fields():
    ctx = tracecontext.parse("01" + VALID[2:] + "-what-comes-next")
    assert ctx.span_id == "00f067aa0ba902b7"


def test_new_trace_is_valid_and_sampled():
    ctx = tracecontext.new_trace()
    assert re.fullmatch(r"[0-9a-f]{32}", ctx.trace_id)
    assert re.fullmatch(r"[0-9a-f]{16}", ctx.span_id)
    assert ctx.trace_flags == "01"
    assert tracecontext.parse(ctx.to_header()) == TraceContext(ctx.trace_id, ctx.span_id, "01")


def test_child_keeps_the_trace_and_flags_with_a_new_span_parented_by_this_one():
    parent = tracecontext.parse(VALID[:-2] + "00")
    child = parent.child()
    assert child.trace_id == parent.trace_id
    assert child.trace_flags == "00"
    assert child.span_id != parent.span_id
    assert child.parent_span_id == parent.span_id
    assert child.to_header().startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


def test_continue_or_start():
    ctx, problem = tracecontext.continue_or_start(VALID)
    assert (ctx.trace_id, ctx.parent_span_id, problem) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        None,
    )
    fresh, problem = tracecontext.continue_or_start(None)
    assert problem is None and fresh.parent_span_id is None
    restarted, problem = tracecontext.continue_or_start("00-nope")
    assert problem and restarted.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


hex_string = lambda n: st.text(HEX, min_size=n, max_size=n)  # noqa: E731


@given(hex_string(32), hex_string(16), hex_string(2))
def test_every_valid_header_round_trips(trace_id, span_id, flags):
    header = f"00-{trace_id}-{span_id}-{flags}"
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        with pytest.raises(InvalidTraceparent):
            tracecontext.parse(header)
    else:
        assert tracecontext.parse(header).to_header() == header


@given(st.text(max_size=80))
def test_any_text_is_either_parsed_or_refused_never_a_crash(header):
    try:
        ctx = tracecontext.parse(header)
    except InvalidTraceparent:
        return
    assert re.fullmatch(r"[0-9a-f]{32}", ctx.trace_id)
