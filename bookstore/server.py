"""Running an app under uvicorn with JSON-only output and a clean, logged shutdown.

uvicorn is started with `log_config=None` so it leaves logging alone (our bridge in `logs`
already turns its `uvicorn.error` records into JSON) and with its access log off (our request
line replaces it). On SIGTERM uvicorn stops accepting connections and lets in-flight requests
finish (up to `Settings.shutdown_timeout`); then the last line, `shutdown complete`, is written.

uvicorn re-raises the signal it caught once it has shut down (so that a default handler would
kill the process). A handler of our own is installed first: it only records the signal, the
process returns from `serve` normally, and the final line is written before exiting 0.

HTTP/1.1 is served by `GuardedH11Protocol`, uvicorn's h11 protocol with two guards:

- a request head must arrive within `Settings.read_timeout` (a connection that sends half a
  head, or nothing, is closed; with a partial head it is answered 408 and one WARN line is
  written), so a slow client cannot hold a connection or delay shutdown;
- when uvicorn answers a request itself (400 for malformed chunked data) while the app is
  still running it, the app is told it is disconnected: its own answer is dropped instead
  of being sent on a finished response (which used to raise, log an ERROR with a stack, a
  `status: 500` request line and "ASGI callable returned without completing response").
  The request line (WARN, 400, with the reason) is then the only line, so uvicorn's generic
  "Invalid HTTP request received." is not written for that request.

The body's read timeout is the app's (`web.read_json_object`: 408, connection closed). The
names used here (`cycle`, `send_400_response`, `conn`, `transport`, `logger`) are those of
uvicorn/protocols/http/h11_impl.py (read in uvicorn 0.54.0, the version installed here); tests/
test_bookstore_protocol.py proves the behaviour against the installed uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from bookstore import logs
from bookstore.settings import Settings
from bookstore.web import ANSWERED_BY_SERVER

_INVALID_REQUEST = "Invalid HTTP request received."
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 25\r\nconnection: close\r\n\r\nrequest head not received"
)


class _ProtocolLog(logging.LoggerAdapter):
    """uvicorn.error for one connection: drops the generic protocol-error WARN when the
    request line will report that request (see GuardedH11Protocol.send_400_response)."""

    def __init__(self, protocol: GuardedH11Protocol) -> None:
        super().__init__(logging.getLogger("uvicorn.error"), {})
        self.protocol = protocol

    @property
    def level(self) -> int:  # uvicorn reads `logger.level` before its TRACE messages
        return self.logger.level

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if msg == _INVALID_REQUEST and self.protocol.request_in_flight():
            return
        super().warning(msg, *args, **kwargs)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and no double answer (see above)."""

    read_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _ProtocolLog(self)  # type: ignore[assignment]
        self._head_timer: asyncio.TimerHandle | None = None

    def request_in_flight(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.disconnected

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head gets the same deadline

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # a whole head arrived
        elif self._head_timer is None and not self.transport.is_closing():
            self._arm_head_timer()  # the first bytes of a head on a kept-alive connection

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if self.request_in_flight():
            cycle.scope["state"][ANSWERED_BY_SERVER] = (
                "malformed request data after the head; the server answered 400 and closed"
            )
        super().send_400_response(msg)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's sends are now dropped, receive() disconnects
            cycle.message_event.set()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = asyncio.get_running_loop().call_later(
            self.read_timeout, self._head_timed_out
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.request_in_flight():
            return  # pipelined: the current request is the app's to finish
        partial, _closed = self.conn.trailing_data
        if partial:
            logs.get_logger().warning(
                "request head not received in time, connection closed",
                answered=408,
                received_bytes=len(partial),
                read_timeout_s=self.read_timeout,
            )
            self.transport.write(_TIMEOUT_408)
        self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server, plus a `<service> listening` line once the socket is bound."""

    def __init__(self, config: uvicorn.Config, service: str) -> None:
        super().__init__(config)
        self.service = service

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            port = self.config.port
            listeners = [s for server in getattr(self, "servers", []) for s in server.sockets]
            if listeners:
                port = listeners[0].getsockname()[1]
            logs.get_logger().info(
                f"{self.service} listening", addr=f"{self.config.host}:{port}", port=port
            )


def serve(app: ASGIApp, service: str, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    received: list[str] = []

    def note_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    previous: dict[int, Any] = {
        sig: signal.signal(sig, note_signal) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        lifespan="on",
        http=type(
            "GuardedH11Protocol", (GuardedH11Protocol,), {"read_timeout": settings.read_timeout}
        ),
    )
    server = _Server(config, service)
    log = logs.get_logger()
    try:
        server.run()
    except SystemExit:
        # uvicorn exits when it cannot bind (its ERROR line says why); add what to check.
        if server.started:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started and not received:
        log.error(
            f"{service} did not start",
            addr=f"{settings.host}:{settings.port}",
            hint="see the ERROR line before this one: port in use? DATA_DIR writable? "
            "PORT, HOST and DATA_DIR set as intended?",
        )
        return 1
    log.info("shutdown complete", signal=received[-1] if received else None)
    return 0
