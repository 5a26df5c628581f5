"""The log chain: slog-shaped keys, levels, one line per event, bridging, redaction, sampling."""

import io
import json
import logging
import re
import subprocess
import sys

import pytest

from bookstore import cardnumbers, logs, logschema, redaction, sampling

TRACE = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "trace_flags": "01",
    "request_id": "req-1",
}
REQUEST = {**TRACE, "method": "GET", "route": "/books", "duration_ms": 1.5}


class CountingStream(io.StringIO):
    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


@pytest.fixture
def capture():
    """Configure the chain into a buffer; returns a function giving the parsed lines so far."""
    stream = CountingStream()

    def setup(**options):
        logs.configure(options.pop("service", "catalog"), stream=stream, **options)
        return lines

    def lines():
        text = stream.getvalue()
        return [json.loads(line) for line in text.splitlines()]

    setup.stream = stream
    yield setup
    logs.configure("bookstore", stream=io.StringIO())


def test_a_line_has_slog_keys_first_and_validates(capture):
    lines = capture(service="orders")
    logs.get_logger().info(
        "order placed", order_id="ord-0123456789abcdef", book_id=1, qty=2, **TRACE
    )
    [line] = lines()
    assert list(line)[:4] == ["time", "level", "msg", "service"]
    assert (line["level"], line["msg"], line["service"]) == ("INFO", "order placed", "orders")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["time"])
    assert logschema.validate_line(line) == []


def test_fields_named_like_contract_keys_do_not_overwrite_them(capture):
    lines = capture(service="orders")
    logs.get_logger().info("real message", msg="imposter", time="yesterday", service="fake")
    [line] = lines()
    assert (line["msg"], line["field_msg"], line["field_time"]) == (
        "real message",
        "imposter",
        "yesterday",
    )
    assert line["service"] == "orders" and logschema.validate_line(line) == []


def test_each_line_is_flushed_as_it_is_written(capture):
    capture()
    for n in range(3):
        logs.get_logger().info("tick", n=n)
    assert capture.stream.flushes == 3


@pytest.mark.parametrize(
    ("method", "level"),
    [("debug", "DEBUG"), ("info", "INFO"), ("warning", "WARN"), ("error", "ERROR")],
)
def test_logger_levels_use_slog_names(capture, method, level):
    lines = capture(level="DEBUG")
    getattr(logs.get_logger(), method)("x")
    assert lines()[0]["level"] == level


@pytest.mark.parametrize(
    ("stdlib_level", "level"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARN"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "ERROR"),
    ],
)
def test_stdlib_records_are_bridged_with_slog_levels(capture, stdlib_level, level):
    lines = capture(level="DEBUG")
    logging.getLogger("uvicorn.error").log(stdlib_level, "Started server process [%d]", 42)
    [line] = lines()
    assert line["level"] == level
    assert line["msg"] == "Started server process [42]"
    assert line["logger"] == "uvicorn.error"


def test_a_traceback_sent_as_a_message_becomes_stack_and_error_fields(capture):
    # uvicorn logs a failed startup this way: the whole traceback as the message.
    lines = capture()
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nPermissionError: denied'
    logging.getLogger("uvicorn.error").error(trace)
    [line] = lines()
    assert (line["msg"], line["error_type"], line["stack"]) == (
        "PermissionError: denied",
        "PermissionError",
        trace,
    )
    assert logschema.validate_line(line) == []


def test_log_level_filters_both_our_logger_and_stdlib(capture):
    lines = capture(level="WARN")
    logs.get_logger().info("dropped")
    logging.getLogger("uvicorn.error").info("dropped too")
    logs.get_logger().warning("kept")
    assert [line["msg"] for line in lines()] == ["kept"]


