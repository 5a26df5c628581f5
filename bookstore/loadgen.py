"""`python -m bookstore loadgen`: a bounded, realistic mix of traffic for the bookstore.

What a shop sees: mostly browsing (list, get), orders, some direct reservations, a share of
bad input (malformed JSON, wrong types, negative or huge quantities, unknown ids, a broken
`traceparent`, a body carrying a card number and a password), and a few requests with
`X-Inject-Fault: database` so the incident's ERROR lines exist to be found. Every request
starts its own trace, so any line in the summary can be looked up in Loki by `trace_id`.

The run is bounded (`--requests`), waits for both services' `/readyz` first, and ends with
one JSON summary line. Exit status: 0 when at least one request succeeded (2xx), 1 when none
did or the services never became ready, so a Kubernetes Job shows the failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bookstore import logs, tracecontext
from bookstore.settings import DEFAULT_CATALOG_URL

# (kind, weight): the share of each kind of request in the mix.
MIX = (
    ("list_books", 25),
    ("get_book", 20),
    ("reserve", 8),
    ("place_order", 30),
    ("get_order", 5),
    ("invalid", 10),
    ("fault", 2),
)
KINDS = tuple(kind for kind, _ in MIX)
_SECRET_BODY = {
    "book_id": 1,
    "qty": "two",  # wrong type: rejected, and the WARN line shows the body (redacted)
    "payment": {"card_number": "4111 1111 1111 1111", "cvv": "737"},
    "customer": {"email": "reader@example.com", "password": "correct horse battery staple"},
}


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    order_ids: list[str] = field(default_factory=list)
    example_trace_id: str | None = None
    unexpected_5xx: int = 0

    def record(self, kind: str, outcome: str, expected_5xx: bool) -> None:
        self.statuses[outcome] += 1
        self.by_kind.setdefault(kind, Counter())[outcome] += 1
        if outcome.startswith("5") and not expected_5xx:
            self.unexpected_5xx += 1

    @property
    def succeeded(self) -> int:
        return sum(n for outcome, n in self.statuses.items() if outcome.startswith("2"))


def plan(requests: int, rng: random.Random) -> list[str]:
    """The kinds of request to send: each kind once (when there is room), the rest weighted."""
    kinds = list(KINDS) if requests >= len(KINDS) else []
    weights = [weight for _, weight in MIX]
    kinds += rng.choices(KINDS, weights=weights, k=requests - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _invalid_request(
    rng: random.Random, catalog: str, orders: str
) -> tuple[str, str, dict[str, Any]]:
    """(method, url, httpx kwargs) of one kind of bad input, chosen at random."""
    choices: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{orders}/orders", {"content": b'{"book_id": 1, "qty": '}),
        ("POST", f"{orders}/orders", {"json": {"book_id": "one", "qty": 1}}),
        ("POST", f"{orders}/orders", {"json": {"book_id": 2, "qty": -3}}),
        ("POST", f"{orders}/orders", {"json": {"book_id": 2, "qty": 10**12}}),
        ("POST", f"{orders}/orders", {"json": {"book_id": 999, "qty": 1}}),
        ("POST", f"{orders}/orders", {"json": _SECRET_BODY}),
        ("POST", f"{orders}/orders", {"json": [1, 2, 3]}),
        ("GET", f"{catalog}/books/not-a-number", {}),
        ("GET", f"{orders}/orders/ord-0000000000000000", {}),
        ("POST", f"{catalog}/books/3/reserve", {"json": {"qty": 0}}),
        ("GET", f"{catalog}/books", {"headers": {"traceparent": "00-not-a-valid-traceparent-01"}}),
    ]
    return rng.choice(choices)


async def _send(
    client: httpx.AsyncClient,
    kind: str,
    rng: random.Random,
    catalog: str,
    orders: str,
    tally: Tally,
) -> None:
    trace = tracecontext.new_trace()
    headers = {"traceparent": trace.to_header()}
    kwargs: dict[str, Any] = {}
    expected_5xx = False
    book_id = rng.randint(1, 8)
    if kind == "list_books":
        method, url = "GET", f"{catalog}/books"
    elif kind == "get_book":
        method, url = "GET", f"{catalog}/books/{book_id}"
    elif kind == "reserve":
        method, url = "POST", f"{catalog}/books/{book_id}/reserve"
        kwargs["json"] = {"qty": rng.randint(1, 2)}
    elif kind == "place_order":
        method, url = "POST", f"{orders}/orders"
        kwargs["json"] = {"book_id": book_id, "qty": rng.randint(1, 3)}
    elif kind == "get_order":
        order_id = rng.choice(tally.order_ids) if tally.order_ids else "ord-0123456789abcdef"
        method, url = "GET", f"{orders}/orders/{order_id}"
    elif kind == "fault":
        method, url = "POST", f"{orders}/orders"
        kwargs["json"] = {"book_id": book_id, "qty": 1}
        headers["x-inject-fault"] = "database"
        expected_5xx = True
    else:
        method, url, kwargs = _invalid_request(rng, catalog, orders)
        headers.update(kwargs.pop("headers", {}))
    try:
        response = await client.request(method, url, headers=headers, **kwargs)
        outcome = str(response.status_code)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
        logs.get_logger().warning(
            "request failed", kind=kind, url=url, error=str(exc), error_type=outcome
        )
        tally.record(kind, outcome, expected_5xx)
        return
    # Upstream failures are part of the story when faults are on: count them, do not hide them.
    expected_5xx = expected_5xx or response.headers.get("retry-after") is not None
    tally.record(kind, outcome, expected_5xx)
    if kind == "place_order" and response.status_code == 201:
        tally.order_ids.append(response.json()["order_id"])
        tally.example_trace_id = tally.example_trace_id or trace.trace_id
    logs.get_logger().debug(
        "request sent",
        kind=kind,
        method=method,
        url=url,
        status=response.status_code,
        sent_trace_id=trace.trace_id,
    )


async def wait_ready(client: httpx.AsyncClient, urls: list[str], timeout: float) -> list[str]:
    """Poll each service's /readyz until it answers 200; returns the ones that never did."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        for base in list(pending):
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    pending.remove(base)
            except httpx.HTTPError:
                pass
        if pending:
            await asyncio.sleep(0.5)
    return pending


