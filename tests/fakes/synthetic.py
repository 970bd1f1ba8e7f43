"""Synthetic runs with known truth, for testing the decision without load."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from perfgate.config import ResolvedProfile
from perfgate.decide.sides import RunValues, Side
from perfgate.decide.verdict import SideInfo
from perfgate.records import (
    CheckResult,
    EndpointResult,
    EndpointStats,
    EnvironmentFingerprint,
    GitInfo,
    ResourceSample,
    RunRecord,
    SecondBucket,
    ServiceUsage,
)
from perfgate.samples import LatencyHistogram

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


def make_run(commit: str = "a" * 40, branch: str = "main", profile: str = "smoke", seed: int = 0, *,
             dirty: bool = False, started_at: datetime | None = None, scale: float = 1.0,
             environment: EnvironmentFingerprint | None = None, users: int = 5) -> RunRecord:
    """A stored-run record with real samples, for store and baseline tests."""
    rng = np.random.default_rng(seed)
    endpoints = []
    for name in ("/items", "/orders"):
        values = rng.lognormal(np.log(20), 0.4, 500) * scale
        endpoints.append(EndpointResult(
            stats=EndpointStats(method="GET", name=name, count=505, failures=5, failures_by_type={"HTTP 500": 5},
                                rps=50.5, min=float(values.min()), p50=float(np.quantile(values, 0.5)),
                                p90=float(np.quantile(values, 0.9)), p95=float(np.quantile(values, 0.95)),
                                p99=float(np.quantile(values, 0.99)), max=float(values.max()),
                                mean=float(values.mean())),
            histogram=LatencyHistogram.from_values(values),
            series=[SecondBucket(t=0, requests=50, failures=1, p50=19.5, p95=30.1)],
        ))
    return RunRecord(
        started_at=started_at or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), duration_s=10.0,
        profile=ResolvedProfile(name=profile, locustfile="/x/lf.py", host="http://127.0.0.1:1", users=users,
                                spawn_rate=5, run_time=12, warmup=2),
        git=GitInfo(commit=commit, branch=branch, dirty=dirty),
        environment=environment or ENVIRONMENT,
        endpoints=endpoints, checks=[CheckResult(name="no overselling", passed=True)],
        total_requests=1010, total_failures=10, achieved_rps=101.0, locust_request_count=1100,
        recorded_request_count=1100, warmup_excluded=90, valid=True,
        service=ServiceUsage(cpu_mean=10, cpu_max=20, rss_mean_mb=50, rss_max_mb=52, rss_growth_mb=1.5,
                             samples=[ResourceSample(t=1.0, cpu_percent=10, rss_mb=50)]),
    )
