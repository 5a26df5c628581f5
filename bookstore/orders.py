"""The orders service: validates an order, reserves stock in catalog, records the order.

Routes: `POST /orders {"book_id": n, "qty": n}` -> 201 `{"order_id": ...}`, `GET /orders/{id}`,
plus `/healthz`, `/readyz` and `/admin/faults` from `web`.

The call to catalog carries a `traceparent` naming this request's span as the parent, and the
request id, so one order's lines in both services share `trace_id`, and catalog's
`parent_span_id` is orders' `span_id` (catalog's span is the new child). A tracing SDK would
put a client span in between; without a tracing backend to record it, that span would be an
id no log line shows, so the server span is the parent the logs can join on. `X-Inject-Fault` is
forwarded so a forced database failure happens where the database is, in catalog. Catalog's
answers map to ours: 404 -> 404, 409 -> 409, 503 -> 503 (its `error_type` and
`retry_attempt` are carried over to our ERROR line), anything else -> 502; catalog down or
too slow -> 503 with the transport error's class as `error_type` (e.g. ConnectError).

Readiness does not depend on catalog: if it did, a catalog outage would take every orders pod
out of its Service and turn "ordering fails with a clear 503" into "connection refused" for the
whole site. Orders is ready when its own order file is loaded and writable.

Orders are appended to `orders.jsonl` under `DATA_DIR` and reloaded at start.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bookstore import faults, logs, redaction, tracecontext, web
from bookstore.catalog import MAX_BOOK_ID, MAX_QTY
from bookstore.settings import Settings

SERVICE = "orders"
_ORDER_ID = re.compile(r"ord-[0-9a-f]{16}")
_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def new_order_id() -> str:
    return "ord-" + secrets.token_hex(8)


class OrderStore:
    """Orders by id, persisted as one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.orders: dict[str, dict[str, Any]] = {}

    def load(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)  # fails now, not at the first order, if not writable
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                order = json.loads(line)
                self.orders[order["order_id"]] = order
            except (ValueError, KeyError, TypeError):
                logs.get_logger().warning(
                    "skipped an unreadable order", file=str(self.path), line=number
                )
        return len(self.orders)

    def add(self, order: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(order) + "\n")
        self.orders[order["order_id"]] = order


def _catalog_failed(reason: str, status: int, **fields: Any) -> web.ApiError:
    return web.ApiError(
        status,
        reason,
        code="catalog_unavailable" if status == 503 else "bad_gateway",
        log_msg="catalog call failed",
        upstream="catalog",
        **fields,
    )


async def reserve_in_catalog(
    client: httpx.AsyncClient, request: Request, book_id: int, qty: int, forced: bool
) -> dict[str, Any]:
    """Reserve `qty` of `book_id` in catalog; catalog's span becomes a child of this request's."""
    trace: tracecontext.TraceContext = request.state.trace
    headers = {
        tracecontext.HEADER: trace.to_header(),
        web.REQUEST_ID_HEADER: request.state.request_id,
    }
    if forced:
        headers[faults.FAULT_HEADER] = "database"
    try:
        response = await client.post(
            f"/books/{book_id}/reserve", json={"qty": qty}, headers=headers
        )
    except httpx.HTTPError as exc:
        raise _catalog_failed(
            f"catalog is unreachable ({type(exc).__name__}); try again",
            503,
            error=str(exc) or type(exc).__name__,
            error_type=type(exc).__name__,
            catalog_url=redaction.mask_userinfo(str(client.base_url)),
            exc_info=exc,
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    if response.status_code == 200:
        return answer
    if response.status_code == 404:
        raise web.ApiError(
            404, f"book {book_id} does not exist", code="unknown_book", log_msg="unknown book"
        )
    if response.status_code == 409:
        raise web.ApiError(
            409,
            str(answer.get("message", "not enough stock")),
            code="insufficient_stock",
            log_msg="order refused: not enough stock",
            response={"book_id": book_id, "available": answer.get("available")},
            book_id=book_id,
            qty=qty,
        )
    upstream_type = str(answer.get("error_type", ""))
    attempts = answer.get("retry_attempt")
    if response.status_code == 503:
        fields: dict[str, Any] = {"error_type": "UpstreamUnavailable"}
        if _ERROR_TYPE.fullmatch(upstream_type) and isinstance(attempts, int) and attempts >= 1:
            fields = {"error_type": upstream_type, "retry_attempt": attempts}
        raise _catalog_failed(
            "catalog is unavailable; try again",
            503,
            error=f"catalog answered 503: {str(answer.get('message', ''))[:200]}",
            upstream_status=503,
            **fields,
        )
    raise _catalog_failed(
        f"catalog answered {response.status_code} unexpectedly",
        502,
        error=f"catalog answered {response.status_code}",
        error_type="BadUpstreamResponse",
        upstream_status=response.status_code,
    )


def create_app(
    settings: Settings,
    switch: faults.FaultSwitch | None = None,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The orders app; `catalog_transport` lets tests reach an in-process catalog."""
    switch = switch or faults.FaultSwitch(settings.fault_rate)
    database = faults.SimulatedDatabase("orders-db", switch)
    store = OrderStore(settings.data_dir / "orders.jsonl")
    state: dict[str, Any] = {"ready": False, "client": None}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loaded = store.load()
        state["client"] = httpx.AsyncClient(
            base_url=settings.catalog_url,
            timeout=httpx.Timeout(settings.catalog_timeout),
            transport=catalog_transport,
        )
        state["ready"] = True
        logs.get_logger().info(
            "orders data loaded",
            orders=loaded,
            data_dir=str(settings.data_dir),
            catalog_url=redaction.mask_userinfo(settings.catalog_url),
            fault_rate=switch.rate,
        )
        try:
            yield
        finally:
            state["ready"] = False
            await state["client"].aclose()

    def is_ready() -> tuple[bool, str]:
        if not state["ready"]:
            return False, "orders not loaded yet"
        return True, "orders loaded; catalog is not checked (see bookstore.orders)"

    async def place_order(request: Request) -> Response:
        forced = web.forced_fault(request)
        body = await web.read_json_object(request)
        book_id = web.require_int(body, "book_id", minimum=1, maximum=MAX_BOOK_ID)
        qty = web.require_int(body, "qty", minimum=1, maximum=MAX_QTY)
        logs.get_logger().debug("order requested", body=web.loggable_body(body))
        await reserve_in_catalog(state["client"], request, book_id, qty, forced)
        order = {
            "order_id": new_order_id(),
            "book_id": book_id,
            "qty": qty,
            "status": "placed",
            "created_at": logs.rfc3339(time.time()),
            "trace_id": request.state.trace.trace_id,
        }
        # The reservation is not released if this write fails: a simulation, not a ledger.
        await database.run(lambda: store.add(order))
        logs.get_logger().info("order placed", order_id=order["order_id"], book_id=book_id, qty=qty)
        return JSONResponse(order, status_code=201)

    async def get_order(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if not _ORDER_ID.fullmatch(order_id):
            raise web.ApiError(
                404,
                f"no order with id {redaction.describe(order_id, 40)} "
                "(ids look like ord-0123456789abcdef)",
                log_msg="unknown order",
            )
        forced = web.forced_fault(request)
        order = await database.run(lambda: store.orders.get(order_id), forced=forced)
        if order is None:
            raise web.ApiError(
                404, f"no order with id {order_id}", log_msg="unknown order", order_id=order_id
            )
        return JSONResponse(order)

    routes = [
        Route("/orders", place_order, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
    ]
    return web.service_app(routes, switch, is_ready, lifespan, settings.read_timeout)
