"""Both services as real processes on loopback: their actual stdout, read line by line.

One module-scoped run starts catalog and orders, drives a realistic mix (loadgen plus targeted
requests), stops both with SIGTERM and keeps everything they wrote; each test asserts one
promise of the log contract on that output. A few tests need processes of their own
(sampling, bad configuration, a port in use, SIGTERM with a request in flight).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bookstore import logschema, sampling, tracecontext

pytestmark = pytest.mark.timeout(120)
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
SECRETS = ("4111 1111 1111 1111", "5105105105105100", "hunter2-secret", "sk_live_abc123")
COUNTED = 25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    url: str
    stdout: Path
    stderr: Path

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.raw_lines()]

    def raw_lines(self) -> list[str]:
        return self.stdout.read_text().splitlines()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start(name: str, workdir: Path, wait_ready: bool = True, **env: str) -> Service:
    port = env.pop("PORT", None) or str(free_port())
    stdout, stderr = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    process = subprocess.Popen(
        [sys.executable, "-m", "bookstore", name],
        env={
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": port,
            "DATA_DIR": str(workdir / f"{name}-data"),
            **env,
        },
        stdout=stdout.open("wb"),
        stderr=stderr.open("wb"),
    )
    service = Service(name, process, f"http://127.0.0.1:{port}", stdout, stderr)
    if wait_ready:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{stdout.read_text()}")
            try:
                if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        service.stop()
        pytest.fail(f"{name} not ready within 30 s; stdout:\n{stdout.read_text()}")
    return service


@dataclass
class Run:
    catalog: Service
    orders: Service
    loadgen: subprocess.CompletedProcess
    traced_order: httpx.Response
    fault: httpx.Response
    exit_codes: tuple[int, int]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    workdir = tmp_path_factory.mktemp("bookstore")
    catalog = start("catalog", workdir)
    orders = start("orders", workdir, CATALOG_URL=catalog.url)
    try:
        loadgen = subprocess.run(
            [
                sys.executable,
                "-m",
                "bookstore",
                "loadgen",
                f"--catalog-url={catalog.url}",
                f"--orders-url={orders.url}",
                "--requests=120",
                "--seed=7",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        with httpx.Client(timeout=10) as client:
            for n in range(COUNTED):
                client.get(f"{catalog.url}/books", headers={"X-Request-ID": f"counted-{n}"})
            traced_order = client.post(
                f"{orders.url}/orders",
                json={"book_id": 5, "qty": 1},
                headers={"traceparent": TRACEPARENT},
            )
            client.post(
                f"{orders.url}/orders",
                json={
                    "book_id": 1,
                    "qty": -2,
                    "card_number": SECRETS[0],
                    "billing": {"pan": SECRETS[1], "password": SECRETS[2]},
                    "api_key": SECRETS[3],
                },
                headers={"Authorization": f"Bearer {SECRETS[3]}"},
            )
            client.post(f"{orders.url}/orders", content=b"{not json")
            fault = client.post(
                f"{orders.url}/orders",
                json={"book_id": 2, "qty": 1},
                headers={"X-Inject-Fault": "database"},
            )
    finally:
        exit_codes = (orders.stop(), catalog.stop())
    return Run(catalog, orders, loadgen, traced_order, fault, exit_codes)


def test_every_stdout_line_validates_and_nothing_goes_to_stderr(run):
    for service in (run.catalog, run.orders):
        assert logschema.invalid_lines(service.raw_lines()) == [], service.name
        assert service.stderr.read_text() == "", f"{service.name} wrote to stderr"
    assert len(run.catalog.raw_lines()) > 150


def test_loadgen_succeeded_and_reported_one_valid_summary_line(run):
    assert run.loadgen.returncode == 0, run.loadgen.stdout
    summary = json.loads(run.loadgen.stdout.splitlines()[-1])
    assert logschema.validate_line(summary) == []
    assert summary["msg"] == "loadgen finished" and summary["service"] == "loadgen"
    assert summary["succeeded"] > 0 and summary["unexpected_5xx"] == 0
    assert set(summary["by_kind"]) == {
        "list_books",
        "get_book",
        "reserve",
        "place_order",
        "get_order",
        "invalid",
        "fault",
    }


def test_n_requests_give_n_request_lines_at_sample_rate_1(run):
    counted = [
        line
        for line in run.catalog.lines()
        if line.get("msg") == "request completed" and line["request_id"].startswith("counted-")
    ]
    assert sorted(line["request_id"] for line in counted) == sorted(
        f"counted-{n}" for n in range(COUNTED)
    )
    assert {(line["route"], line["status"], line["level"]) for line in counted} == {
        ("/books", 200, "INFO")
    }


def test_a_given_traceparent_is_honoured_and_shared_by_both_services(run):
    assert run.traced_order.status_code == 201
    assert run.traced_order.headers["x-trace-id"] == TRACE_ID
    orders_lines = [line for line in run.orders.lines() if line.get("trace_id") == TRACE_ID]
    catalog_lines = [line for line in run.catalog.lines() if line.get("trace_id") == TRACE_ID]
    [placed] = [line for line in orders_lines if line["msg"] == "order placed"]
    assert placed["order_id"] == run.traced_order.json()["order_id"]
    assert placed["parent_span_id"] == "b7ad6b7169203331"
    assert {line["msg"] for line in catalog_lines} == {"stock reserved", "request completed"}
    # caller's span -> orders' span -> catalog's span: each service names its parent.
    assert {line["parent_span_id"] for line in catalog_lines} == {placed["span_id"]}
    assert catalog_lines[0]["span_id"] != placed["span_id"]
    assert {line["request_id"] for line in orders_lines + catalog_lines} == {placed["request_id"]}


def test_every_order_placed_shares_its_trace_with_a_catalog_reservation(run):
    placed = [line for line in run.orders.lines() if line["msg"] == "order placed"]
    reserved = {line["trace_id"] for line in run.catalog.lines() if line["msg"] == "stock reserved"}
    assert len(placed) > 10
    assert {line["trace_id"] for line in placed} <= reserved


def test_faults_give_error_lines_with_error_type_in_both_services(run):
    assert run.fault.status_code == 503
    trace_id = run.fault.headers["x-trace-id"]
    for service in (run.catalog, run.orders):
        errors = [
            line
            for line in service.lines()
            if line["level"] == "ERROR"
            and line.get("trace_id") == trace_id
            and "error_type" in line
        ]
        assert errors, f"{service.name} logged no ERROR with error_type for the fault"
        assert errors[0]["error_type"] == "DatabaseConnectionError"
        assert errors[0]["retry_attempt"] == 3
    [catalog_error] = [
        line
        for line in run.catalog.lines()
        if line.get("trace_id") == trace_id and line["msg"] == "Database connection failed"
    ]
    assert "Traceback" in catalog_error["stack"]


def test_no_secret_reaches_stdout(run):
    text = run.catalog.stdout.read_text() + run.orders.stdout.read_text()
    for secret in SECRETS:
        assert secret not in text
    rejected = [
        line
        for line in run.orders.lines()
        if line["msg"] == "request rejected" and isinstance(line.get("body"), dict)
    ]
    assert any(line["body"].get("card_number") == "[REDACTED]" for line in rejected)


def test_bad_input_is_4xx_with_warn_never_5xx(run):
    for service in (run.catalog, run.orders):
        for line in service.lines():
            if line.get("msg") != "request completed" or line["status"] < 500:
                continue
            # The only 5xx in this run come from injected database faults.
            assert line["status"] == 503, line
    malformed = [
        line
        for line in run.orders.lines()
        if line.get("msg") == "request rejected" and "not valid JSON" in line["reason"]
    ]
    assert malformed and malformed[0]["level"] == "WARN"


def test_sigterm_ends_with_a_final_line_and_exit_0(run):
    assert run.exit_codes == (0, 0)
    for service in (run.catalog, run.orders):
        last = service.lines()[-1]
        assert (last["msg"], last["signal"]) == ("shutdown complete", "SIGTERM")
    assert any(line["msg"] == "catalog listening" for line in run.catalog.lines())


def test_sigterm_lets_an_in_flight_request_finish(tmp_path):
    """orders is mid-call to a slow catalog when SIGTERM arrives: the order still completes."""
    arrived, release = threading.Event(), threading.Event()

    class SlowCatalog(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            release.wait(10)
            body = b'{"book_id": 1, "reserved": 1, "remaining": 9}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowCatalog)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    orders = start(
        "orders",
        tmp_path,
        CATALOG_URL=f"http://127.0.0.1:{fake.server_address[1]}",
        CATALOG_TIMEOUT="10",
    )
    result: dict = {}

    def place():
        result["response"] = httpx.post(
            f"{orders.url}/orders", json={"book_id": 1, "qty": 1}, timeout=15
        )

    client = threading.Thread(target=place)
    client.start()
    try:
        assert arrived.wait(10), "orders never called the fake catalog"
        orders.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # give the signal time to land while the request is still in flight
        release.set()
        client.join(15)
        assert orders.process.wait(timeout=30) == 0
    finally:
        release.set()
        fake.shutdown()
        orders.stop()
    assert result["response"].status_code == 201
    messages = [line["msg"] for line in orders.lines()]
    assert messages.index("Shutting down") < messages.index("order placed")
    assert messages[-1] == "shutdown complete"


def test_catalog_down_is_a_503_with_an_error_line_naming_the_cause(tmp_path):
    nothing_there = f"http://127.0.0.1:{free_port()}"
    orders = start("orders", tmp_path, CATALOG_URL=nothing_there)
    with httpx.Client(timeout=10) as client:
        response = client.post(f"{orders.url}/orders", json={"book_id": 1, "qty": 1})
        ready = client.get(f"{orders.url}/readyz")
    assert orders.stop() == 0
    assert response.status_code == 503
    assert response.json()["error"] == "catalog_unavailable"
    assert ready.status_code == 200, "orders stays in its Service while catalog is down"
    [error] = [line for line in orders.lines() if line["msg"] == "catalog call failed"]
    assert (error["level"], error["error_type"], error["catalog_url"]) == (
        "ERROR",
        "ConnectError",
        nothing_there,
    )
    assert logschema.invalid_lines(orders.raw_lines()) == []


def test_sample_rate_zero_keeps_only_unsuccessful_request_lines(tmp_path):
    catalog = start("catalog", tmp_path, LOG_SAMPLE_RATE="0")
    with httpx.Client(timeout=10) as client:
        for _ in range(10):
            assert client.get(f"{catalog.url}/books").status_code == 200
        assert client.get(f"{catalog.url}/books/0").status_code == 404
        assert client.post(f"{catalog.url}/books/1/reserve", json={"qty": 0}).status_code == 422
    assert catalog.stop() == 0
    request_lines = [line for line in catalog.lines() if line["msg"] == "request completed"]
    assert [(line["status"], line["level"]) for line in request_lines] == [
        (404, "WARN"),
        (422, "WARN"),
    ]


def test_sampling_by_trace_id_keeps_or_drops_a_request_in_both_services(tmp_path):
    catalog = start("catalog", tmp_path, LOG_SAMPLE_RATE="0.5")
    orders = start("orders", tmp_path, CATALOG_URL=catalog.url, LOG_SAMPLE_RATE="0.5")
    traces = [tracecontext.new_trace() for _ in range(40)]
    with httpx.Client(timeout=10) as client:
        for trace in traces:
            response = client.post(
                f"{orders.url}/orders",
                json={"book_id": 3, "qty": 1},
                headers={"traceparent": trace.to_header()},
            )
            assert response.status_code == 201
    assert (orders.stop(), catalog.stop()) == (0, 0)

    def sampled(service: Service) -> set[str]:
        return {line["trace_id"] for line in service.lines() if line["msg"] == "request completed"}

    expected = {t.trace_id for t in traces if sampling.by_trace_id(0.5)(t.trace_id)}
    assert 0 < len(expected) < len(traces)
    assert sampled(orders) == sampled(catalog) == expected
    # Business events are never sampled: every order is still on record.
    placed = [line for line in orders.lines() if line["msg"] == "order placed"]
    assert len(placed) == len(traces)


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"PORT": "eighty"}, "PORT='eighty' is not a TCP port number"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose' is not one of"),
        ({"FAULT_RATE": "5"}, "FAULT_RATE must be between 0 and 1"),
        ({"CATALOG_URL": "catalog:8080"}, "CATALOG_URL='catalog:8080' must start with http://"),
        ({"DATA_DIR": "/proc/not-here"}, "DATA_DIR='/proc/not-here' is not a writable directory"),
    ],
)
def test_bad_configuration_stops_with_one_json_error(tmp_path, env, error):
    result = subprocess.run(
        [sys.executable, "-m", "bookstore", "orders"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    [line] = [json.loads(line) for line in result.stdout.splitlines()]
    assert line["level"] == "ERROR" and error in line["error"]
    assert logschema.validate_line(line) == []


def test_a_port_in_use_is_an_error_line_not_a_traceback(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        catalog = start("catalog", tmp_path, wait_ready=False, PORT=port)
        assert catalog.process.wait(timeout=30) == 1
    lines = catalog.lines()
    assert logschema.invalid_lines(catalog.raw_lines()) == []
    assert catalog.stderr.read_text() == ""
    assert lines[-1]["msg"] == "catalog did not start"
    assert any(line["level"] == "ERROR" and "address" in line["msg"] for line in lines)


def test_loadgen_fails_clearly_when_nothing_answers():
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bookstore",
            "loadgen",
            f"--catalog-url=http://127.0.0.1:{port}",
            f"--orders-url=http://127.0.0.1:{port}",
            "--requests=5",
            "--wait=1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    line = json.loads(result.stdout.splitlines()[-1])
    assert (line["level"], line["msg"]) == ("ERROR", "services not ready")


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"REQUESTS": "many"}, [], "argument --requests: invalid int value: 'many'"),
        ({}, ["--requests=0"], "--requests (env REQUESTS) must be at least 1"),
        ({}, ["--concurrency=0"], "--concurrency must be at least 1"),
    ],
)
def test_loadgen_bad_settings_are_usage_errors_not_tracebacks(env, args, expected):
    result = subprocess.run(
        [sys.executable, "-m", "bookstore", "loadgen", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **env},
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
