"""The HTTP pieces both services share: request context, request lines, errors, JSON bodies.

`RequestContext` is a plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which runs the
endpoint in another task and loses context variables). For every request it

1. continues the caller's trace from `traceparent` or starts one (WARN when the header is bad),
2. takes `X-Request-ID` when it is a plain id (the id charset, nothing the redaction rules
   would mask) or generates a fresh one (WARN, without the refused value: it is untrusted),
3. binds both to every log line written while the request runs,
4. echoes `X-Request-ID` and adds `X-Trace-ID` to the response,
5. writes the request line: method, route template, status, duration_ms (INFO; WARN for 4xx,
   ERROR for 5xx; DEBUG for successful probes, which would otherwise drown the log).

It also turns any exception that escapes an endpoint into a JSON 500 and an ERROR line with
the stack, so a bug never produces a bare traceback on stderr.

Everything a client sends is untrusted text: a header value or path segment that reaches a
log line goes through `redaction.clip`/`redaction.describe` first. When the server itself has
already answered a request (uvicorn's 400 for a malformed chunked body, see
`bookstore.server`), the app's own answer is dropped and the request line is the one WARN.
A request whose body does not arrive within the read timeout is answered 408 and closed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookstore import faults, logs, redaction, tracecontext

MAX_BODY_BYTES = 16 * 1024
DEFAULT_READ_TIMEOUT = 10.0
# Set in scope["state"] by bookstore.server when uvicorn answered the request itself.
ANSWERED_BY_SERVER = "bookstore.answered_by_server"
# Set in scope["state"] by a quiet ApiError: its reason goes on the request line.
REQUEST_LINE_REASON = "bookstore.reason"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
PROBE_ROUTES = frozenset({"/healthz", "/readyz"})
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_input",
}


class ApiError(Exception):
    """A request the service cannot serve: becomes a JSON error body and a log line.

    4xx (the client's input) logs WARN; 5xx (a dependency failed) logs ERROR. `reason` is the
    sentence for the client and the log; `response` adds keys to the JSON body; `fields` go on
    the log line only (`exc_info` there attaches the cause's stack). A `quiet` error writes no
    line of its own: its reason goes on the request line, the request's one WARN.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        code: str | None = None,
        log_msg: str = "",
        response: dict[str, Any] | None = None,
        quiet: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code or _ERROR_CODES.get(status, "error")
        self.log_msg = log_msg or "request rejected"
        self.response = response or {}
        self.quiet = quiet
        self.fields = fields


def request_id_from(header: str | None) -> tuple[str, str | None]:
    """The request id to use, and why the inbound one was refused (None if it was not)."""
    if header is None:
        return str(uuid.uuid4()), None
    if not _REQUEST_ID.fullmatch(header):
        return str(uuid.uuid4()), "expected 1-128 characters from A-Z a-z 0-9 . _ : -"
    if redaction.redact_text(header) != header:
        # Logged on every line and forwarded: it must be an id, not a place for a secret.
        return str(uuid.uuid4()), "it holds what looks like a secret or a card number"
    return header, None


def safe_method(method: str) -> str:
    """The method for the request line: any token is a method, so an unknown one is scanned."""
    return method if method in _KNOWN_METHODS else redaction.redact_text(method)[:32]


def route_template(scope: Scope) -> str:
    """`/books/{book_id}`, not `/books/7`: a bounded value that groups requests by endpoint.

    Recent Starlette records the matched route in `scope["route"]`; without it (older
    releases) the app's routes are matched again here.
    """
    route = scope.get("route")
    if route is None and scope.get("app") is not None:
        for candidate in getattr(scope["app"], "routes", ()):
            match, _ = candidate.matches(scope)
            if match != Match.NONE:
                route = candidate
                if match == Match.FULL:
                    break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path.startswith("/") else "unmatched"


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        headers = Headers(scope=scope)
        inbound_trace = headers.get(tracecontext.HEADER)
        trace, trace_problem = tracecontext.continue_or_start(inbound_trace)
        request_id, request_id_problem = request_id_from(headers.get(REQUEST_ID_HEADER))
        fields = {
            "trace_id": trace.trace_id,
            "span_id": trace.span_id,
            "trace_flags": trace.trace_flags,
            "request_id": request_id,
        }
        if trace.parent_span_id:
            fields["parent_span_id"] = trace.parent_span_id
        token = logs.bind_request(fields)
        state = scope.setdefault("state", {})
        state["trace"] = trace
        state["request_id"] = request_id
        log = logs.get_logger()
        if trace_problem:
            log.warning(
                "invalid traceparent header, started a new trace",
                traceparent=redaction.clip(inbound_trace or "", 128),
                reason=trace_problem,
            )
        if request_id_problem:
            log.warning(
                "invalid X-Request-ID header, generated a new one", reason=request_id_problem
            )

        status = 500
        response_started = False
        extra_headers = [
            (b"x-request-id", request_id.encode()),
            (b"x-trace-id", trace.trace_id.encode()),
        ]

        async def send_with_ids(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except asyncio.CancelledError:
            # Cancelled mid-request (shutdown timeout): nginx's 499 "client closed request" is
            # the nearest status; the line still says which request never finished.
            if not response_started:
                status = 499
            raise
        except Exception:
            log.exception("unhandled error while serving the request")
            status = 500
            if not response_started:
                body = error_body(
                    "internal_error", "unexpected error; see the service log", request_id
                )
                await JSONResponse(body, status_code=500)(scope, receive, send_with_ids)
        finally:
            extra: dict[str, Any] = {}
            if ANSWERED_BY_SERVER in state:
                # uvicorn already answered 400 and closed; whatever the app sent was dropped.
                status = 400
                extra["reason"] = state[ANSWERED_BY_SERVER]
            elif REQUEST_LINE_REASON in state:
                extra["reason"] = state[REQUEST_LINE_REASON]
            route = route_template(scope)
            duration_ms = round((time.perf_counter() - started_at) * 1000, 3)
            level = "info"
            if status >= 500:
                level = "error"
            elif status >= 400:
                level = "warning"
            elif route in PROBE_ROUTES:
                level = "debug"
            logs.request_line(
                level,
                method=safe_method(scope["method"]),
                route=route,
                status=status,
                duration_ms=duration_ms,
                **extra,
            )
            logs.unbind_request(token)


def error_body(code: str, message: str, request_id: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    body.update(extra)
    if request_id:
        body["request_id"] = request_id
    return body


def loggable_body(body: Any, limit: int = 2048) -> Any:
    """A client's body fit for a log line: secrets masked first, then cut to `limit` characters.

    Masking happens on the structure (so `cvv` under any key is caught) before any truncation
    could turn it into text that only the weaker free-text rules see.
    """
    masked = redaction.redact_value(body)
    text = json.dumps(masked, separators=(",", ":"), default=str)
    return masked if len(text) <= limit else text[:limit] + "...(truncated)"


def request_id_of(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    state = request.scope.setdefault("state", {})
    if exc.quiet or ANSWERED_BY_SERVER in state:
        state[REQUEST_LINE_REASON] = exc.reason
    else:
        fields = dict(exc.fields)
        if "body" in fields:
            fields["body"] = loggable_body(fields["body"])
        log = logs.get_logger()
        (log.error if exc.status >= 500 else log.warning)(exc.log_msg, reason=exc.reason, **fields)
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    if exc.status == 408:
        # The body is still (maybe) on its way: the connection cannot carry another request.
        headers = {"Connection": "close"}
    body = error_body(exc.code, exc.reason, request_id_of(request), **exc.response)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 as JSON (the WARN is the request line itself)."""
    assert isinstance(exc, HTTPException)
    code = _ERROR_CODES.get(exc.status_code, "error")
    return JSONResponse(
        error_body(code, str(exc.detail), request_id_of(request)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def read_json_object(request: Request, what: str = "request body") -> dict[str, Any]:
    """The body as a JSON object, or ApiError 400/413 saying exactly what is wrong with it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise ApiError(
                400, f"Content-Length {redaction.describe(declared, 40)} is not a number"
            )
        if int(declared) > MAX_BODY_BYTES:
            raise ApiError(
                413,
                f"{what} is {declared} bytes; the limit is {MAX_BODY_BYTES}",
                size=int(declared),
            )
    raw = bytearray()
    timeout = getattr(request.app.state, "read_timeout", DEFAULT_READ_TIMEOUT)
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                raw.extend(chunk)
                if len(raw) > MAX_BODY_BYTES:
                    raise ApiError(413, f"{what} is over the limit of {MAX_BODY_BYTES} bytes")
    except ClientDisconnect:
        raise ApiError(
            400, "the client went away before sending the whole body", quiet=True
        ) from None
    except TimeoutError:
        raise ApiError(
            408, f"{what} did not arrive within {timeout:g} s; send it at once", quiet=True
        ) from None
    if not raw.strip():
        raise ApiError(400, f"{what} is empty; expected a JSON object")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"{what} is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # numbers over 4300 digits, absurd nesting
        raise ApiError(400, f"{what} is not usable JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise ApiError(422, f"{what} must be a JSON object, got {type(value).__name__}", body=value)
    return value


def require_int(body: dict[str, Any], key: str, *, minimum: int, maximum: int) -> int:
    """`body[key]` as an int in [minimum, maximum], or ApiError 422 (with the body, redacted)."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        shown = (
            "missing"
            if key not in body
            else f"{type(value).__name__} {redaction.describe(value, 40)}"
        )
        raise ApiError(
            422,
            f"{key} must be an integer from {minimum} to {maximum} (got {shown})",
            body=body,
        )
    return value


def forced_fault(request: Request) -> bool:
    """True when the request asks for a database failure; ApiError 400 for unknown faults."""
    try:
        return faults.requested_fault(request.headers.get(faults.FAULT_HEADER)) == "database"
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


async def on_database_unavailable(request: Request, exc: Exception) -> Response:
    """The 503 and the ERROR line of a database that failed every attempt (the incident)."""
    assert isinstance(exc, faults.DatabaseUnavailable)
    logs.get_logger().error(
        "Database connection failed",
        error=str(exc.last),
        error_type=type(exc.last).__name__,
        retry_attempt=exc.attempts,
        exc_info=exc.last,
    )
    body = error_body(
        "database_unavailable",
        "the database is unavailable; try again",
        request_id_of(request),
        error_type=type(exc.last).__name__,
        retry_attempt=exc.attempts,
    )
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


EXCEPTION_HANDLERS = {
    ApiError: on_api_error,
    HTTPException: on_http_exception,
    faults.DatabaseUnavailable: on_database_unavailable,
}


def common_routes(
    switch: faults.FaultSwitch, is_ready: Callable[[], tuple[bool, str]]
) -> list[Route]:
    """Liveness, readiness and the runtime fault switch, identical in both services."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, detail = is_ready()
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "detail": detail},
            status_code=200 if ready else 503,
        )

    async def get_faults(request: Request) -> Response:
        return JSONResponse({"rate": switch.rate})

    async def put_faults(request: Request) -> Response:
        body = await read_json_object(request)
        if "rate" not in body:
            raise ApiError(422, 'expected {"rate": <number from 0 to 1>}', body=body)
        try:
            rate = faults.parse_rate(body["rate"], source="rate")
        except ValueError as exc:
            raise ApiError(422, str(exc), body=body) from None
        previous, switch.rate = switch.rate, rate
        log = logs.get_logger()
        (log.warning if rate > 0 else log.info)(
            "fault rate changed", previous_rate=previous, fault_rate=rate
        )
        return JSONResponse({"rate": rate, "previous_rate": previous})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/admin/faults", get_faults, methods=["GET"]),
        Route("/admin/faults", put_faults, methods=["PUT"]),
    ]


def service_app(
    routes: list[Route],
    switch: faults.FaultSwitch,
    is_ready: Callable[[], tuple[bool, str]],
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]],
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> Starlette:
    """A service's Starlette app: its own routes plus the common ones, the request context and
    the JSON error handlers, assembled the same way for both services."""
    app = Starlette(
        routes=[*routes, *common_routes(switch, is_ready)],
        middleware=[Middleware(RequestContext)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.read_timeout = read_timeout
    return app
