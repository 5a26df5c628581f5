"""Both services in-process (Starlette TestClient): behaviour of every endpoint and its log lines.

Orders reaches an in-process catalog through httpx's ASGI transport, or a MockTransport that
plays a broken catalog: the seam `orders.create_app(catalog_transport=...)`.
"""

import io
import json
from contextlib import contextmanager

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from bookstore import catalog, logs, logschema, orders
from bookstore.faults import FaultSwitch
from bookstore.settings import Settings

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Logs:
    """The lines the services wrote during a test (all of them checked against the schema)."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def all(self):
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def find(self, **fields):
        return [line for line in self.all() if all(line.get(k) == v for k, v in fields.items())]


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    logs.configure("bookstore", level="DEBUG", stream=stream)
    captured = Logs(stream)
    yield captured
    problems = logschema.invalid_lines(stream.getvalue().splitlines())
    logs.configure("bookstore", stream=io.StringIO())
    assert problems == [], "every line written must validate against log-schema.json"


@contextmanager
def services(tmp_path, catalog_transport=None, fault_rate=0.0):
    settings = Settings(data_dir=tmp_path, catalog_url="http://catalog.test")
    catalog_app = catalog.create_app(settings, FaultSwitch(fault_rate))
    with TestClient(catalog_app, raise_server_exceptions=False) as catalog_client:
        transport = catalog_transport or httpx.ASGITransport(app=catalog_app)
        orders_app = orders.create_app(settings, catalog_transport=transport)
        with TestClient(orders_app, raise_server_exceptions=False) as orders_client:
            yield catalog_client, orders_client


def test_catalog_lists_gets_and_reserves(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        books = cat.get("/books").json()
        assert books["count"] == len(books["books"]) == 8
        assert cat.get("/books/3").json()["title"] == "Kubernetes Up & Running"
        reserved = cat.post("/books/3/reserve", json={"qty": 2}).json()
        assert reserved == {"book_id": 3, "reserved": 2, "remaining": 4998}
        assert cat.get("/books/3").json()["stock"] == 4998
    assert (tmp_path / "reservations.jsonl").read_text().strip() == '{"book_id": 3, "qty": 2}'
    routes = [line["route"] for line in log_lines.find(msg="request completed")]
    assert routes == ["/books", "/books/{book_id}", "/books/{book_id}/reserve", "/books/{book_id}"]


def test_catalog_answers_409_when_stock_is_short(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        response = cat.post("/books/7/reserve", json={"qty": 4})
    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_stock"
    assert response.json()["available"] == 3
    [warn] = log_lines.find(msg="reservation refused: not enough stock")
    assert warn["level"] == "WARN" and warn["available"] == 3


def test_reservations_survive_a_restart(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        cat.post("/books/7/reserve", json={"qty": 2})
    with services(tmp_path) as (cat, _):
        assert cat.get("/books/7").json()["stock"] == 1
    assert log_lines.find(msg="catalog data loaded")[-1]["reservations_replayed"] == 1


def placed_span(log_lines):
    return log_lines.find(msg="order placed")[0]["span_id"]


def test_an_order_is_placed_recorded_and_readable(tmp_path, log_lines):
    with services(tmp_path) as (cat, orders_client):
        response = orders_client.post(
            "/orders",
            json={"book_id": 2, "qty": 3},
            headers={"traceparent": TRACEPARENT, "X-Request-ID": "checkout-42"},
        )
        assert response.status_code == 201
        order = response.json()
        assert order["order_id"].startswith("ord-")
        assert response.headers["x-request-id"] == "checkout-42"
        assert response.headers["x-trace-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert orders_client.get(f"/orders/{order['order_id']}").json() == order
        assert cat.get("/books/2").json()["stock"] == 4997
    [placed] = log_lines.find(msg="order placed")
    assert (placed["book_id"], placed["qty"], placed["order_id"]) == (2, 3, order["order_id"])
    trace_lines = log_lines.find(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    spans = {line["span_id"] for line in trace_lines}
    assert len(spans) == 2, "orders' span and catalog's child span, in one trace"
    [reserved] = log_lines.find(msg="stock reserved")
    assert reserved["parent_span_id"] == placed_span(log_lines)
    assert {line["request_id"] for line in trace_lines} == {"checkout-42"}
    persisted = json.loads((tmp_path / "orders.jsonl").read_text())
    assert persisted["order_id"] == order["order_id"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'{"book_id": 1, "qty": ', 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'{"book_id": "1", "qty": 1}', 422, "book_id must be an integer"),
        (b'{"book_id": 1, "qty": true}', 422, "qty must be an integer"),
        (b'{"book_id": 1, "qty": 1.5}', 422, "qty must be an integer"),
        (b'{"book_id": 1, "qty": -1}', 422, "qty must be an integer from 1 to 100"),
        (b'{"book_id": 1, "qty": 1000000000000}', 422, "qty must be an integer from 1 to 100"),
        (b'{"book_id": 1}', 422, "(got missing)"),
        (b'{"book_id": 1, "qty": ' + b"9" * 5000 + b"}", 400, "not usable JSON"),
        (b"[" * 5000 + b"]" * 5000, 400, "not usable JSON"),
        (b'{"pad": "' + b"x" * 20_000 + b'"}', 413, "limit"),
    ],
)
def test_bad_input_gets_4xx_json_and_a_warn_line(tmp_path, log_lines, body, status, reason):
    with services(tmp_path) as (_, orders_client):
        response = orders_client.post("/orders", content=body)
    assert response.status_code == status
    assert reason in response.json()["message"]
    assert response.json()["request_id"]
    [warn] = log_lines.find(msg="request rejected")
    assert warn["level"] == "WARN" and reason in warn["reason"]
    [request_line] = log_lines.find(msg="request completed", route="/orders")
    assert request_line["level"] == "WARN" and request_line["status"] == status


def test_unknown_ids_are_404_with_warn(tmp_path, log_lines):
    with services(tmp_path) as (cat, orders_client):
        assert cat.get("/books/999").status_code == 404
        assert cat.get("/books/-1").status_code == 404
        assert cat.get("/books/%C2%B2").status_code == 404  # a unicode digit is not an id
        assert orders_client.post("/orders", json={"book_id": 999, "qty": 1}).status_code == 404
        assert orders_client.get("/orders/ord-0123456789abcdef").status_code == 404
        assert orders_client.get("/orders/nope").status_code == 404
        assert cat.get("/no/such/route").json()["error"] == "not_found"
        assert cat.delete("/books").status_code == 405
    # 999, -1, "²" in catalog; the order for 999 logs in catalog and again in orders.
    assert len(log_lines.find(msg="unknown book")) == 5
    assert len(log_lines.find(msg="unknown order")) == 2
    assert log_lines.find(route="unmatched")[0]["status"] == 404


def test_a_body_with_a_card_number_and_password_never_reaches_the_log(tmp_path, log_lines):
    body = {
        "book_id": 1,
        "qty": "one",
        "payment": {"card_number": "4111 1111 1111 1111", "cvv": "737"},
        "customer": {"password": "correct horse"},
        "note": "or charge 5555-5555-5555-4444",
    }
    with services(tmp_path) as (_, orders_client):
        assert orders_client.post("/orders", json=body).status_code == 422
    text = log_lines.stream.getvalue()
    # (The cvv quoted: a bare "737" can occur inside a random hex id.)
    for secret in ("4111 1111 1111 1111", '"737"', "correct horse", "5555-5555-5555-4444"):
        assert secret not in text
    [warn] = log_lines.find(msg="request rejected")
    assert warn["body"]["payment"] == {"card_number": "[REDACTED]", "cvv": "[REDACTED]"}


def test_forced_database_fault_gives_503_and_error_lines_in_both_services(tmp_path, log_lines):
    with services(tmp_path) as (_, orders_client):
        response = orders_client.post(
            "/orders",
            json={"book_id": 1, "qty": 1},
            headers={"X-Inject-Fault": "database", "traceparent": TRACEPARENT},
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    errors = log_lines.find(level="ERROR", error_type="DatabaseConnectionError")
    assert [line["msg"] for line in errors] == ["Database connection failed", "catalog call failed"]
    assert all(line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" for line in errors)
    assert errors[0]["retry_attempt"] == 3 and "DatabaseConnectionError" in errors[0]["stack"]
    retries = log_lines.find(msg="database connection failed, retrying")
    assert [line["retry_attempt"] for line in retries] == [1, 2]


def test_unknown_fault_names_are_refused(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        response = cat.get("/books", headers={"X-Inject-Fault": "disk"})
    assert response.status_code == 400
    assert "not a known fault" in response.json()["message"]


def test_runtime_fault_switch(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        assert cat.get("/admin/faults").json() == {"rate": 0.0}
        for bad in ({"rate": 2}, {"rate": "lots"}, {"rate": True}, {}):
            assert cat.put("/admin/faults", json=bad).status_code == 422
        assert cat.put("/admin/faults", json={"rate": 1}).json() == {
            "rate": 1.0,
            "previous_rate": 0.0,
        }
        assert cat.get("/books").status_code == 503
        assert cat.put("/admin/faults", json={"rate": 0}).status_code == 200
        assert cat.get("/books").status_code == 200
    [changed] = log_lines.find(msg="fault rate changed", fault_rate=1.0)
    assert changed["level"] == "WARN"


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (httpx.ConnectError("Connection refused"), "ConnectError"),
        (httpx.ReadTimeout("timed out"), "ReadTimeout"),
    ],
)
def test_catalog_down_gives_503_with_error_naming_the_cause(tmp_path, log_lines, error, error_type):
    def broken(request):
        raise error

    with services(tmp_path, catalog_transport=httpx.MockTransport(broken)) as (_, orders_client):
        response = orders_client.post("/orders", json={"book_id": 1, "qty": 1})
        ready = orders_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == "catalog_unavailable"
    [line] = log_lines.find(msg="catalog call failed")
    assert line["level"] == "ERROR" and line["error_type"] == error_type
    assert line["catalog_url"] == "http://catalog.test"
    assert ready.status_code == 200, "a catalog outage does not take orders out of its Service"


def test_a_catalog_answering_nonsense_gives_502(tmp_path, log_lines):
    transport = httpx.MockTransport(lambda request: httpx.Response(500, text="<html>oops"))
    with services(tmp_path, catalog_transport=transport) as (_, orders_client):
        response = orders_client.post("/orders", json={"book_id": 1, "qty": 1})
    assert response.status_code == 502
    [line] = log_lines.find(msg="catalog call failed")
    assert (line["error_type"], line["upstream_status"]) == ("BadUpstreamResponse", 500)


def test_outbound_call_names_our_span_as_parent_and_carries_the_request_id(tmp_path, log_lines):
    seen = {}

    def fake_catalog(request):
        seen.update(request.headers)
        return httpx.Response(200, json={"book_id": 1, "reserved": 1, "remaining": 9})

    with services(tmp_path, catalog_transport=httpx.MockTransport(fake_catalog)) as (_, client):
        client.post(
            "/orders",
            json={"book_id": 1, "qty": 1},
            headers={"traceparent": TRACEPARENT, "X-Request-ID": "r-7"},
        )
    version, trace_id, parent, flags = seen["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    [placed] = log_lines.find(msg="order placed")
    # Orders' own (server) span is the parent catalog sees: the join shows in the logs.
    assert parent == placed["span_id"] != "00f067aa0ba902b7"
    assert seen["x-request-id"] == "r-7"
    assert "x-inject-fault" not in seen


def test_bad_trace_and_request_id_headers_start_fresh_with_a_warn(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        response = cat.get(
            "/books", headers={"traceparent": "00-xyz-01", "X-Request-ID": "4111111111111111"}
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "4111111111111111"
    warns = [line["msg"] for line in log_lines.find(level="WARN")]
    assert warns == [
        "invalid traceparent header, started a new trace",
        "invalid X-Request-ID header, generated a new one",
    ]


def test_probes_log_at_debug_and_readiness_follows_startup(tmp_path, log_lines):
    with services(tmp_path) as (cat, orders_client):
        assert cat.get("/healthz").json() == {"status": "ok"}
        assert cat.get("/readyz").json()["status"] == "ready"
        assert orders_client.get("/readyz").status_code == 200
    probe_lines = log_lines.find(route="/healthz") + log_lines.find(route="/readyz")
    assert probe_lines and {line["level"] for line in probe_lines} == {"DEBUG"}


def test_an_unexpected_bug_is_a_json_500_and_one_error_line(tmp_path, log_lines):
    settings = Settings(data_dir=tmp_path)
    app = catalog.create_app(settings)

    async def bug(request):
        return 1 / 0

    app.router.routes.append(Route("/boom", bug))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    [line] = log_lines.find(msg="unhandled error while serving the request")
    assert line["error_type"] == "ZeroDivisionError"


def test_route_template_without_starlettes_route_key(tmp_path):
    """Older Starlette releases do not record scope["route"]: the template is found anyway."""
    from bookstore.web import route_template

    app = catalog.create_app(Settings(data_dir=tmp_path))
    scope = {"type": "http", "method": "POST", "path": "/books/12/reserve", "app": app.router}
    assert route_template(scope) == "/books/{book_id}/reserve"
    assert route_template({**scope, "path": "/nowhere"}) == "unmatched"
    assert route_template({**scope, "method": "DELETE", "path": "/books"}) == "/books"


def test_an_absurd_method_is_405_and_its_line_stays_within_the_schema(tmp_path, log_lines):
    with services(tmp_path) as (cat, _):
        assert cat.request("PROPFIND" * 6, "/books").status_code == 405
    [line] = log_lines.find(msg="request completed")
    assert line["method"] == ("PROPFIND" * 6)[:32]


def test_an_oversized_chunked_body_is_cut_off_at_the_limit(tmp_path, log_lines):
    """No Content-Length to trust: the body is counted while it streams in."""

    def chunks():
        yield b'{"book_id": 1, "qty": 1, "pad": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    with services(tmp_path) as (_, orders_client):
        response = orders_client.post("/orders", content=chunks())
    assert response.status_code == 413
    assert "over the limit of 16384 bytes" in response.json()["message"]
    assert log_lines.find(msg="request rejected")[0]["level"] == "WARN"
