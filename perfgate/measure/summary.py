"""Turn a raw recording into what a run measured: per-endpoint statistics, samples, series, validity.

The warm-up window is cut here, by each request's start time relative to the
test start. Quantiles in the statistics are exact (computed from every request);
the stored histogram keeps them within 0.1 % for later comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfgate.config import ResolvedProfile
from perfgate.measure.contract import CHECK_REQUEST_TYPE, PACING_TOLERANCE_S, EndpointRecording, Recording
from perfgate.records import CheckResult, EndpointResult, EndpointStats, MasterUsage, SecondBucket, Topology
from perfgate.samples import LatencyHistogram

STAT_QUANTILES = (0.5, 0.9, 0.95, 0.99)
ERROR_STORM_RATE = 0.5
"""A run where at least this share of measured requests failed is not judged."""
TARGET_RATE_SHARE = 0.9
"""A run that achieves less than this share of the profile's target_rps is not judged."""
PROCESS_EXIT_CODE_CHECK = "environment.process_exit_code"
"""The check a locustfile's own exit code becomes (set by its threshold checks, as plain Locust exits by it)."""
READY_SHARE = 0.5
"""Users not spawned and through on_start after this share of the run time make the run invalid."""
DRIFT_SHARE = 0.2
"""The first share of the measured window compared with the rest for the drift warning."""
DRIFT_RATIO = 1.5
"""The early part's p50 above this multiple of the rest's is a warning: the warm-up was too short."""
DRIFT_MIN_SAMPLES = 50
"""Successful requests each part needs before the drift warning speaks."""
LOAD_GENERATOR_SATURATED = "the load generator's CPU went above 90 %"
"""Start of the one invalidity reason that is the machine's doing rather than the service's."""


LOAD_GENERATOR_BEHIND = "the load generator fell behind its schedule"
"""Start of the reason an open-loop run is invalid when its paced iterations started late with users waiting."""
PACED_LATE_SHARE = 0.05
"""Paced iterations late by the generator's own fault in more than this share make an open-loop run invalid."""


def blames_the_machine(reason: str) -> bool:
    """Whether an invalidity reason is the load generator's doing (not the measured service's)."""
    return reason.startswith((LOAD_GENERATOR_SATURATED, LOAD_GENERATOR_BEHIND))


def own_fault_reasons(valid: bool, reasons: list[str]) -> list[str]:
    """Why a run is invalid by the measured service's own fault (empty: valid, or only the machine's doing)."""
    return [] if valid else [reason for reason in reasons if not blames_the_machine(reason)]


@dataclass(frozen=True)
class Measurement:
    """A recording reduced to what is stored."""

    endpoints: list[EndpointResult]
    checks: list[CheckResult]
    test_start: float
    """Epoch seconds."""
    duration_s: float
    """Measured window: from the end of warm-up to the test's stop."""
    total_requests: int
    total_failures: int
    achieved_rps: float
    locust_request_count: int
    recorded_request_count: int
    warmup_excluded: int
    invalid_reasons: list[str]
    warmup_end_s: float = 0.0
    """Seconds from the test's start to the measured window's start."""
    warnings: list[str] = field(default_factory=list)
    topology: Topology = field(default_factory=Topology)
    master: MasterUsage | None = None


def _series(seconds: np.ndarray, failed: np.ndarray, latencies: np.ndarray) -> list[SecondBucket]:
    buckets: list[SecondBucket] = []
    if seconds.size == 0:
        return buckets
    order = np.argsort(seconds, kind="stable")
    seconds, failed, latencies = seconds[order], failed[order], latencies[order]
    starts = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], seconds.size], strict=True):
        ok_latencies = latencies[lo:hi][~failed[lo:hi]]
        p50, p95 = (np.quantile(ok_latencies, (0.5, 0.95)) if ok_latencies.size else (None, None))
        buckets.append(SecondBucket(
            t=int(seconds[lo]), requests=int(hi - lo), failures=int(failed[lo:hi].sum()),
            p50=None if p50 is None else round(float(p50), 3), p95=None if p95 is None else round(float(p95), 3)))
    return buckets