async def run(
    catalog: str, orders: str, requests: int, concurrency: int, seed: int | None, wait: float
) -> int:
    log = logs.get_logger()
    rng = random.Random(seed)
    kinds = plan(requests, rng)
    tally = Tally()
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        not_ready = await wait_ready(client, [catalog, orders], wait)
        if not_ready:
            log.error(
                "services not ready",
                not_ready=not_ready,
                waited_s=wait,
                hint="check the pods (kubectl -n bookstore get pods) and the URLs given",
            )
            return 1
        queue: asyncio.Queue[str] = asyncio.Queue()
        for kind in kinds:
            queue.put_nowait(kind)

        async def worker() -> None:
            while not queue.empty():
                await _send(client, queue.get_nowait(), rng, catalog, orders, tally)

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    elapsed = time.monotonic() - started
    summary = {
        "requests": requests,
        "succeeded": tally.succeeded,
        "statuses": dict(sorted(tally.statuses.items())),
        "by_kind": {kind: dict(sorted(c.items())) for kind, c in sorted(tally.by_kind.items())},
        "unexpected_5xx": tally.unexpected_5xx,
        "orders_placed": len(tally.order_ids),
        "example_order_id": tally.order_ids[0] if tally.order_ids else None,
        "example_trace_id": tally.example_trace_id,
        "duration_s": round(elapsed, 3),
        "catalog_url": catalog,
        "orders_url": orders,
    }
    if tally.succeeded == 0:
        log.error("loadgen finished: no request succeeded", **summary)
        return 1
    log.info("loadgen finished", **summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bookstore loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--catalog-url",
        default=os.environ.get("CATALOG_URL", DEFAULT_CATALOG_URL),
        help=f"catalog's base URL (env CATALOG_URL, default {DEFAULT_CATALOG_URL})",
    )
    parser.add_argument(
        "--orders-url",
        default=os.environ.get("ORDERS_URL", "http://orders"),
        help="orders' base URL (env ORDERS_URL, default http://orders)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        # A string default goes through `type` like a typed value: a bad REQUESTS is a usage
        # error that names the option, not a traceback.
        default=os.environ.get("REQUESTS", "200"),
        help="how many requests in all (env REQUESTS, default 200)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--seed", type=int, default=None, help="repeatable mix (and ids drawn)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /readyz")
    args = parser.parse_args(argv)
    try:
        logs.configure("loadgen", level=os.environ.get("LOG_LEVEL", "INFO"))
    except ValueError as exc:
        logs.configure("loadgen")
        logs.get_logger().error("loadgen cannot start: invalid configuration", error=str(exc))
        return 2
    if args.requests < 1:
        parser.error("--requests (env REQUESTS) must be at least 1")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return asyncio.run(
        run(
            args.catalog_url.rstrip("/"),
            args.orders_url.rstrip("/"),
            args.requests,
            args.concurrency,
            args.seed,
            args.wait,
        )
    )
