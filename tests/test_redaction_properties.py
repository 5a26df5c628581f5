"""Property tests: a generated secret, put anywhere a request can carry it, never reaches stdout.

Secrets of every kind the redaction rules promise to catch (bookstore/redaction.py):

- a value under a key of the vocabulary, spelled any way (`dbPassword`, `X-API-KEY`, `pins`);
- the same in free text: `key=value`, `key: value`, `key => value`, `"key": "value"`,
  `Authorization: Bearer ...`, `Bearer ...`, URL userinfo;
- payment card numbers (13-19 digits, Luhn-valid) with any separator, in full-width or
  Arabic-Indic digits, followed by an expiry and CVV, as a JSON int or float, as a JSON key.

Places: body values and keys at any depth, the query string, the path, the headers we read
(`X-Request-ID`, `traceparent`, `X-Inject-Fault`) and malformed bodies provoking each 4xx.
Both services run in-process (orders reaches catalog through httpx's ASGI transport), once at
DEBUG and once at INFO; after every example the lines written are searched for the secret
(for a card: any 12 consecutive digits of it, in any digit script). And the ids we log by
design (request, trace and order ids, even made of digits) come out intact.

Hypothesis runs derandomized with bounded example counts, so CI time and results are stable.
tests/test_bookstore_processes.py repeats a fixed set of these against real processes.
"""

from __future__ import annotations

import io
import json
import re
import string
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bookstore import cardnumbers, catalog, logs, logschema, orders, redaction
from bookstore.faults import FaultSwitch
from bookstore.settings import Settings

PROPERTIES = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- secrets -------------------------------------------------------------------------------
_TERMS = [term for terms in redaction.SENSITIVE_TERMS.values() for term in terms]


def _spell(words: list[str], style: str) -> str:
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "dotted":
        return ".".join(words)
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    return "".join(w.capitalize() for w in words)  # Pascal / header case


@st.composite
def sensitive_keys(draw) -> str:
    words = draw(st.sampled_from(_TERMS)).split()
    if draw(st.booleans()) and not words[-1].endswith("s"):
        words[-1] += "s"  # plurals: `tokens`, `passwords`, `pins`
    words = [draw(st.sampled_from(["", "db", "new", "x", "user", "old"])), *words]
    words.append(draw(st.sampled_from(["", "confirmation", "value", "2"])))
    return _spell(
        [w for w in words if w],
        draw(st.sampled_from(["snake", "kebab", "upper", "dotted", "camel", "pascal"])),
    )


secret_values = st.text(string.ascii_letters + string.digits, min_size=10, max_size=16).map(
    lambda s: f"Zq{s}9x"  # a marker that occurs nowhere else
)


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if cardnumbers.luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


@st.composite
def card_numbers(draw) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    card = _luhn_complete(draw(st.sampled_from("3456")) + body[1:])
    if len(set(card)) == 1:
        card = _luhn_complete("4" + "1" * (length - 2))
    return card


_FULL_WIDTH = str.maketrans(
    "0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"
)
_ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)


@st.composite
def written_cards(draw, card: str) -> str:
    """`card` as a person or a program might write it."""
    sep = draw(
        st.sampled_from(
            ["", " ", "-", ".", "/", "  ", " - ", "\u00a0", "\u2013", "\n", "\u200b", "    "]
        )
    )
    groups = [card[i : i + 4] for i in range(0, len(card), 4)]
    text = sep.join(groups)
    digits = draw(st.sampled_from(["ascii", "ascii", "full-width", "arabic-indic"]))
    if digits == "full-width":
        text = text.translate(_FULL_WIDTH)
    elif digits == "arabic-indic":
        text = text.translate(_ARABIC_INDIC)
    before = draw(st.sampled_from(["", "99 ", "card ", "x"]))
    after = draw(st.sampled_from(["", " 12/27", " 12/27 737", "737", " exp 1227"]))
    return before + text + after


def free_text_secret(key: str, secret: str, form: int) -> str:
    forms = (
        f"{key}={secret}",
        f"{key}: {secret}",
        f"{key} => {secret}",
        f'"{key}": "{secret}"',
        f"see {key}:{secret} here",
        f"Authorization: Bearer {secret}",
        f"sent Bearer {secret}",
        f"https://ann:{secret}@db.example/x",
        f"{key} = '{secret}'",
    )
    return forms[form % len(forms)]


# -- the services --------------------------------------------------------------------------
@dataclass
class Bookstore:
    catalog: TestClient
    orders: TestClient
    stream: io.StringIO
    seen: int = 0

    def new_text(self) -> str:
        text = self.stream.getvalue()
        new, self.seen = text[self.seen :], len(text)
        return new


