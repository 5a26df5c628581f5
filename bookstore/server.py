"""Running an app under uvicorn with JSON-only output and a clean, logged shutdown.

uvicorn is started with `log_config=None` so it leaves logging alone (our bridge in `logs`
already turns its `uvicorn.error` records into JSON) and with its access log off (our request
line replaces it). On SIGTERM uvicorn stops accepting connections and lets in-flight requests
finish (up to `Settings.shutdown_timeout`); then the last line, `shutdown complete`, is written.

uvicorn re-raises the signal it caught once it has shut down (so that a default handler would
kill the process). A handler of our own is installed first: it only records the signal, the
process returns from `serve` normally, and the final line is written before exiting 0.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from bookstore import logs
from bookstore.settings import Settings


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
