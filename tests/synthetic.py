"""Synthetic runs with known truth, for testing the decision without load."""

from __future__ import annotations

import math

import numpy as np

from perfgate.compare import RunValues, Side
from perfgate.models import EndpointStats, EnvironmentFingerprint
from perfgate.verdict import SideInfo

ENVIRONMENT = EnvironmentFingerprint(cpu_model="cpu", cores=2, os="Linux", python="3.11", locust="2.47",
                                     perfgate="0.1")
LOAD = {"users": 5, "spawn_rate": 5.0, "run_time": 15.0}


def synthetic_side(rng: np.random.Generator, *, runs: int, endpoints: int = 5, shift: dict[int, float] | None = None,
                   run_noise: float = 0.03, count: int = 2000, label: str = "head", load: dict | None = None,
                   environment: EnvironmentFingerprint = ENVIRONMENT, pair_ids: list[str] | None = None,
                   failures: int = 0) -> Side:
    """``runs`` runs of ``endpoints`` endpoints; endpoint i's latency is scaled by ``1 + shift[i]``.

    Each run has its own machine state (a log-normal factor with sd ``run_noise``,
    shared by all quantiles of the run), as on a real machine.
    """
    shift = shift or {}
    values = []
    for r in range(runs):
        stats = {}
        for i in range(endpoints):
            factor = (1 + shift.get(i, 0.0)) * math.exp(rng.normal(0, run_noise))
            p50 = (10 + i) * factor
            stats[f"GET /e{i}"] = EndpointStats(
                method="GET", name=f"/e{i}", count=count, failures=failures, rps=100 * math.exp(rng.normal(0, 0.01)),
                min=p50 / 3, p50=p50, p90=p50 * 1.8, p95=p50 * math.exp(0.7 + rng.normal(0, run_noise)),
                p99=p50 * 3, max=p50 * 5, mean=p50 * 1.1)
        values.append(RunValues(run_id=r + 1, pair_id=pair_ids[r] if pair_ids else None, valid=True,
                                invalid_reasons=[], endpoints=stats))
    return Side(info=SideInfo(label=label, commit="c" * 40, runs=runs), profile="smoke",
                load_parameters=dict(load or LOAD), environment=environment, runs=values)