@pytest.fixture(scope="module", params=["DEBUG", "INFO"])
def bookstore(request, tmp_path_factory):
    stream = io.StringIO()
    logs.configure("bookstore", level=request.param, stream=stream)
    config = Settings(
        data_dir=tmp_path_factory.mktemp("secrets"), catalog_url="http://catalog.test"
    )
    catalog_app = catalog.create_app(config, FaultSwitch())
    orders_app = orders.create_app(
        config, FaultSwitch(), catalog_transport=httpx.ASGITransport(app=catalog_app)
    )
    with (
        TestClient(catalog_app, raise_server_exceptions=False) as catalog_client,
        TestClient(orders_app, raise_server_exceptions=False) as orders_client,
    ):
        yield Bookstore(catalog_client, orders_client, stream)
    problems = logschema.invalid_lines(stream.getvalue().splitlines())
    logs.configure("bookstore", stream=io.StringIO())
    assert problems == [], problems[:5]


def _digits(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isdecimal())


def assert_no_secret(written: str, secret: str | None = None, card: str | None = None) -> None:
    for line in written.splitlines():
        if secret is not None:
            assert secret not in line, f"secret {secret!r} reached stdout: {line}"
        if card is not None:
            digits = _digits(line).translate({})
            ascii_digits = "".join(str(int(c)) for c in digits)
            for start in range(len(card) - 11):
                assert card[start : start + 12] not in ascii_digits, (
                    f"12 digits of card {card} reached stdout: {line}"
                )


def nest(value: object, path: list[str | None]) -> object:
    """`value` placed at `path` (a key per level; None = inside a list)."""
    for key in reversed(path):
        value = [value] if key is None else {key: value}
    return value


paths = st.lists(st.sampled_from(["customer", "payment", "meta", None, "items"]), max_size=4)


# -- secrets under keys and in free text ---------------------------------------------------
@PROPERTIES
@given(
    key=sensitive_keys(),
    secret=secret_values,
    path=paths,
    form=st.integers(0, 20),
    place=st.sampled_from(["under-key", "free-text", "as-key", "in-list"]),
    valid_order=st.booleans(),
)
def test_keyed_secrets_in_bodies_at_any_depth(
    bookstore, key, secret, path, form, place, valid_order
):
    if place == "under-key":
        leaf: object = {key: secret}
    elif place == "in-list":
        leaf = {key: ["a", {"v": secret}]}
    elif place == "free-text":
        leaf = {"note": free_text_secret(key, secret, form)}
    else:
        leaf = {free_text_secret(key, secret, form): 1}
    body = {"book_id": 1, "qty": 1 if valid_order else "two", "extra": nest(leaf, path)}
    bookstore.new_text()
    response = bookstore.orders.post("/orders", json=body)
    assert response.status_code in (201, 422)
    bookstore.catalog.post("/books/2/reserve", json={**body, "qty": "two"})
    bookstore.catalog.put("/admin/faults", json={"rate": nest(leaf, path)})
    written = bookstore.new_text()
    assert_no_secret(written, secret=secret)
    assert redaction.MASK in written, "the body was logged (masked): the test saw something"


@PROPERTIES
@given(key=sensitive_keys(), secret=secret_values, form=st.integers(0, 20))
def test_keyed_secrets_in_path_query_and_headers(bookstore, key, secret, form):
    text = free_text_secret(key, secret, form)
    bookstore.new_text()
    segment = quote(text, safe="")
    bookstore.catalog.get(f"/books/{segment}")
    bookstore.catalog.post(f"/books/{segment}/reserve", json={"qty": 1})
    bookstore.orders.get(f"/orders/{segment}")
    bookstore.orders.get(f"/orders?{quote(key)}={secret}")
    ascii_text = text.encode("ascii", "replace").decode()
    for header in ("x-request-id", "traceparent", "x-inject-fault"):
        bookstore.catalog.get("/books", headers={header: ascii_text})
        bookstore.orders.post(
            "/orders", json={"book_id": 1, "qty": 1}, headers={header: ascii_text}
        )
    bookstore.orders.get("/books", headers={"x-request-id": f"{key}:{secret}"})
    assert_no_secret(bookstore.new_text(), secret=secret)