def _endpoint(recording: EndpointRecording, measure_from: float, duration_s: float) -> EndpointResult:
    starts = np.frombuffer(recording.start_times, dtype=np.float64)
    latencies = np.frombuffer(recording.latencies_ms, dtype=np.float64)
    outcomes = np.frombuffer(recording.outcomes, dtype=np.uint16)
    measured = starts >= measure_from
    starts, latencies, outcomes = starts[measured], latencies[measured], outcomes[measured]
    failed = outcomes != 0
    ok_latencies = latencies[~failed]
    failures_by_type = {}
    if failed.any():
        codes, counts = np.unique(outcomes[failed], return_counts=True)
        failures_by_type = {recording.kinds[c - 1]: int(n) for c, n in zip(codes, counts, strict=True)}
    if ok_latencies.size:
        quantiles = np.quantile(ok_latencies, STAT_QUANTILES)
        summary = dict(min=float(ok_latencies.min()), p50=quantiles[0], p90=quantiles[1], p95=quantiles[2],
                       p99=quantiles[3], max=float(ok_latencies.max()), mean=float(ok_latencies.mean()))
        summary = {k: round(float(v), 3) for k, v in summary.items()}
    else:
        summary = dict.fromkeys(("min", "p50", "p90", "p95", "p99", "max", "mean"))
    stats = EndpointStats(
        method=recording.request_type, name=recording.name, count=int(starts.size), failures=int(failed.sum()),
        failures_by_type=failures_by_type, rps=round(starts.size / duration_s, 3) if duration_s > 0 else 0.0,
        **summary)
    seconds = np.floor(starts - measure_from).astype(np.int64)
    return EndpointResult(stats=stats, histogram=LatencyHistogram.from_values(ok_latencies),
                          series=_series(seconds, failed, latencies))


def _checks(recording: EndpointRecording) -> list[CheckResult]:
    results = []
    for outcome in recording.outcomes:
        message = recording.kinds[outcome - 1] if outcome else ""
        results.append(CheckResult(name=recording.name, passed=outcome == 0, message=message))
    return results


