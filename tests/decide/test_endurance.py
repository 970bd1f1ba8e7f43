"""Endurance findings on synthetic runs: a leak's slope and a drifting latency, each with its interval."""

from __future__ import annotations

import math
import random

from perfgate.config import EnduranceConfig
from perfgate.decide.endurance import judge_endurance, latency_drift, memory_slope
from perfgate.records import MetricSeries, ResourceSample, SecondBucket, ServiceMetrics, ServiceUsage

from fakes.synthetic import make_run


def _run(profile: str = "endurance", leak_mb_per_min: float = 0.0, drift: float = 0.0, seconds: int = 600,
         seed: int = 1, scraped: bool = False):
    rng = random.Random(seed)
    run = make_run(profile=profile, seed=seed)
    # Memory wanders like a heap between collections (a few MB, each second much like the last: AR(1), 0.98)
    # plus the leak.
    level, samples = 0.0, []
    for t in range(seconds + 60):
        level = 0.98 * level + rng.gauss(0, 0.6)
        samples.append(ResourceSample(t=float(t), cpu_percent=10, rss_mb=100 + level + leak_mb_per_min * t / 60))
    endpoints = []
    for e in run.endpoints:
        series = [SecondBucket(t=t, requests=50, failures=0, p95=40.0,
                               p50=20.0 * (1 + drift * t / seconds) * math.exp(rng.gauss(0, 0.1)))
                  for t in range(seconds)]
        endpoints.append(e.model_copy(update={"series": series}))
    update = {"endpoints": endpoints, "duration_s": float(seconds), "warmup_end_s": 30.0,
              "service": ServiceUsage(cpu_mean=10, cpu_max=10, rss_mean_mb=100, rss_max_mb=100, rss_growth_mb=0,
                                      samples=samples)}
    if scraped:
        update["metrics"] = ServiceMetrics(url="http://127.0.0.1:1/metrics", scrapes=len(samples), failed=0, series=[
            MetricSeries(name="process_resident_memory_bytes", kind="gauge",
                         samples=[(s.t, s.rss_mb * 1e6 * 2) for s in samples])])
    return run.model_copy(update=update)


def test_a_leak_fails_the_memory_slope_and_a_flat_heap_holds_it() -> None:
    settings = EnduranceConfig()
    leaking = {f.name: f for f in judge_endurance(_run(leak_mb_per_min=3.0), settings)}["memory slope"]
    assert not leaking.passed and leaking.low > 1.0 and leaking.low < 3.0 * 1.048576 < leaking.high
    assert leaking.source == "the service's RSS"
    held = 0
    for seed in range(20):
        flat = {f.name: f for f in judge_endurance(_run(seed=seed), settings)}["memory slope"]
        held += flat.passed
    assert held == 20
    # The service's own resident memory, when scraped, is used first (here twice the RSS, in bytes).
    scraped = {f.name: f for f in judge_endurance(_run(leak_mb_per_min=3.0, scraped=True), settings)}
    assert scraped["memory slope"].source == "the service's process_resident_memory_bytes"
    assert 2 * 3.0 * 1.048576 * 0.7 < scraped["memory slope"].value < 2 * 3.0 * 1.048576 * 1.3


def test_a_drifting_latency_fails_and_a_steady_one_holds() -> None:
    settings = EnduranceConfig()
    drifting = {f.name: f for f in judge_endurance(_run(drift=0.6), settings)}["latency drift"]
    assert not drifting.passed and drifting.low > 0.20 and 0.3 < drifting.value < 0.6
    steady = {f.name: f for f in judge_endurance(_run(drift=0.0), settings)}["latency drift"]
    assert steady.passed and steady.low < 0 < steady.high


def test_other_profiles_are_not_judged_and_too_few_samples_are_undecided() -> None:
    assert judge_endurance(_run(profile="smoke", leak_mb_per_min=5), EnduranceConfig()) == []
    assert judge_endurance(_run(profile="soak"), EnduranceConfig(profiles=["soak"]))
    assert memory_slope([(1.0, 10.0), (2.0, 11.0)], 0, 600) is None
    assert latency_drift([(1.0, 10.0)], 0, 600) is None
    short = {f.name: f for f in judge_endurance(_run(seconds=4), EnduranceConfig())}
    assert all(f.passed and f.value is None and f.note for f in short.values())


def test_memory_that_never_moves_is_a_flat_slope_not_a_crash() -> None:
    # The demo's resident memory, scraped each second, can stay on one value for a whole short run.
    assert memory_slope([(float(t), 50.0) for t in range(60)], 0, 60) == (0.0, 0.0, 0.0)
    steps = [(float(t), 50.0 + (t >= 30)) for t in range(60)]  # one step up: a slope with a finite interval
    slope, low, high = memory_slope(steps, 0, 60)
    assert all(math.isfinite(v) for v in (slope, low, high)) and low < slope < high