def test_warnings_and_uncaught_exceptions_of_a_process_are_json_on_stdout():
    # A real process: pytest's own warning capture would hide what happens in production.
    code = (
        "import warnings\n"
        "from bookstore import logs\n"
        "logs.configure('catalog')\n"
        "warnings.warn('old API', UserWarning)\n"
        "raise RuntimeError('boom')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert result.stderr == "", "nothing may bypass the JSON log on stderr"
    warn, crash = (json.loads(line) for line in result.stdout.splitlines())
    assert (warn["level"], warn["logger"]) == ("WARN", "py.warnings")
    assert "UserWarning: old API" in warn["msg"]
    assert (crash["level"], crash["msg"], crash["error_type"]) == (
        "ERROR",
        "uncaught exception",
        "RuntimeError",
    )
    assert logschema.invalid_lines(result.stdout.splitlines()) == []


def test_an_exception_is_one_line_with_error_fields(capture):
    capture()
    try:
        {}["missing"]
    except KeyError:
        logs.get_logger().exception("lookup failed")
    text = capture.stream.getvalue()
    assert text.count("\n") == 1
    line = json.loads(text)
    assert line["level"] == "ERROR"
    assert line["error_type"] == "KeyError"
    assert line["stack"].startswith("Traceback (most recent call last):")
    assert "\n" in line["stack"]  # many lines of trace, inside one JSON string
    assert logschema.validate_line(text) == []


def test_parse_level_accepts_aliases_and_explains_bad_values():
    assert logs.parse_level("warning") == "WARN"
    assert logs.parse_level(None) == "INFO"
    with pytest.raises(ValueError, match="LOG_LEVEL='loud' is not one of DEBUG, INFO, WARN, ERROR"):
        logs.parse_level("loud")


# --- redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",  # Visa test number
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",  # Amex, 15 digits
        "6011111111111117",
        "4222222222222",  # 13 digits
    ],
)
def test_luhn_valid_card_numbers_are_masked_anywhere_in_text(number):
    assert redaction.redact_text(f"paid with {number} today") == "paid with [REDACTED] today"


@pytest.mark.parametrize(
    "text",
    [
        "1234567890123",  # 13 digits that fail the Luhn check
        "order 12345 of 2026",  # too short
        "20261201143000",  # 14 digits, no window passes Luhn (tests/test_redaction.py: windows)
        "phone 030 1234 5678",
    ],
)
def test_digit_runs_that_are_not_card_numbers_stay(text):
    assert redaction.redact_text(text) == text


def test_luhn():
    assert cardnumbers.luhn_valid("79927398713")
    assert not cardnumbers.luhn_valid("79927398710")


def test_sensitive_keys_are_masked_at_any_depth_and_in_any_case():
    body = {
        "Password": "hunter2",
        "user": {"name": "ann", "API-Key": "k", "db_password": "p", "tokens": ["a"]},
        "payment": [{"card_number": "1", "CVV": 737}],
        "authorization": "Bearer abc",
        "book_id": 4111111111111111,
    }
    assert redaction.redact_value(body) == {
        "Password": "[REDACTED]",
        "user": {
            "name": "ann",
            "API-Key": "[REDACTED]",
            "db_password": "[REDACTED]",
            "tokens": "[REDACTED]",  # plural keys too, whatever is under them
        },
        "payment": [{"card_number": "[REDACTED]", "CVV": "[REDACTED]"}],
        "authorization": "[REDACTED]",
        "book_id": "[REDACTED]",  # a card number sent as a JSON number
    }
    assert body["Password"] == "hunter2", "the caller's object is not modified"


def test_secrets_inside_free_text_are_masked():
    text = 'GET /login?user=ann&password=hunter2 token: abc123 {"api_key": "k-9"} Bearer xyz.789'
    masked = redaction.redact_text(text)
    for secret in ("hunter2", "abc123", "k-9", "xyz.789"):
        assert secret not in masked
    assert "user=ann" in masked


