"""The demo service's simulated service times and its knobs: a slowdown to inject, failures to inject.

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
``slow_kind``
    ``wait`` (default): the added time is awaited, as a slower database or downstream call would be.
    ``cpu``: it is computed, holding the process's CPU and its event loop, as slower code would.

Settings come from the environment variables ``PERFGATE_DEMO_SLOWDOWN_PCT``,
``PERFGATE_DEMO_SLOW_ENDPOINT``, ``PERFGATE_DEMO_SLOW_TAIL_FRACTION``, ``PERFGATE_DEMO_SLOW_KIND`` and
``PERFGATE_DEMO_FAILURE_PCT``
(that percent of requests, ``/health`` excepted, answer 500) and ``PERFGATE_DEMO_LEAK_KB`` (each request keeps
that many KiB for good, a leak that ``GET /metrics`` shows in ``process_resident_memory_bytes``)
(:meth:`DemoSettings.from_env`) or from the flags of ``python -m perfgate.demo``.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "ENV_FAILURE_PCT",
    "ENV_LEAK_KB",
    "ENV_SLOWDOWN_PCT",
    "ENV_SLOW_ENDPOINT",
    "ENV_SLOW_KIND",
    "ENV_SLOW_TAIL_FRACTION",
    "SERVICE_TIMES_MS",
    "TAIL_FACTOR",
    "DemoSettings",
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
ENV_SLOW_KIND = "PERFGATE_DEMO_SLOW_KIND"
ENV_LEAK_KB = "PERFGATE_DEMO_LEAK_KB"


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
    slow_kind: Literal["wait", "cpu"] = "wait"
    """``wait``: the added time is awaited (I/O); ``cpu``: it is spent computing, holding the process's CPU."""
    failure_pct: float = 0.0
    """Percent of requests (all endpoints but ``/health``) answered with a 500: a broken build."""
    leak_kb: float = 0.0
    """KiB of memory each request (but ``/health`` and ``/metrics``) keeps for good: a leak, seen in ``/metrics``."""

    @field_validator("leak_kb")
    @classmethod
    def _check_leak(cls, v: float) -> float:
        if not math.isfinite(v) or not 0.0 <= v <= 1024.0:
            raise ValueError("must be a number of KiB between 0 and 1024")
        return v

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
            ("slow_kind", ENV_SLOW_KIND, str),
            ("failure_pct", ENV_FAILURE_PCT, _number),
            ("leak_kb", ENV_LEAK_KB, _number),
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
        return f"slowdown {self.slowdown_pct:g}% on {where}" + (" (computed)" if self.slow_kind == "cpu" else "")


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
