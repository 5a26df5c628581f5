"""The redaction promise against real processes: a fixed set of hostile requests, real stdout.

tests/test_redaction_properties.py generates secrets in-process; this module sends one of
each kind to `python -m bookstore catalog|orders` (orders with credentials in CATALOG_URL),
at DEBUG and at INFO, and reads every line both wrote, start-up and shutdown included.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from bookstore.settings import Settings, SettingsError
from tests.test_bookstore_processes import free_port, start

pytestmark = pytest.mark.timeout(120)

URL_PASSWORD = "Zqurlpw7731x"
CARD = "4111111111111111"
AMEX = "378282246310005"
KEYED = {
    "accessToken": "Zqaccess0001x",
    "refreshToken": "Zqrefresh002x",
    "clientSecret": "Zqclient0003x",
    "dbPassword": "Zqdbpass0004x",
    "password_confirmation": "Zqconfirm05x",
    "creditCard": "Zqcredit0006x",
    "securityCode": "Zqseccode07x",
    "pin": "Zqpincode08x",
    "otp": "Zqotpcode09x",
    "jwt": "Zqjwtvalu10x",
    "x-api-key": "Zqapikey011x",
}
FREE_TEXT = {
    "Zqfree00001x": "db_password=Zqfree00001x",
    "Zqfree00002x": "client_secret: Zqfree00002x",
    "Zqfree00003x": "password => Zqfree00003x",
    "Zqfree00004x": "Authorization: Token Zqfree00004x",
    "Zqfree00005x": "https://ann:Zqfree00005x@db.example/x",
    "Zqfree00006x": "cookie=Zqfree00006x",
}
SECRETS = [URL_PASSWORD, *KEYED.values(), *FREE_TEXT]


def hostile_requests(client: httpx.Client, catalog: str, orders: str) -> None:
    body = {"book_id": 1, "qty": 1, **KEYED, "notes": list(FREE_TEXT.values())}
    client.post(f"{orders}/orders", json=body)  # placed: the body is logged at DEBUG
    client.post(f"{orders}/orders", json={**body, "qty": "two"})  # 422: logged at INFO
    client.post(f"{orders}/orders", json={"book_id": f"{CARD} 12/27 737", "qty": 1})
    client.post(f"{orders}/orders", json={"book_id": 1, "qty": {"cvv": "Zqcvv0000012x"}})
    client.post(f"{orders}/orders", json={"book_id": 1, "qty": 1, CARD: float(AMEX)})
    client.post(f"{catalog}/books/1/reserve", content=f'["{AMEX}", {json.dumps(KEYED)}]')
    client.put(f"{catalog}/admin/faults", json={"rate": FREE_TEXT["Zqfree00001x"]})
    for text in (CARD, "4111.1111.1111.1111", *FREE_TEXT.values()):
        client.get(f"{catalog}/books/{quote(text, safe='')}")
        client.get(f"{orders}/orders/{quote(text, safe='')}")
        client.get(f"{catalog}/books?{quote(text)}")
    for header in ("x-request-id", "traceparent", "x-inject-fault"):
        for value in (CARD, "password:Zqfree00001x", f"00-{CARD}-token=Zqfree00002x"):
            client.get(f"{catalog}/books", headers={header: value})


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_no_secret_from_any_request_or_setting_reaches_stdout(tmp_path, level):
    catalog = start("catalog", tmp_path, LOG_LEVEL=level)
    port = catalog.url.rsplit(":", 1)[1]
    orders = start(
        "orders",
        tmp_path,
        LOG_LEVEL=level,
        CATALOG_URL=f"http://ann:{URL_PASSWORD}@127.0.0.1:{port}",
    )
    try:
        with httpx.Client(timeout=10) as client:
            hostile_requests(client, catalog.url, orders.url)
    finally:
        assert catalog.stop() == 0 and orders.stop() == 0
    for service in (catalog, orders):
        text = service.stdout.read_text()
        for secret in SECRETS:
            assert secret not in text, f"{service.name} logged {secret}"
        for card in (CARD, AMEX):
            for line in service.raw_lines():
                line_digits = "".join(c for c in line if c.isdigit())
                assert card[:12] not in line_digits and card[-12:] not in line_digits, line
        assert service.stderr.read_text() == ""
    [loaded] = [line for line in orders.lines() if line["msg"] == "orders data loaded"]
    assert loaded["catalog_url"] == f"http://[REDACTED]@127.0.0.1:{port}"


def test_catalog_call_failed_shows_the_url_without_credentials(tmp_path):
    orders = start(
        "orders", tmp_path, CATALOG_URL=f"http://ann:{URL_PASSWORD}@127.0.0.1:{free_port()}"
    )
    try:
        response = httpx.post(f"{orders.url}/orders", json={"book_id": 1, "qty": 1}, timeout=10)
    finally:
        orders.stop()
    assert response.status_code == 503
    [failed] = [line for line in orders.lines() if line["msg"] == "catalog call failed"]
    assert failed["catalog_url"].startswith("http://[REDACTED]@127.0.0.1:")
    assert URL_PASSWORD not in orders.stdout.read_text()


@pytest.mark.parametrize("url", ["ftp://svc:Zqpw0000015x@catalog", "svc:Zqpw0000015x@catalog"])
def test_a_refused_catalog_url_is_reported_without_its_credentials(url):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"CATALOG_URL": url})
    assert "Zqpw0000015x" not in str(refused.value)
    assert "[REDACTED]@catalog" in str(refused.value)
