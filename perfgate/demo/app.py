"""The perfgate demo service: a small FastAPI app modelled on what teams load-test.

State lives in memory (one process, one event loop); every mutation happens under a
lock, so it is safe for concurrent requests and for handlers run on a thread pool.

Simulated service time
----------------------
Each endpoint awaits a small, fixed, deterministic "service time" (``asyncio.sleep``)
before doing its work, so that its latency is dominated by a quantity the slowdown
knob scales precisely. Requests rejected before reaching the handler (unknown routes,
request-body validation errors) skip it.

=========================  ==================
Endpoint                   Service time (ms)
=========================  ==================
``GET /health``            1
``GET /ping``              8
``POST /auth/register``    40
``POST /auth/login``       30
``GET /auth/me``           10
``POST /auth/refresh``     12
``POST /auth/logout``      10
``GET /items``             30
``POST /items``            25
``GET /items/{id}``        15
``PUT /items/{id}``        25
``DELETE /items/{id}``     20
``POST /products``         25
``GET /products/{id}``     12
``POST /orders``           35
``GET /orders``            25
=========================  ==================

The same table is available as :data:`SERVICE_TIMES_MS`, keyed by
``"METHOD /route/template"``. The event loop's timer granularity adds up to about a
millisecond to each sleep, and HTTP handling adds a fixed overhead on top.

Slowdown knob
-------------
:class:`DemoSettings` injects a regression that can be demonstrated and measured:

``slowdown_pct``
    Percentage (float). An affected request's service time is multiplied by
    ``1 + slowdown_pct / 100`` (so ``100`` doubles it). Negative values down to
    ``-100`` model a speed-up. The expected latency change of an affected request is
    therefore ``service_time * slowdown_pct / 100`` milliseconds; relative to the
    whole measured latency (which includes the HTTP overhead) it is smaller.
``slow_endpoint``
    ``"METHOD /route/template"`` as in the table (e.g. ``"POST /orders"``,
    ``"GET /items/{id}"``); only that endpoint is affected. Empty means all endpoints.
``slow_tail_fraction``
    ``0`` (default): every affected request is slowed as above. A value ``f`` in
    ``(0, 1]`` slows only a random fraction ``f`` of the affected requests instead, and
    those requests get a ten times larger effect: their service time is multiplied by
    ``1 + 10 * slowdown_pct / 100`` (floored at 0). The other requests are unchanged.
    This models a regression that only shows in the tail of the latency distribution.

Settings come from the environment variables ``PERFGATE_DEMO_SLOWDOWN_PCT``,
``PERFGATE_DEMO_SLOW_ENDPOINT``, ``PERFGATE_DEMO_SLOW_TAIL_FRACTION`` and ``PERFGATE_DEMO_FAILURE_PCT``
(that percent of requests, ``/health`` excepted, answer 500)
(:meth:`DemoSettings.from_env`) or from the flags of ``python -m perfgate.demo``.

Seeded data
-----------
Products 1-3 (:data:`SEEDED_PRODUCTS`) exist at start-up with a stock of ``10**9`` so a
load test can keep ordering them; items 1-50 (:data:`SEEDED_ITEM_COUNT`) exist as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import os
import random
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
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

#: Simulated service time per endpoint, in milliseconds.
SERVICE_TIMES_MS: Mapping[str, float] = {
    "GET /health": 1.0,
    "GET /ping": 8.0,
    "POST /auth/register": 40.0,
    "POST /auth/login": 30.0,
    "GET /auth/me": 10.0,
    "POST /auth/refresh": 12.0,
    "POST /auth/logout": 10.0,
    "GET /items": 30.0,
    "POST /items": 25.0,
    "GET /items/{id}": 15.0,
    "PUT /items/{id}": 25.0,
    "DELETE /items/{id}": 20.0,
    "POST /products": 25.0,
    "GET /products/{id}": 12.0,
    "POST /orders": 35.0,
    "GET /orders": 25.0,
}

#: How much stronger the slowdown is for the requests hit in tail mode.
TAIL_FACTOR = 10.0

ENV_SLOWDOWN_PCT = "PERFGATE_DEMO_SLOWDOWN_PCT"
ENV_SLOW_ENDPOINT = "PERFGATE_DEMO_SLOW_ENDPOINT"
ENV_SLOW_TAIL_FRACTION = "PERFGATE_DEMO_SLOW_TAIL_FRACTION"
ENV_FAILURE_PCT = "PERFGATE_DEMO_FAILURE_PCT"

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


def normalise_endpoint(value: str) -> str:
    """Canonical ``"METHOD /route"`` form: upper-case method, single space, no trailing slash.

    Raises ``ValueError`` when the result is not an endpoint of the demo service.
    An empty (or blank) value stays empty, meaning "all endpoints".
    """
    parts = value.split()
    if not parts:
        return ""
    if len(parts) != 2:
        raise ValueError(f"expected 'METHOD /route' (e.g. 'POST /orders'), got {value!r}")
    method, route = parts[0].upper(), parts[1]
    if len(route) > 1:
        route = route.rstrip("/")
    key = f"{method} {route}"
    if key not in SERVICE_TIMES_MS:
        known = ", ".join(SERVICE_TIMES_MS)
        raise ValueError(f"unknown endpoint {value!r}; expected one of: {known}")
    return key


class DemoSettings(BaseModel):
    """Configuration of the demo service (immutable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slowdown_pct: float = 0.0
    slow_endpoint: str = ""
    slow_tail_fraction: float = 0.0
    failure_pct: float = 0.0
    """Percent of requests (all endpoints but ``/health``) answered with a 500: a broken build."""

    @field_validator("failure_pct")
    @classmethod
    def _check_failure_pct(cls, v: float) -> float:
        if not math.isfinite(v) or not 0.0 <= v <= 100.0:
            raise ValueError("must be a number between 0 and 100")
        return v

    @field_validator("slowdown_pct")
    @classmethod
    def _check_pct(cls, v: float) -> float:
        if not math.isfinite(v) or v < -100.0:
            raise ValueError("must be a finite number >= -100")
        return v

    @field_validator("slow_endpoint")
    @classmethod
    def _check_endpoint(cls, v: str) -> str:
        return normalise_endpoint(v)

    @field_validator("slow_tail_fraction")
    @classmethod
    def _check_fraction(cls, v: float) -> float:
        if not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ValueError("must be a number between 0 and 1")
        return v

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> DemoSettings:
        """Settings from ``PERFGATE_DEMO_*`` variables; keyword overrides win.

        Raises ``ValueError`` naming the offending variable or field.
        """
        env = os.environ if environ is None else environ
        overrides = {k: v for k, v in overrides.items() if v is not None}
        values: dict[str, Any] = {}
        for key, name, convert in (
            ("slowdown_pct", ENV_SLOWDOWN_PCT, _number),
            ("slow_endpoint", ENV_SLOW_ENDPOINT, str),
            ("slow_tail_fraction", ENV_SLOW_TAIL_FRACTION, _number),
            ("failure_pct", ENV_FAILURE_PCT, _number),
        ):
            raw = env.get(name)
            if key in overrides or raw is None or raw.strip() == "":
                continue
            try:
                values[key] = convert(raw.strip())
                cls.model_validate({key: values[key]})
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise ValueError(f"{name}={raw!r}: {explain(exc, with_field=False)}") from None
        values.update(overrides)
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(explain(exc)) from None

    def multiplier(self, endpoint: str, rng: random.Random | None = None) -> float:
        """Factor applied to ``endpoint``'s service time for one request."""
        if self.slowdown_pct == 0.0 or (self.slow_endpoint and endpoint != self.slow_endpoint):
            return 1.0
        if self.slow_tail_fraction <= 0.0:
            return 1.0 + self.slowdown_pct / 100.0
        draw = (rng or random).random()
        if draw < self.slow_tail_fraction:
            return max(0.0, 1.0 + TAIL_FACTOR * self.slowdown_pct / 100.0)
        return 1.0

    def describe(self) -> str:
        """One-line human description of the injected slowdown."""
        if self.slowdown_pct == 0.0:
            return "no slowdown"
        where = self.slow_endpoint or "all endpoints"
        if self.slow_tail_fraction > 0.0:
            factor = max(0.0, 1.0 + TAIL_FACTOR * self.slowdown_pct / 100.0)
            return (
                f"slowdown {self.slowdown_pct:g}% on {where}, tail mode: "
                f"{self.slow_tail_fraction:g} of requests x{factor:g}"
            )
        return f"slowdown {self.slowdown_pct:g}% on {where}"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def explain(exc: Exception, with_field: bool = True) -> str:
    """A one-line message for a settings ``ValueError`` (including pydantic's)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        msgs = []
        for err in errors():
            msg = str(err.get("msg", ""))
            msg = msg.removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msgs.append(f"{loc}: {msg}" if loc and with_field else msg)
        return "; ".join(msgs)
    return str(exc)


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


def create_app(settings: DemoSettings | None = None) -> FastAPI:
    """Build a fresh demo service with its own in-memory state."""
    settings = settings or DemoSettings()
    state = _State()
    state.seed()
    rng = random.Random()
    rng_lock = threading.Lock()

    async def work(endpoint: str) -> None:
        """Await the endpoint's simulated service time, scaled by the slowdown knob."""
        with rng_lock:
            factor = settings.multiplier(endpoint, rng)
            fails = endpoint != "GET /health" and rng.random() * 100.0 < settings.failure_pct
        seconds = SERVICE_TIMES_MS[endpoint] * factor / 1000.0
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
            order = {
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
