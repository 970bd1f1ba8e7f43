"""The perfgate demo service: a small FastAPI app modelled on what teams load-test.

State lives in memory (one process, one event loop); every mutation happens under a
lock, so it is safe for concurrent requests and for handlers run on a thread pool.

Each endpoint awaits its simulated service time, scaled by the slowdown knob, before its
work; requests rejected before reaching the handler (unknown routes, request-body
validation errors) skip it. The times and the knobs are in :mod:`perfgate.demo.settings`
(re-exported here).

Seeded data
-----------
Products 1-3 (:data:`SEEDED_PRODUCTS`) exist at start-up with a stock of ``10**9`` so a
load test can keep ordering them; items 1-50 (:data:`SEEDED_ITEM_COUNT`) exist as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, ProcessCollector, generate_latest
from pydantic import BaseModel, Field

from perfgate.demo.settings import (
    ENV_FAILURE_PCT,
    ENV_SLOW_ENDPOINT,
    ENV_SLOW_TAIL_FRACTION,
    ENV_SLOWDOWN_PCT,
    SERVICE_TIMES_MS,
    TAIL_FACTOR,
    DemoSettings,
    explain,
    normalise_endpoint,
)

__all__ = [
    "ENV_FAILURE_PCT",
    "ENV_SLOWDOWN_PCT",
    "ENV_SLOW_ENDPOINT",
    "ENV_SLOW_TAIL_FRACTION",
    "SEEDED_ITEM_COUNT",
    "SEEDED_PRODUCTS",
    "SEEDED_STOCK",
    "SERVICE_TIMES_MS",
    "TAIL_FACTOR",
    "DemoSettings",
    "create_app",
    "explain",
    "normalise_endpoint",
]

SEEDED_STOCK = 10**9
#: (id, name, price) of the products present at start-up, each with SEEDED_STOCK.
SEEDED_PRODUCTS: tuple[tuple[int, str, float], ...] = (
    (1, "widget", 9.99),
    (2, "gadget", 24.50),
    (3, "gizmo", 3.75),
)
SEEDED_ITEM_COUNT = 50

DEFAULT_ITEMS_LIMIT = 20
MAX_ITEMS_LIMIT = 100


# --------------------------------------------------------------------------- models


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1)


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    price: float = Field(default=0.0, ge=0)


class ProductIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    stock: int = Field(ge=0)
    price: float = Field(default=0.0, ge=0)


class OrderIn(BaseModel):
    product_id: int
    quantity: int = Field(default=1, ge=1)


# ---------------------------------------------------------------------------- state


@dataclass
class _User:
    id: int
    username: str
    salt: bytes
    password_hash: bytes
    created_at: float


@dataclass
class _Session:
    username: str
    access_token: str
    refresh_token: str


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: dict[str, _User] = field(default_factory=dict)
    sessions_by_access: dict[str, _Session] = field(default_factory=dict)
    sessions_by_refresh: dict[str, _Session] = field(default_factory=dict)
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders_by_product: dict[int, list[int]] = field(default_factory=dict)
    next_user_id: int = 1
    next_item_id: int = 1
    next_product_id: int = 1
    next_order_id: int = 1

    def seed(self) -> None:
        for pid, name, price in SEEDED_PRODUCTS:
            self.products[pid] = {"id": pid, "name": name, "price": price, "stock": SEEDED_STOCK}
            self.orders_by_product[pid] = []
            self.next_product_id = max(self.next_product_id, pid + 1)
        for i in range(1, SEEDED_ITEM_COUNT + 1):
            self.items[i] = {
                "id": i,
                "name": f"item-{i}",
                "description": f"seeded item number {i}",
                "price": round(1.0 + (i * 7 % 100) / 4, 2),
            }
        self.next_item_id = SEEDED_ITEM_COUNT + 1


def _hash_password(password: str, salt: bytes) -> bytes:
    # Cheap on purpose: the cost of a real password hash is part of the simulated time.
    return hashlib.sha256(salt + password.encode("utf-8")).digest()


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(detail: str = "not authenticated") -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


# ------------------------------------------------------------------------------ app


def busy_for(seconds: float) -> None:
    """Busy for ``seconds`` of this thread's CPU time (so that a shared CPU stretches it, as it does real work)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def create_app(settings: DemoSettings | None = None) -> FastAPI:
    """Build a fresh demo service with its own in-memory state."""
    settings = settings or DemoSettings()
    state = _State()
    state.seed()
    rng = random.Random()
    rng_lock = threading.Lock()

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    handled = Counter("demo_requests", "Requests handled, /health and /metrics excepted.", registry=registry)
    kept: list[bytearray] = []
    """What the leak knob keeps: never freed while the service runs."""

    async def work(endpoint: str) -> None:
        """Await the endpoint's simulated service time, scaled by the slowdown knob."""
        if endpoint != "GET /health":
            handled.inc()
            if settings.leak_kb:
                kept.append(bytearray(b"x" * int(settings.leak_kb * 1024)))  # written, so resident
        with rng_lock:
            factor = settings.multiplier(endpoint, rng)
            fails = endpoint != "GET /health" and rng.random() * 100.0 < settings.failure_pct
        seconds = SERVICE_TIMES_MS[endpoint] * factor / 1000.0
        if settings.slow_kind == "cpu" and factor > 1.0:
            # The added time is computed, holding the CPU (and the event loop) as CPU-bound code does.
            busy_for(SERVICE_TIMES_MS[endpoint] * (factor - 1.0) / 1000.0)
            seconds = SERVICE_TIMES_MS[endpoint] / 1000.0
        if seconds > 0:
            await asyncio.sleep(seconds)
        if fails:
            raise HTTPException(status_code=500, detail="injected failure (PERFGATE_DEMO_FAILURE_PCT)")

    app = FastAPI(
        title="perfgate demo service",
        version="1.0",
        description="In-memory service used to demonstrate and benchmark perfgate.",
    )
    app.state.settings = settings

    # ---------------------------------------------------------------- liveness

    @app.get("/health")
    async def health() -> dict[str, str]:
        await work("GET /health")
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        """The process's own metrics (resident memory, CPU seconds, open files) and the requests handled, in the
        Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        await work("GET /ping")
        return {"ping": "pong"}

    # --------------------------------------------------------------------- auth

    def issue_session(username: str) -> dict[str, str]:
        # Caller holds state.lock.
        session = _Session(username, secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        state.sessions_by_access[session.access_token] = session
        state.sessions_by_refresh[session.refresh_token] = session
        return {
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "token_type": "bearer",
        }

    def drop_session(session: _Session) -> None:
        # Caller holds state.lock.
        state.sessions_by_access.pop(session.access_token, None)
        state.sessions_by_refresh.pop(session.refresh_token, None)

    def current_session(request: Request) -> _Session:
        token = _bearer_token(request)
        if token is None:
            raise _unauthorized()
        with state.lock:
            session = state.sessions_by_access.get(token)
        if session is None:
            raise _unauthorized("invalid or expired token")
        return session

    @app.post("/auth/register", status_code=201)
    async def register(body: Credentials) -> dict[str, Any]:
        await work("POST /auth/register")
        salt = secrets.token_bytes(16)
        digest = _hash_password(body.password, salt)
        with state.lock:
            if body.username in state.users:
                raise HTTPException(status_code=409, detail="username already exists")
            user = _User(state.next_user_id, body.username, salt, digest, time.time())
            state.users[body.username] = user
            state.next_user_id += 1
        return {"id": user.id, "username": user.username}

    @app.post("/auth/login")
    async def login(body: Credentials) -> dict[str, str]:
        await work("POST /auth/login")
        with state.lock:
            user = state.users.get(body.username)
        if user is None or not hmac.compare_digest(
            user.password_hash, _hash_password(body.password, user.salt)
        ):
            raise _unauthorized("invalid username or password")
        with state.lock:
            return issue_session(user.username)

    @app.get("/auth/me")
    async def me(request: Request) -> dict[str, Any]:
        await work("GET /auth/me")
        session = current_session(request)
        with state.lock:
            user = state.users[session.username]
        return {"id": user.id, "username": user.username, "created_at": user.created_at}

    @app.post("/auth/refresh")
    async def refresh(body: RefreshRequest) -> dict[str, str]:
        """Exchange a refresh token for a new token pair (both old tokens stop working)."""
        await work("POST /auth/refresh")
        with state.lock:
            session = state.sessions_by_refresh.get(body.refresh_token)
            if session is None:
                raise _unauthorized("invalid or expired refresh token")
            drop_session(session)
            return issue_session(session.username)

    @app.post("/auth/logout", status_code=204)
    async def logout(request: Request) -> Response:
        await work("POST /auth/logout")
        session = current_session(request)
        with state.lock:
            drop_session(session)
        return Response(status_code=204)

    # -------------------------------------------------------------------- items

    @app.get("/items")
    async def list_items(
        limit: Annotated[int, Query(ge=1, le=MAX_ITEMS_LIMIT)] = DEFAULT_ITEMS_LIMIT,
    ) -> list[dict[str, Any]]:
        await work("GET /items")
        with state.lock:
            return [dict(item) for item in islice(state.items.values(), limit)]

    @app.post("/items", status_code=201)
    async def create_item(body: ItemIn) -> dict[str, Any]:
        await work("POST /items")
        with state.lock:
            item = {"id": state.next_item_id, **body.model_dump()}
            state.items[item["id"]] = item
            state.next_item_id += 1
            return dict(item)

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, Any]:
        await work("GET /items/{id}")
        with state.lock:
            item = state.items.get(item_id)
            if item is None:
                raise HTTPException(status_code=404, detail="item not found")
            return dict(item)

    @app.put("/items/{item_id}")
    async def update_item(item_id: int, body: ItemIn) -> dict[str, Any]:
        await work("PUT /items/{id}")
        with state.lock:
            if item_id not in state.items:
                raise HTTPException(status_code=404, detail="item not found")
            item = {"id": item_id, **body.model_dump()}
            state.items[item_id] = item
            return dict(item)

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> Response:
        await work("DELETE /items/{id}")
        with state.lock:
            if state.items.pop(item_id, None) is None:
                raise HTTPException(status_code=404, detail="item not found")
        return Response(status_code=204)

    # ------------------------------------------------------- products and orders

    @app.post("/products", status_code=201)
    async def create_product(body: ProductIn) -> dict[str, Any]:
        await work("POST /products")
        with state.lock:
            product = {"id": state.next_product_id, **body.model_dump()}
            state.products[product["id"]] = product
            state.orders_by_product[product["id"]] = []
            state.next_product_id += 1
            return dict(product)

    @app.get("/products/{product_id}")
    async def get_product(product_id: int) -> dict[str, Any]:
        await work("GET /products/{id}")
        with state.lock:
            product = state.products.get(product_id)
            if product is None:
                raise HTTPException(status_code=404, detail="product not found")
            return dict(product)

    @app.post("/orders", status_code=201)
    async def create_order(body: OrderIn) -> dict[str, Any]:
        await work("POST /orders")
        # Check-and-decrement happens atomically under the lock: stock never goes
        # negative and concurrent orders for the last units cannot oversell.
        with state.lock:
            product = state.products.get(body.product_id)
            if product is None:
                raise HTTPException(status_code=404, detail="product not found")
            if product["stock"] < body.quantity:
                raise HTTPException(
                    status_code=409,
                    detail=f"insufficient stock: {product['stock']} available, "
                    f"{body.quantity} requested",
                )
            product["stock"] -= body.quantity
            order: dict[str, Any] = {
                "id": state.next_order_id,
                "product_id": body.product_id,
                "quantity": body.quantity,
                "created_at": time.time(),
            }
            state.orders[order["id"]] = order
            state.orders_by_product[body.product_id].append(order["id"])
            state.next_order_id += 1
            return {**order, "remaining_stock": product["stock"]}

    @app.get("/orders")
    async def list_orders(product_id: int) -> list[dict[str, Any]]:
        await work("GET /orders")
        with state.lock:
            if product_id not in state.products:
                raise HTTPException(status_code=404, detail="product not found")
            return [dict(state.orders[oid]) for oid in state.orders_by_product[product_id]]

    return app
