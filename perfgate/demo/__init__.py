"""In-memory demo service that perfgate load-tests in its ``demo`` command, tests and benchmarks.

Run it with ``python -m perfgate.demo --host 127.0.0.1 --port 8080``; see
:mod:`perfgate.demo.app` for the endpoints and :mod:`perfgate.demo.settings` for
their simulated service times and the slowdown knob.

The names below are loaded lazily, so that ``python -m perfgate.demo --help`` (and
command-line errors) do not pay for importing FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    "normalise_endpoint",
]

if TYPE_CHECKING:
    from perfgate.demo.app import (
        ENV_SLOW_ENDPOINT,
        ENV_SLOW_TAIL_FRACTION,
        ENV_SLOWDOWN_PCT,
        SEEDED_ITEM_COUNT,
        SEEDED_PRODUCTS,
        SEEDED_STOCK,
        SERVICE_TIMES_MS,
        TAIL_FACTOR,
        DemoSettings,
        create_app,
        normalise_endpoint,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from perfgate.demo import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
