"""Hostile HTTP at the socket level, against real processes: no false error line, no hang.

A valid request head followed by malformed chunked data is answered 400 by uvicorn itself;
the app must then not answer again (that used to raise inside uvicorn and log an ERROR with a
stack, a `status: 500` request line and "ASGI callable returned without completing
response"). A body or a head that never finishes is answered 408 after READ_TIMEOUT and
closed, with one WARN line, and SIGTERM still ends well within the shutdown timeout while
such a client is connected. Raw sockets, because no HTTP client sends broken framing.
"""

from __future__ import annotations

import signal
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.test_bookstore_processes import Service, start

pytestmark = pytest.mark.timeout(120)

MALFORMED = {
    "GET, bad chunk size in the first packet": (
        b"GET /books HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        None,
    ),
    "POST, a good chunk then a bad one": (
        b"POST /books/1/reserve HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n3\r\n{}\n\r\nzz\r\n",
        None,
    ),
    "POST, bad chunk after the app started reading": (
        b"POST /books/1/reserve HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\n{}\r\nxx\r\n",
    ),
    "chunk longer than announced": (
        b"POST /books/1/reserve HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"3\r\nabcdef\r\n",
    ),
}


def connect(service: Service) -> socket.socket:
    address = urlsplit(service.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    sock.settimeout(10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def wait_for_lines(service: Service, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = service.lines()
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    return service.lines()


def assert_no_false_error(lines: list[dict]) -> None:
    for line in lines:
        assert line["level"] != "ERROR", line
        assert line.get("status") != 500, line
        assert "ASGI callable" not in line["msg"], line


@pytest.fixture
def catalog(tmp_path):
    service = start("catalog", tmp_path, READ_TIMEOUT="1")
    yield service
    service.stop()


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_chunked_data_gives_one_warn_line_and_no_error(catalog, case):
    head, later = MALFORMED[case]
    before = len(catalog.lines())
    with connect(catalog) as sock:
        sock.sendall(head)
        if later is not None:
            time.sleep(0.3)  # the app is now waiting for the body
            sock.sendall(later)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, "one answer only"
    time.sleep(0.3)  # let a (wrong) second line arrive if there is one
    new = wait_for_lines(catalog, before + 1)[before:]
    assert_no_false_error(new)
    warns = [line for line in new if line["level"] == "WARN"]
    assert len(warns) == 1, new
    [line] = warns
    assert line["msg"] == "request completed" and line["status"] == 400
    assert "malformed" in line["reason"]


def test_a_stalled_body_gets_408_closed_and_one_warn_line(catalog):
    before = len(catalog.lines())
    started = time.monotonic()
    with connect(catalog) as sock:
        sock.sendall(
            b"POST /books/1/reserve HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 40\r\n\r\n{"qty"'
        )
        answer = read_until_closed(sock)
    elapsed = time.monotonic() - started
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 408 ") and b"connection: close" in head, answer[:300]
    assert 0.9 <= elapsed < 8, elapsed
    new = wait_for_lines(catalog, before + 1)[before:]
    assert_no_false_error(new)
    [line] = [line for line in new if line["level"] == "WARN"]
    assert line["status"] == 408 and "did not arrive within 1 s" in line["reason"]


def test_a_stalled_head_gets_408_and_an_idle_connection_is_closed(catalog):
    before = len(catalog.lines())
    with connect(catalog) as partial, connect(catalog) as idle:
        partial.sendall(b"GET /books HTTP/1.1\r\nHost: t\r\n")
        assert read_until_closed(partial).startswith(b"HTTP/1.1 408 ")
        assert read_until_closed(idle) == b""
    new = wait_for_lines(catalog, before + 1)[before:]
    assert_no_false_error(new)
    [line] = new
    assert line["level"] == "WARN" and line["msg"].startswith("request head not received")
    assert "status" not in line, "not a request line: there was no request"


def test_sigterm_ends_in_time_with_stalled_clients_connected(tmp_path):
    # The shutdown timeout (Settings.shutdown_timeout) is 20 s; a stalled client may hold
    # shutdown for at most READ_TIMEOUT.
    catalog = start("catalog", tmp_path, READ_TIMEOUT="2")
    try:
        with connect(catalog) as body, connect(catalog) as head, connect(catalog) as idle:
            body.sendall(
                b"POST /books/1/reserve HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n{"
            )
            head.sendall(b"GET /books HTTP/1.1\r\n")
            idle.sendall(b"")
            time.sleep(0.3)  # the body request is now inside the app
            started = time.monotonic()
            catalog.process.send_signal(signal.SIGTERM)
            assert catalog.process.wait(timeout=15) == 0
            elapsed = time.monotonic() - started
    finally:
        catalog.stop()
    assert elapsed < 2 + 5, f"shutdown took {elapsed:.1f} s with stalled clients"
    lines = catalog.lines()
    assert_no_false_error(lines)
    assert lines[-1]["msg"] == "shutdown complete"
    assert catalog.stderr.read_text() == ""