def test_the_chain_redacts_fields_and_messages_but_not_our_ids(capture):
    lines = capture()
    trace_with_digits = {**TRACE, "trace_id": "4111111111111111" + "a" * 16}
    logs.get_logger().warning(
        "card 4111 1111 1111 1111 declined",
        password="hunter2",
        body={"payment": {"card_number": "5555555555554444"}},
        **trace_with_digits,
    )
    text = capture.stream.getvalue()
    assert "hunter2" not in text and "5555555555554444" not in text and "4111 1111" not in text
    [line] = lines()
    assert line["trace_id"] == trace_with_digits["trace_id"]


# --- sampling ----------------------------------------------------------------------------


def test_rate_zero_drops_only_successful_request_lines(capture):
    lines = capture(sample_rate=0.0)
    log = logs.get_logger()
    log.info("request completed", status=200, **REQUEST)
    log.info("request completed", status=302, **REQUEST)
    log.warning("request completed", status=404, **REQUEST)
    log.error("request completed", status=503, **REQUEST)
    log.info("order placed", order_id="ord-0123456789abcdef", book_id=1, qty=1, **TRACE)
    log.info("catalog listening")
    assert [(line["msg"], line.get("status")) for line in lines()] == [
        ("request completed", 404),
        ("request completed", 503),
        ("order placed", None),
        ("catalog listening", None),
    ]


def test_a_status_given_as_http_status_is_sampled_like_an_int(capture):
    # Starlette keeps a Response's status_code as given: HTTPStatus.NO_CONTENT is an IntEnum.
    from http import HTTPStatus

    lines = capture(sample_rate=0.0)
    route = {"method": "DELETE", "route": "/books/{book_id}", "duration_ms": 1.0}
    logs.request_line("info", status=HTTPStatus.NO_CONTENT, **route)
    logs.request_line("warning", status=HTTPStatus.NOT_FOUND, **route)
    assert [line["status"] for line in lines()] == [404]


def test_rate_one_keeps_every_request_line(capture):
    lines = capture(sample_rate=1.0)
    for _ in range(50):
        logs.get_logger().info("request completed", status=200, **REQUEST)
    assert len(lines()) == 50