@PROPERTIES
@given(
    key=sensitive_keys(),
    secret=secret_values,
    form=st.integers(0, 20),
    kind=st.sampled_from(["bad-json", "array", "qty-object", "rate", "not-utf8", "number-id"]),
)
def test_keyed_secrets_in_malformed_bodies(bookstore, key, secret, form, kind):
    text = free_text_secret(key, secret, form)
    raw = {
        "bad-json": f'{{"{key}": "{secret}", '.encode(),
        "array": json.dumps([{key: secret}, text]).encode(),
        "qty-object": json.dumps({"book_id": 1, "qty": {key: secret, "t": text}}).encode(),
        "rate": json.dumps({"rate": text}).encode(),
        "not-utf8": b"\xff\xfe" + text.encode(),
        "number-id": json.dumps({"book_id": text, "qty": 1}).encode(),
    }[kind]
    bookstore.new_text()
    headers = {"content-type": "application/json"}
    for response in (
        bookstore.orders.post("/orders", content=raw, headers=headers),
        bookstore.catalog.post("/books/1/reserve", content=raw, headers=headers),
        bookstore.catalog.put("/admin/faults", content=raw, headers=headers),
    ):
        assert response.status_code < 500
    assert_no_secret(bookstore.new_text(), secret=secret)


# -- card numbers --------------------------------------------------------------------------
@PROPERTIES
@given(
    data=st.data(),
    card=card_numbers(),
    path=paths,
    place=st.sampled_from(["value", "key", "int", "float", "path", "header", "reason"]),
)
def test_card_numbers_anywhere_never_reach_stdout(bookstore, data, card, path, place):
    written_card = data.draw(written_cards(card))
    body: dict = {"book_id": 1, "qty": "two"}
    if place == "value":
        body["extra"] = nest({"note": written_card}, path)
    elif place == "key":
        body["extra"] = nest({written_card: 1}, path)
    elif place == "int":
        body["extra"] = nest({"n": int(card)}, path)
    elif place == "float":
        body["extra"] = nest({"n": float(card)}, path)
    elif place == "reason":
        body = {"book_id": written_card, "qty": 1}
    bookstore.new_text()
    if place == "path":
        segment = quote(written_card, safe="")
        bookstore.catalog.get(f"/books/{segment}")
        bookstore.orders.get(f"/orders/{segment}")
    elif place == "header":
        printable = written_card.isascii() and written_card.isprintable()
        ascii_card = written_card if printable else card
        for header in ("x-request-id", "traceparent", "x-inject-fault"):
            bookstore.orders.post(
                "/orders", json={"book_id": 1, "qty": 1}, headers={header: ascii_card}
            )
            bookstore.catalog.get("/books", headers={header: f"00-{ascii_card}-x"})
    else:
        bookstore.orders.post("/orders", json=body)
        bookstore.catalog.post("/books/1/reserve", json=body)
        bookstore.catalog.put("/admin/faults", json={"rate": body.get("extra", written_card)})
    assert_no_secret(bookstore.new_text(), card=card)


# -- ids logged by design ------------------------------------------------------------------
hex_ids = st.text("0123456789abcdef", min_size=32, max_size=32).filter(lambda s: s != "0" * 32)
request_ids = st.one_of(
    st.uuids().map(str),
    st.text("0123456789", min_size=32, max_size=32).map(
        lambda s: f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"  # a UUID of digits only
    ),
    st.sampled_from("0123456789").map(lambda d: d * 16),  # one digit repeated
    st.text("0123456789abcdef", min_size=16, max_size=16).map(lambda s: "ord-" + s),
    hex_ids.filter(lambda s: any(c in "abcdef" for c in s)),
)


@PROPERTIES
@given(request_id=request_ids, trace_id=hex_ids, span_id=hex_ids.map(lambda s: s[:16]))
def test_ids_logged_by_design_stay_intact(bookstore, request_id, trace_id, span_id):
    if span_id == "0" * 16:
        span_id = "1" * 16
    traceparent = f"00-{trace_id}-{span_id}-01"
    bookstore.new_text()
    response = bookstore.orders.post(
        "/orders",
        json={"book_id": 1, "qty": 1},
        headers={"x-request-id": request_id, "traceparent": traceparent},
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == request_id
    order_id = response.json()["order_id"]
    lines = [json.loads(line) for line in bookstore.new_text().splitlines()]
    request_lines = [line for line in lines if line["msg"] == "request completed"]
    assert request_lines, "each service wrote its request line"
    for line in request_lines:
        assert line["request_id"] == request_id
        assert line["trace_id"] == trace_id
    [placed] = [line for line in lines if line["msg"] == "order placed"]
    assert placed["order_id"] == order_id and placed["request_id"] == request_id
    # An order id read back in a path stays whole in the 404 reason too.
    missing = "ord-" + re.sub(r"[^0-9a-f]", "0", trace_id[:16])
    bookstore.orders.get(f"/orders/{missing}")
    assert missing in bookstore.new_text()