def measure(recording: Recording, profile: ResolvedProfile) -> Measurement:
    """Statistics per endpoint (method + name) over the measured window, and the run's validity."""
    meta = recording.meta
    test_start = float(meta.test_start or 0.0)
    test_stop = float(meta.test_stop or test_start)
    # The window starts after the configured warm-up and after every user is ready (spawned and through
    # on_start). A recording without it predates readiness tracking: the warm-up alone then.
    ready_reason = None
    warmup_end = profile.warmup
    if meta.readiness_tracked and test_start:
        ready = meta.users_ready
        limit = READY_SHARE * profile.run_time
        if ready is None or float(ready) - test_start > limit:
            waited = "never" if ready is None else f"only {float(ready) - test_start:.1f} s after the start"
            ready_reason = (f"the users were {waited} all spawned and through on_start, beyond "
                            f"{READY_SHARE:.0%} of the {profile.run_time:g} s run: raise -t, raise the spawn "
                            "rate or make on_start faster")
        else:
            warmup_end = max(warmup_end, float(ready) - test_start)
    measure_from = test_start + warmup_end
    duration_s = max(0.0, test_stop - measure_from)

    endpoints: list[EndpointResult] = []
    checks: list[CheckResult] = []
    warmup_excluded = 0
    for endpoint in sorted(recording.endpoints, key=lambda e: (e.name, e.request_type)):
        if endpoint.request_type == CHECK_REQUEST_TYPE:
            checks.extend(_checks(endpoint))
            continue
        result = _endpoint(endpoint, measure_from, duration_s)
        warmup_excluded += len(endpoint) - result.stats.count
        if result.stats.count:
            endpoints.append(result)

    total = sum(e.stats.count for e in endpoints)
    failures = sum(e.stats.failures for e in endpoints)
    recorded = recording.request_count
    locust_count = -1 if meta.locust_request_count is None else int(meta.locust_request_count)
    reasons = [] if ready_reason is None else [ready_reason]
    if not test_start:
        reasons.append("the load test never started")
    if recorded != locust_count:
        reasons.append(f"perfgate recorded {recorded} requests but Locust counted {locust_count}: samples were lost")
    if total == 0:
        reasons.append("no request was measured after the warm-up; raise -t or lower --warmup")
    elif failures / total >= ERROR_STORM_RATE:
        reasons.append(f"{failures} of {total} measured requests failed: an error storm is not a latency measurement")
    achieved = total / duration_s if duration_s > 0 else 0.0
    if profile.target_rps is not None and achieved < TARGET_RATE_SHARE * profile.target_rps:
        reasons.append(f"achieved {achieved:.1f} requests/s, below {TARGET_RATE_SHARE:.0%} of the target "
                       f"{profile.target_rps:g}/s: the service or the load generator could not keep up")
    if crashes := meta.unhandled_exceptions:
        named = "; ".join(f"{name} ({count}×)" for name, count in crashes[:3])
        more = f"; and {len(crashes) - 3} more" if len(crashes) > 3 else ""
        reasons.append(f"users crashed with unhandled exceptions: {named}{more}; fix the locustfile or the service")
    if (exit_code := meta.process_exit_code) is not None:
        checks.append(CheckResult(
            name=PROCESS_EXIT_CODE_CHECK, passed=exit_code == 0,
            message="" if exit_code == 0 else f"the locustfile set environment.process_exit_code = {exit_code}"))
    distributed = bool(meta.worker_machines)
    if meta.cpu_warning and distributed:
        reasons.append(f"{LOAD_GENERATOR_SATURATED} on the master: it is one thread taking every worker's reports, "
                       "and a saturated master falls behind them; use fewer, bigger workers")
    elif meta.cpu_warning:
        reasons.append(f"{LOAD_GENERATOR_SATURATED}: its timings are not trustworthy; "
                       "use fewer users or more --processes (or workers)")
    if meta.worker_cpu_warning:
        reasons.append(f"{LOAD_GENERATOR_SATURATED} on a worker: its timings are not trustworthy; "
                       "use fewer users per worker, or more workers")
    due = (profile.arrival_rate or 0.0) * duration_s
    late = sum(1 for at in meta.paced_late_at if measure_from <= at <= test_stop)
    if meta.paced and due and late > PACED_LATE_SHARE * due:
        reasons.append(f"{LOAD_GENERATOR_BEHIND}: {late} of {due:.0f} paced iterations started over "
                       f"{PACING_TOLERANCE_S * 1000:g} ms late with a user waiting for them, so the rate offered was "
                       "not the rate planned; offer less, or run the load from a machine with room to spare")
    for worker, at in meta.lost_workers[:5]:
        reasons.append(f"worker {worker} was lost {at:.1f} s into the test (it disconnected or stopped sending "
                       "heartbeats): its users and their requests are missing from the rest of the run")
    return Measurement(
        endpoints=endpoints, checks=checks, test_start=test_start, duration_s=round(duration_s, 3),
        total_requests=total, total_failures=failures,
        achieved_rps=round(achieved, 3),
        locust_request_count=locust_count, recorded_request_count=recorded,
        warmup_excluded=warmup_excluded, invalid_reasons=reasons, warmup_end_s=round(warmup_end, 3),
        warnings=_drift(recording, measure_from, duration_s),
        topology=Topology.of_workers(recording.meta.worker_machines),
        master=MasterUsage.of_samples(recording.meta.master_cpu),
    )


def _drift(recording: Recording, measure_from: float, duration_s: float) -> list[str]:
    """A warning when the first part of the measured window was much slower than the rest (warm-up too short)."""
    if duration_s <= 0:
        return []
    split = measure_from + DRIFT_SHARE * duration_s
    early, late = [], []
    for endpoint in recording.endpoints:
        if endpoint.request_type == CHECK_REQUEST_TYPE:
            continue
        starts = np.frombuffer(endpoint.start_times, dtype=np.float64)
        latencies = np.frombuffer(endpoint.latencies_ms, dtype=np.float64)
        ok = np.frombuffer(endpoint.outcomes, dtype=np.uint16) == 0
        measured = ok & (starts >= measure_from)
        early.append(latencies[measured & (starts < split)])
        late.append(latencies[measured & (starts >= split)])
    early_ms, late_ms = np.concatenate(early or [np.empty(0)]), np.concatenate(late or [np.empty(0)])
    if early_ms.size < DRIFT_MIN_SAMPLES or late_ms.size < DRIFT_MIN_SAMPLES:
        return []
    early_p50, late_p50 = float(np.median(early_ms)), float(np.median(late_ms))
    if late_p50 <= 0 or early_p50 <= DRIFT_RATIO * late_p50:
        return []
    return [f"latency in the first {DRIFT_SHARE * duration_s:.0f} s measured was {early_p50:.0f} ms (p50) against "
            f"{late_p50:.0f} ms later: lengthen warm_up"]
