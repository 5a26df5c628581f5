"""Property-based fuzzing of both HTTP APIs (hypothesis, in-process): no input gives a 5xx.

Whatever arrives (any JSON value or raw bytes as a body, any path segment as an id, any
header value for `traceparent`, `X-Request-ID` and `X-Inject-Fault`), the answer is a 2xx or a
4xx with a JSON body, and every log line written along the way validates against the schema.
The one intended 5xx, `X-Inject-Fault: database`, is excluded from the inputs.
"""

from __future__ import annotations

import io
import json
import string
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bookstore import catalog, logs, logschema, orders
from bookstore.faults import FaultSwitch
from bookstore.settings import Settings

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=15,
)
order_like = st.fixed_dictionaries(
    {"book_id": json_values | st.integers(-5, 12), "qty": json_values | st.integers(-5, 120)},
    optional={"extra": json_values},
)
bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | order_like.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
)
# Header values httpx can send: visible latin-1 without line breaks.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)
segments = st.text(max_size=30).filter(lambda s: s not in ("", ".", ".."))


class Bookstore:
    def __init__(self, catalog_client: TestClient, orders_client: TestClient, switches, stream):
        self.catalog = catalog_client
        self.orders = orders_client
        self.switches = switches
        self.stream = stream

    def check(self, response: httpx.Response) -> None:
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code >= 400 and response.request.method != "HEAD":
            assert "error" in response.json()
        # A PUT /admin/faults may have switched faults on: switch them off for the next example.
        for switch in self.switches:
            switch.rate = 0.0


@pytest.fixture(scope="module")
def bookstore(tmp_path_factory):
    stream = io.StringIO()
    logs.configure("bookstore", level="DEBUG", stream=stream)
    config = Settings(data_dir=tmp_path_factory.mktemp("fuzz"), catalog_url="http://catalog.test")
    switches = (FaultSwitch(), FaultSwitch())
    catalog_app = catalog.create_app(config, switches[0])
    orders_app = orders.create_app(
        config, switches[1], catalog_transport=httpx.ASGITransport(app=catalog_app)
    )
    with (
        TestClient(catalog_app, raise_server_exceptions=False) as catalog_client,
        TestClient(orders_app, raise_server_exceptions=False) as orders_client,
    ):
        yield Bookstore(catalog_client, orders_client, switches, stream)
    problems = logschema.invalid_lines(stream.getvalue().splitlines())
    logs.configure("bookstore", stream=io.StringIO())
    assert problems == [], problems[:5]


@FUZZ
@given(body=bodies, content_type=st.sampled_from([None, "application/json", "text/plain"]))
def test_post_orders_with_any_body(bookstore, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    bookstore.check(bookstore.orders.post("/orders", content=body, headers=headers))


@FUZZ
@given(book_id=segments | st.integers(-10, 10**12).map(str), body=bodies)
def test_reserve_with_any_id_and_body(bookstore, book_id, body):
    url = f"/books/{quote(book_id, safe='')}/reserve"
    bookstore.check(bookstore.catalog.post(url, content=body))


@FUZZ
@given(segment=segments)
def test_get_any_book_or_order_id(bookstore, segment):
    bookstore.check(bookstore.catalog.get(f"/books/{quote(segment, safe='')}"))
    bookstore.check(bookstore.orders.get(f"/orders/{quote(segment, safe='')}"))


@FUZZ
@given(traceparent=header_text, request_id=header_text, fault=header_text)
def test_any_trace_request_id_and_fault_headers(bookstore, traceparent, request_id, fault):
    assume(fault.strip().lower() != "database")  # the one intended 503
    headers = {
        "traceparent": traceparent.encode("latin-1"),
        "x-request-id": request_id.encode("latin-1"),
        "x-inject-fault": fault.encode("latin-1"),
    }
    bookstore.check(bookstore.catalog.get("/books", headers=headers))
    bookstore.check(
        bookstore.orders.post("/orders", json={"book_id": 1, "qty": 1}, headers=headers)
    )


@FUZZ
@given(body=bodies)
def test_put_admin_faults_with_any_body(bookstore, body):
    bookstore.check(bookstore.catalog.put("/admin/faults", content=body))


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.lists(st.text(string.printable, min_size=1, max_size=12), max_size=4),
)
def test_any_method_on_any_path(bookstore, method, path):
    url = "/" + "/".join(quote(part, safe="") for part in path)
    bookstore.check(bookstore.orders.request(method, url))
    bookstore.check(bookstore.catalog.request(method, url))
