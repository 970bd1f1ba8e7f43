"""An endurance run judged over its own length: does the service's memory keep growing, does its latency drift?

Two findings on one run (of a profile listed in ``[endurance] profiles``), each with a 90 % interval:

- **Memory slope**: MB a minute over the measured window, from the service's resident memory (its own
  ``process_resident_memory_bytes`` when scraped, else perfgate's RSS samples of its process tree). Samples a
  second apart are strongly autocorrelated, so the slope is fitted on the means of ten equal blocks of the window
  (ordinary least squares, t with 8 degrees of freedom), its standard error widened by the blocks' own lag-1
  autocorrelation: an interval from the blocks' scatter, not from the seconds'. It fails when the interval's low
  end is above ``memory_mb_per_min``: memory surely growing that fast.
- **Latency drift**: the ratio of the p50 in the last fifth of the window to the first fifth's, all endpoints'
  per-second p50s, Welch's t on their logs. It fails when the interval's low end is above ``1 + latency_drift``.

Too few samples make a finding undecided, never failed: an interval that cannot be drawn is no evidence.
"""

from __future__ import annotations

import math
import statistics

from pydantic import ConfigDict

from perfgate.boundary import BoundaryModel
from perfgate.config import EnduranceConfig
from perfgate.records import RunRecord

BLOCKS = 10
PART = 0.2
"""The share of the window at each end that latency drift compares."""
LEVEL = 0.90
MEMORY_SERIES = "process_resident_memory_bytes"


class EnduranceFinding(BoundaryModel):
    model_config = ConfigDict(frozen=True)

    name: str
    """``memory slope`` or ``latency drift``."""
    value: float | None
    """MB a minute, or the ratio last/first − 1."""
    low: float | None = None
    high: float | None = None
    limit: float
    passed: bool
    source: str = ""
    """Where the values came from."""
    note: str = ""


def _blocks(points: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    width = (end - start) / BLOCKS
    out = []
    for i in range(BLOCKS):
        inside = [v for t, v in points if start + i * width <= t < start + (i + 1) * width]
        if inside:
            out.append((start + (i + 0.5) * width, statistics.fmean(inside)))
    return out


def memory_slope(points: list[tuple[float, float]], start: float, end: float) -> tuple[float, float, float] | None:
    """MB a minute with its interval, from ``(seconds, MB)`` samples within ``[start, end]``; ``None``: too few."""
    from scipy import stats  # here: the posting commands render endurance lines without SciPy

    blocks = _blocks([(t, v) for t, v in points if start <= t <= end], start, end)
    if len(blocks) < 5:
        return None
    times, values = [t for t, _ in blocks], [v for _, v in blocks]
    fit = stats.linregress(times, values)
    # Blocks of a heap that wanders slowly are still alike next to each other: the standard error is widened by
    # the residuals' lag-1 autocorrelation r, as sqrt((1 + r) / (1 - r)) (none when they alternate).
    residuals = [v - (fit.intercept + fit.slope * t) for t, v in blocks]
    spread = sum(e * e for e in residuals)
    r = sum(a * b for a, b in zip(residuals, residuals[1:], strict=False)) / spread if spread > 0 else 0.0
    r = min(max(r, 0.0), 0.9)
    stderr = float(fit.stderr)
    if not math.isfinite(stderr) or not math.isfinite(float(fit.slope)):
        if spread > 0:
            return None
        stderr = 0.0  # memory that did not move at all: SciPy's error of a perfect line is not a number
    half = float(stats.t.ppf((1 + LEVEL) / 2, len(blocks) - 2)) * stderr * math.sqrt((1 + r) / (1 - r))
    slope = float(fit.slope) if math.isfinite(float(fit.slope)) else 0.0
    return slope * 60, (slope - half) * 60, (slope + half) * 60


def latency_drift(p50s: list[tuple[float, float]], start: float, end: float) -> tuple[float, float, float] | None:
    """Last part's p50 over the first part's, minus 1, with its interval; ``None``: too few seconds."""
    from scipy import stats

    span = end - start
    first = [math.log(v) for t, v in p50s if v > 0 and start <= t < start + PART * span]
    last = [math.log(v) for t, v in p50s if v > 0 and end - PART * span <= t <= end]
    if len(first) < 3 or len(last) < 3:
        return None
    difference = statistics.fmean(last) - statistics.fmean(first)
    a, b = statistics.variance(last) / len(last), statistics.variance(first) / len(first)
    se = math.sqrt(a + b)
    if se == 0:
        return math.expm1(difference), math.expm1(difference), math.expm1(difference)
    df = (a + b) ** 2 / (a * a / (len(last) - 1) + b * b / (len(first) - 1))
    half = float(stats.t.ppf((1 + LEVEL) / 2, df)) * se
    return math.expm1(difference), math.expm1(difference - half), math.expm1(difference + half)


def judge_endurance(run: RunRecord, settings: EnduranceConfig) -> list[EnduranceFinding]:
    """The endurance findings of a run of one of ``settings.profiles`` (none for other profiles)."""
    if run.profile.name not in settings.profiles:
        return []
    # The window in seconds since the test started; the service's samples count from when it was ready, a
    # moment before Locust started: close enough for minutes-long runs (and the metrics from the first scrape).
    start = run.warmup_end_s if run.warmup_end_s is not None else run.profile.warmup
    end = start + run.duration_s
    findings = []
    memory, source = None, ""
    scraped = next((s for s in run.metrics.series if s.name == MEMORY_SERIES and not s.labels), None) \
        if run.metrics else None
    if scraped is not None:
        memory = memory_slope([(t, v / 1e6) for t, v in scraped.samples], start, end)
        source = f"the service's {MEMORY_SERIES}"
    elif run.service is not None:
        memory = memory_slope([(s.t, s.rss_mb * 2**20 / 1e6) for s in run.service.samples], start, end)
        source = "the service's RSS"
    limit = settings.memory_mb_per_min
    findings.append(EnduranceFinding(
        name="memory slope", value=None if memory is None else round(memory[0], 4),
        low=None if memory is None else round(memory[1], 4), high=None if memory is None else round(memory[2], 4),
        limit=limit, passed=memory is None or memory[1] <= limit, source=source,
        note="" if memory is not None else "too few memory samples in the measured window (perfgate serves the "
                                           "service, or --metrics-url, gives them)"))
    seconds: dict[int, list[float]] = {}
    for endpoint in run.endpoints:
        for bucket in endpoint.series:
            if bucket.p50 is not None:
                seconds.setdefault(bucket.t, []).append(bucket.p50)
    p50s = [(start + t, statistics.median(v)) for t, v in sorted(seconds.items())]
    drift = latency_drift(p50s, start, end)
    findings.append(EnduranceFinding(
        name="latency drift", value=None if drift is None else round(drift[0], 5),
        low=None if drift is None else round(drift[1], 5), high=None if drift is None else round(drift[2], 5),
        limit=settings.latency_drift, passed=drift is None or drift[1] <= settings.latency_drift,
        source="every endpoint's p50 each second",
        note="" if drift is not None else "too few seconds measured to compare the first and last fifth"))
    return findings
