"""Budgets: absolute limits for endpoints, from the config file or their command-line text syntax."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from perfgate.boundary import BoundaryModel
from perfgate.config.units import Fraction, Milliseconds, finite
from perfgate.errors import ConfigError


class Budget(BoundaryModel):
    """Absolute limits for the endpoints matching a glob, checked on the head's runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = "*"
    """Glob over ``"METHOD name"``, e.g. ``"GET /items*"``."""
    p50: Milliseconds | None = None
    p95: Milliseconds | None = None
    p99: Milliseconds | None = None
    failure_rate: Fraction | None = None
    """At most this share of requests may fail."""
    rps: float | None = Field(default=None, gt=0)
    """At least this many requests per second."""


BUDGET_FLAG = "--budget"
_CONDITION = re.compile(r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*|p\(\d+\))\s*(?P<op><=|>=|<|>)\s*(?P<value>\S+)\s*$")
_BUDGET_METRICS = {"p50": "p50", "p(50)": "p50", "p95": "p95", "p(95)": "p95", "p99": "p99", "p(99)": "p99",
                   "failure_rate": "failure_rate", "failures": "failure_rate", "rps": "rps"}
_BUDGET_SYNTAX = "such as 'GET /items*: p95<100ms, failure_rate<1%, rps>20'"


def parse_budget(text: str, flag: str = BUDGET_FLAG) -> Budget:
    """A :class:`Budget` from its command-line form ``[ENDPOINT:] METRIC<LIMIT, ...``.

    Latencies (``p50``, ``p95``, ``p99``; k6's ``p(95)`` too) and ``failure_rate`` take ``<`` or ``<=``,
    ``rps`` takes ``>`` or ``>=``; the limit itself passes either way, as in the config file. Limits take the
    config's units: ``100ms``, ``0.1s`` or a bare number of ms; ``1%`` or ``0.01``; requests per second.
    Without ``ENDPOINT:`` the budget covers every endpoint. ``failures`` is ``failure_rate``'s other name.
    ``flag`` names where the text came from in messages. Raises :class:`ConfigError`, one line.
    """
    where = f"{flag} {text!r}"
    endpoint, colon, conditions = text.rpartition(":")
    endpoint = endpoint.strip() if colon else "*"
    if colon and not endpoint:
        raise ConfigError(f"{where}: the endpoint pattern before ':' is empty; write one "
                          f"{_BUDGET_SYNTAX}, or leave out the ':' for every endpoint")
    parts = [part for part in conditions.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"{where}: no limit given; write limits {_BUDGET_SYNTAX}")
    limits: dict[str, str] = {}
    for part in parts:
        match = _CONDITION.match(part)
        if match is None:
            raise ConfigError(f"{where}: {part.strip()!r} is not a limit; write METRIC<LIMIT {_BUDGET_SYNTAX}")
        metric = _BUDGET_METRICS.get(match["metric"].lower())
        if metric is None:
            raise ConfigError(f"{where}: unknown metric {match['metric']!r} in {part.strip()!r}; use p50, p95, "
                              "p99, failure_rate or rps")
        wanted = ">" if metric == "rps" else "<"
        if not match["op"].startswith(wanted):
            bound = "at least (rps>20)" if metric == "rps" else f"at most ({metric}<...)"
            raise ConfigError(f"{where}: {part.strip()!r} points the wrong way; a {metric} budget is {bound}")
        if metric in limits:
            raise ConfigError(f"{where}: {metric} is limited twice; keep one limit per metric")
        limits[metric] = match["value"]
    try:
        # A bare number is milliseconds, as in the config file (where TOML gives it as a number).
        values: dict[str, Any] = {k: float(v) if k != "failure_rate" and re.fullmatch(r"\d+(\.\d+)?", v) else v
                                  for k, v in limits.items()}
        if "rps" in values:
            try:
                values["rps"] = finite(float(values["rps"]), "a throughput")
            except ValueError:
                raise ConfigError(f"{where}: rps {limits['rps']!r} is not a number of requests per second "
                                  "such as 20") from None
        return Budget(endpoint=endpoint, **values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "limit"
        message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
        raise ConfigError(f"{where}: {field} {limits.get(field, '')!r}: {message}") from None