def test_sampling_by_trace_id_is_deterministic_and_shared_across_services():
    catalog_keep, orders_keep = sampling.by_trace_id(0.25), sampling.by_trace_id(0.25)
    trace_ids = [f"{n:032x}" for n in range(0, 2**56, 2**56 // 1000 + 1)]
    assert len(trace_ids) == 1000
    kept = [t for t in trace_ids if catalog_keep(t)]
    assert kept == [t for t in trace_ids if orders_keep(t)]
    assert len(kept) == 250  # evenly spread ids: exactly the rate


def test_sampling_keeps_about_the_rate_of_random_traces():
    keep = sampling.by_trace_id(0.1)
    from bookstore.tracecontext import new_trace_id

    kept = sum(keep(new_trace_id()) for _ in range(20_000))
    assert 1600 < kept < 2400


def test_a_custom_keep_function_is_honoured(capture):
    lines = capture(sample_rate=0.5, keep_trace=lambda trace_id: trace_id.endswith("6"))
    logs.get_logger().info("request completed", status=200, **REQUEST)
    logs.get_logger().info("request completed", status=200, **{**REQUEST, "trace_id": "1" * 32})
    assert [line["trace_id"] for line in lines()] == [REQUEST["trace_id"]]


@pytest.mark.parametrize("value", ["2", "-0.1", "half"])
def test_sample_rate_errors_explain_the_range(value):
    with pytest.raises(ValueError, match="LOG_SAMPLE_RATE"):
        sampling.parse_rate(value)


# --- schema ------------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12():
    from jsonschema import Draft202012Validator

    schema = logschema.load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


BASE = {"time": "2026-01-02T03:04:05.123456Z", "level": "INFO", "msg": "x", "service": "catalog"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({**BASE, "level": "WARNING"}, "level: 'WARNING' is not one of"),
        (
            {**BASE, "time": "2026-01-02T03:04:05+00:00"},
            "time: '2026-01-02T03:04:05+00:00' does not match",
        ),
        ({k: v for k, v in BASE.items() if k != "msg"}, "'msg' is a required property"),
        ({**BASE, **TRACE, "trace_id": "ABC"}, "trace_id: 'ABC' does not match"),
        ({**BASE, **TRACE, "trace_id": "0" * 32}, "trace_id:"),
        ({**BASE, "status": 200}, "'duration_ms' is a required property (A request line"),
        ({**BASE, "trace_id": TRACE["trace_id"]}, "'span_id' is a required property"),
        ({**BASE, "error_type": "KeyError"}, "'error' is a required property"),
        (
            {**BASE, "error": "x", "error_type": "DatabaseConnectionError"},
            "'retry_attempt' is a required property",
        ),
        ({**BASE, "msg": "order placed", **TRACE}, "'order_id' is a required property"),
        ({**BASE, **REQUEST, "status": 99}, "status: 99 is less than the minimum"),
    ],
)
def test_validate_line_explains_each_violation(line, problem):
    errors = logschema.validate_line(json.dumps(line))
    assert any(problem in error for error in errors), errors


def test_validate_line_refuses_non_json_and_multi_line_text():
    assert logschema.validate_line("Traceback (most recent call last):")[0].startswith("not JSON")
    assert "newline" in logschema.validate_line('{"a": 1}\n{"b": 2}')[0]
    assert logschema.validate_line("[1]") == ["expected a JSON object, got list"]


def test_invalid_lines_numbers_the_offenders():
    good = json.dumps(BASE)
    assert logschema.invalid_lines([good, "oops", good]) == [
        "line 2: not JSON (Expecting value at column 1): 'oops'"
    ]


# --- what a client can smuggle into a line -----------------------------------------------


def test_hostile_values_still_give_one_valid_json_line(capture):
    lines = capture()
    body = json.loads(
        '{"id": "\\ud800", "\\udc00": "a\\u2028b\\u0085c\\u2029", "n": 1' + "0" * 30 + "}"
    )
    logs.get_logger().warning("request rejected", body=body, reason="line\u2028break")
    text = capture.stream.getvalue()
    assert len(text.splitlines()) == 1, "U+2028/U+0085 would split the line for some readers"
    assert logschema.validate_line(text) == []
    [line] = lines()
    assert line["body"]["n"] == "1" + "0" * 30  # beyond 64 bits: written as text, not lost
    assert line["body"]["id"] == "\\ud800"  # a lone surrogate, kept visible


class Hostile:
    def __str__(self):
        raise RuntimeError("no text for you")


def test_a_field_that_cannot_be_read_is_replaced_and_the_line_kept(capture):
    lines = capture()
    logs.get_logger().info("stock reserved", thing=Hostile(), book_id=1)
    [line] = lines()
    assert (line["msg"], line["thing"], line["book_id"]) == (
        "stock reserved",
        "[UNREADABLE: RuntimeError]",
        1,
    )


def test_a_line_that_cannot_be_rendered_becomes_an_error_line():
    render = logs._renderer("catalog")
    text = render("INFO", "order placed", {"thing": Hostile()})
    line = json.loads(text)
    assert (line["level"], line["msg"], line["lost_msg"], line["error_type"]) == (
        "ERROR",
        "a log line could not be rendered",
        "order placed",
        "TypeError",  # orjson reports the failing default=str as a TypeError
    )
    assert logschema.validate_line(text) == []


# --- the request line's shorter way -------------------------------------------------------
def test_request_line_writes_the_same_line_as_the_full_chain(capture):
    lines = capture()
    token = logs.bind_request(TRACE)
    try:
        logs.request_line("info", method="GET", route="/books", status=200, duration_ms=1.5)
        logs.get_logger().info(
            "request completed", method="GET", route="/books", status=200, duration_ms=1.5
        )
    finally:
        logs.unbind_request(token)
    short, full = lines()
    short.pop("time"), full.pop("time")
    assert short == full
    assert list(short) == list(full), "same keys in the same order"


def test_request_line_with_a_field_of_request_data_takes_the_redacting_chain(capture):
    lines = capture()
    logs.request_line(
        "warning",
        method="POST",
        route="/orders",
        status=408,
        duration_ms=1.0,
        reason="password=hunter2, card 4111 1111 1111 1111",
    )
    [line] = lines()
    assert line["reason"] == "password=[REDACTED], card [REDACTED]"


def test_request_line_honours_level_and_sampling(capture):
    lines = capture(level="WARN", keep_trace=lambda trace_id: False)
    logs.request_line("info", method="GET", route="/books", status=200, duration_ms=1.0)
    logs.request_line("debug", method="GET", route="/healthz", status=200, duration_ms=1.0)
    assert lines() == []
    lines = capture(level="DEBUG", keep_trace=lambda trace_id: False)
    logs.request_line("info", method="GET", route="/books", status=200, duration_ms=1.0)
    logs.request_line("warning", method="GET", route="/books", status=404, duration_ms=1.0)
    assert [line["status"] for line in lines()] == [404], "only the successful line is sampled"


# --- the writer: one os.write per line on a descriptor ------------------------------------
def test_lines_on_a_file_are_on_disk_at_once_without_a_flush_or_close(tmp_path):
    path = tmp_path / "stdout.log"
    with path.open("w", encoding="utf-8") as stream:
        stream.write("before\n")  # buffered text written earlier must not be overtaken
        logs.configure("catalog", stream=stream)
        logs.get_logger().info("order placed", order_id="ord-0123456789abcdef", note="café")
        first, second = path.read_text(encoding="utf-8").splitlines()
        assert first == "before"
        line = json.loads(second)
        assert (line["msg"], line["note"]) == ("order placed", "café")
    logs.configure("bookstore", stream=io.StringIO())


def test_text_printed_to_the_stream_after_configure_keeps_its_place(tmp_path):
    # print() writes the text and its newline separately: a long text goes out at once and
    # its newline waits in the buffer, so a line written past the buffer was glued to it.
    path = tmp_path / "stdout.log"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure("catalog", stream=stream)
        print("a" * 9000, file=stream)
        logs.get_logger().info("after a long print")
        print("short", file=stream)
        logs.get_logger().info("after a short print")
    logs.configure("bookstore", stream=io.StringIO())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "a" * 9000 and lines[2] == "short"
    assert [json.loads(lines[i])["msg"] for i in (1, 3)] == [
        "after a long print",
        "after a short print",
    ]


def test_a_line_after_the_stream_is_closed_never_lands_in_another_file(tmp_path):
    # Closing the stream frees its descriptor number; the next open() takes it. Writing to the
    # remembered number would put the line into that unrelated file.
    stream = (tmp_path / "stdout.log").open("w", encoding="utf-8")
    logs.configure("catalog", stream=stream)
    stream.close()
    with (tmp_path / "data.json").open("w", encoding="utf-8") as data:
        with pytest.raises(ValueError):
            logs.get_logger().info("after close")
        data.write("{}\n")
    logs.configure("bookstore", stream=io.StringIO())
    assert (tmp_path / "data.json").read_text(encoding="utf-8") == "{}\n"


def log_through_a_pipe(
    emit, *, non_blocking: bool = False, prefill: int = 0, reader_delay: float = 0.0
) -> list[str]:
    """Configure the chain on the write end of a real pipe, call `emit()`, and return the lines
    a reader thread (starting after `reader_delay` s) got from the read end. `prefill` bytes
    (one line) are written first, to leave the pipe nearly full."""
    import os
    import threading
    import time

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, not non_blocking)
    if prefill:
        os.write(write_fd, b"x" * (prefill - 1) + b"\n")
    received = bytearray()

    def drain():
        time.sleep(reader_delay)
        while chunk := os.read(read_fd, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(write_fd, "w", encoding="utf-8") as stream:
        logs.configure("catalog", stream=stream)
        emit()
    logs.configure("bookstore", stream=io.StringIO())
    reader.join(timeout=10)
    os.close(read_fd)
    return received.decode().splitlines()


def test_a_line_longer_than_a_pipe_buffer_arrives_whole():
    # A pipe takes at most its buffer (64 KiB on Linux) per write while nobody reads: the
    # writer must finish the line, not drop its tail.
    [line] = log_through_a_pipe(lambda: logs.get_logger().info("big", blob="x" * 300_000))
    assert len(json.loads(line)["blob"]) == 300_000


def test_a_full_non_blocking_pipe_delays_a_line_but_keeps_it_whole():
    # A parent may leave stdout non-blocking: a full pipe then refuses a write (EAGAIN) or
    # takes part of it. The writer waits for the reader, as on a blocking pipe.
    import fcntl
    import os

    read_fd, write_fd = os.pipe()  # a new pipe has the size the logging pipe will have
    size = fcntl.fcntl(write_fd, 1032)  # F_GETPIPE_SZ (Linux)
    os.close(read_fd)
    os.close(write_fd)

    def emit():
        logs.get_logger().info("big", blob="y" * 20_000)
        logs.get_logger().info("next")

    # Room for 8 KiB, not for the line.
    lines = log_through_a_pipe(emit, non_blocking=True, prefill=size - 8192, reader_delay=0.2)
    big, following = (json.loads(line) for line in lines[1:])
    assert (len(big["blob"]), following["msg"]) == (20_000, "next")


def test_threads_writing_at_once_never_interleave_lines(tmp_path):
    import threading

    path = tmp_path / "stdout.log"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure("catalog", stream=stream)

        def burst(n):
            for i in range(200):
                logs.get_logger().info("tick", thread=n, i=i, pad="y" * 5000)

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    logs.configure("bookstore", stream=io.StringIO())
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    assert len(lines) == 800 and {(x["thread"], x["i"]) for x in lines} == {
        (n, i) for n in range(4) for i in range(200)
    }


def test_the_logger_binds_fields_and_formats_percent_arguments(capture):
    lines = capture(level="DEBUG")
    log = logs.get_logger(component="reservations").bind(book_id=3)
    log.debug("reserved %d of %s", 2, "dune", qty=2)
    log.warn("low stock")
    logs.get_logger().info("plain")  # binding made a new logger; the process logger is unchanged
    [first, second, third] = lines()
    assert (first["level"], first["msg"], first["component"], first["book_id"]) == (
        "DEBUG",
        "reserved 2 of dune",
        "reservations",
        3,
    )
    assert (second["level"], second["book_id"]) == ("WARN", 3)
    assert "component" not in third and "book_id" not in third


def test_a_message_whose_arguments_do_not_fit_its_format_is_still_written(capture):
    lines = capture()
    logs.get_logger().info("reserved %d books", "two")
    logs.get_logger().info("no placeholder", 1)
    first, second = lines()
    assert (first["msg"], first["args"]) == ("reserved %d books", ["two"])
    assert (second["msg"], second["args"]) == ("no placeholder", ["1"])


def test_fields_named_message_or_event_are_fields_and_a_bad_message_object_is_survived(capture):
    lines = capture()

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    logs.get_logger().warning("catalog said no", message="out of stock", event="reserve")
    logs.get_logger().info(Unprintable())
    first, second = lines()
    assert (first["msg"], first["message"], first["event"]) == (
        "catalog said no",
        "out of stock",
        "reserve",
    )
    assert second["msg"] == "[UNREADABLE: RuntimeError]"


def test_a_field_named_message_is_a_field_not_a_second_message(capture):
    lines = capture()
    log = logs.get_logger()
    log.info("client error", message="password=hunter2")
    log.bind(step=1).warning("bound", message="m")
    try:
        raise ValueError("v")
    except ValueError:
        log.exception("failed", message="m")
    first, second, third = lines()
    assert (first["msg"], first["message"]) == ("client error", "password=[REDACTED]")
    assert (second["msg"], second["message"], second["step"]) == ("bound", "m", 1)
    assert (third["msg"], third["message"], third["error_type"]) == ("failed", "m", "ValueError")
