"""The catalog service: the books, their stock, and reservations against that stock.

Routes: `GET /books`, `GET /books/{book_id}`, `POST /books/{book_id}/reserve {"qty": n}`
(409 when stock is short), plus `/healthz`, `/readyz` and `/admin/faults` from `web`.

Data: a fixed seed of books. Each reservation is appended to `reservations.jsonl` under
`DATA_DIR` (the only writable place in the cluster) and replayed at start, so a restarted
container keeps its stock. Every data access goes through the simulated database, which the
fault switch can break.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bookstore import faults, logs, redaction, web
from bookstore.settings import Settings

SERVICE = "catalog"
MAX_QTY = 100
MAX_BOOK_ID = 10**9


@dataclass
class Book:
    id: int
    title: str
    author: str
    price: float
    stock: int


# Ample stock for hours of traffic, except book 7: a rare edition that runs out (409s).
SEED_BOOKS = (
    Book(1, "The Phoenix Project", "Gene Kim, Kevin Behr, George Spafford", 24.99, 5000),
    Book(2, "Site Reliability Engineering", "Betsy Beyer et al.", 39.99, 5000),
    Book(3, "Kubernetes Up & Running", "Brendan Burns et al.", 44.99, 5000),
    Book(4, "Designing Data-Intensive Applications", "Martin Kleppmann", 49.99, 5000),
    Book(5, "Observability Engineering", "Charity Majors et al.", 42.99, 5000),
    Book(6, "The Pragmatic Programmer", "David Thomas, Andrew Hunt", 34.99, 5000),
    Book(7, "The Mythical Man-Month (first edition)", "Frederick P. Brooks Jr.", 120.00, 3),
    Book(8, "Release It!", "Michael T. Nygard", 37.99, 5000),
)


class Inventory:
    """The books and their stock; reservations are persisted as JSON lines."""

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self.books = {book.id: Book(**asdict(book)) for book in SEED_BOOKS}

    def load(self) -> int:
        """Replay the reservation ledger; returns how many reservations were replayed."""
        if not self.ledger.exists():
            return 0
        replayed = 0
        for number, line in enumerate(self.ledger.read_text(encoding="utf-8").splitlines(), 1):
            try:
                entry = json.loads(line)
                self.books[entry["book_id"]].stock -= entry["qty"]
                replayed += 1
            except (ValueError, KeyError, TypeError):
                logs.get_logger().warning(
                    "skipped an unreadable reservation", ledger=str(self.ledger), line=number
                )
        return replayed

    def all(self) -> list[dict[str, Any]]:
        return [asdict(book) for book in self.books.values()]

    def get(self, book_id: int) -> dict[str, Any] | None:
        book = self.books.get(book_id)
        return asdict(book) if book else None

    def reserve(self, book_id: int, qty: int) -> tuple[bool, int]:
        """(reserved?, stock left): never goes below zero."""
        book = self.books[book_id]
        if book.stock < qty:
            return False, book.stock
        book.stock -= qty
        with self.ledger.open("a", encoding="utf-8") as ledger:
            ledger.write(json.dumps({"book_id": book_id, "qty": qty}) + "\n")
        return True, book.stock


def _book_id(request: Request) -> int:
    raw = request.path_params["book_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 1 <= int(raw) <= MAX_BOOK_ID:
        raise web.ApiError(
            404,
            f"no book with id {redaction.describe(raw, 40)} (ids are positive integers)",
            log_msg="unknown book",
        )
    return int(raw)


def create_app(settings: Settings, switch: faults.FaultSwitch | None = None) -> Starlette:
    switch = switch or faults.FaultSwitch(settings.fault_rate)
    database = faults.SimulatedDatabase("catalog-db", switch)
    inventory = Inventory(settings.data_dir / "reservations.jsonl")
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        replayed = inventory.load()
        state["ready"] = True
        logs.get_logger().info(
            "catalog data loaded",
            books=len(inventory.books),
            reservations_replayed=replayed,
            data_dir=str(settings.data_dir),
            fault_rate=switch.rate,
        )
        yield
        state["ready"] = False

    def is_ready() -> tuple[bool, str]:
        return (True, "books loaded") if state["ready"] else (False, "books not loaded yet")

    async def list_books(request: Request) -> Response:
        books = await database.run(inventory.all, forced=web.forced_fault(request))
        return JSONResponse({"books": books, "count": len(books)})

    async def get_book(request: Request) -> Response:
        forced = web.forced_fault(request)
        book_id = _book_id(request)
        book = await database.run(lambda: inventory.get(book_id), forced=forced)
        if book is None:
            raise web.ApiError(404, f"no book with id {book_id}", log_msg="unknown book")
        return JSONResponse(book)

    async def reserve(request: Request) -> Response:
        forced = web.forced_fault(request)
        book_id = _book_id(request)
        body = await web.read_json_object(request)
        qty = web.require_int(body, "qty", minimum=1, maximum=MAX_QTY)

        def reserve_stock() -> tuple[bool, int] | None:
            if book_id not in inventory.books:
                return None
            return inventory.reserve(book_id, qty)

        outcome = await database.run(reserve_stock, forced=forced)
        if outcome is None:
            raise web.ApiError(404, f"no book with id {book_id}", log_msg="unknown book")
        reserved, left = outcome
        if not reserved:
            raise web.ApiError(
                409,
                f"only {left} of book {book_id} in stock, {qty} requested",
                code="insufficient_stock",
                log_msg="reservation refused: not enough stock",
                response={"book_id": book_id, "available": left},
                book_id=book_id,
                qty=qty,
                available=left,
            )
        logs.get_logger().info("stock reserved", book_id=book_id, qty=qty, remaining=left)
        return JSONResponse({"book_id": book_id, "reserved": qty, "remaining": left})

    routes = [
        Route("/books", list_books, methods=["GET"]),
        Route("/books/{book_id}", get_book, methods=["GET"]),
        Route("/books/{book_id}/reserve", reserve, methods=["POST"]),
    ]
    return web.service_app(routes, switch, is_ready, lifespan, settings.read_timeout)
