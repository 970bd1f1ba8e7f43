"""Run-level statistics for the gate: shift estimates, one-sided tests, intervals, Holm, power.

The unit of evidence is the run, not the request: requests inside one run share a
machine state and are autocorrelated, so a per-request test calls a 1 % shift
"significant" at p ≈ 1e-45. Each function here takes one value per run (a
log-quantile, a failure rate, a log-throughput) and treats the runs as the
independent replicates they are.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr, stdtrit

from perfgate.decide.rules import holm  # noqa: F401 - re-exported
from perfgate.samples import GAMMA, LatencyHistogram

POWER = 0.8
"""Power at which the smallest detectable change is reported."""


# Student's t from scipy.special: the same functions scipy.stats.t evaluates, without importing scipy.stats
# (about 2 s of CPU at every start of the CLI, which most commands never need).

def t_cdf(x: float, df: float) -> float:
    """P(T ≤ x) for Student's t with ``df`` degrees of freedom (any positive real, or infinity)."""
    return float(stdtr(df, x))


def t_sf(x: float, df: float) -> float:
    """P(T > x)."""
    return float(stdtr(df, -x))


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t."""
    return float(stdtrit(df, q))


def welch_p(first: Sequence[float], second: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test of two samples of 2 or more values (not both constant)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return 2 * t_sf(abs(float(t)), float(df))


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The full linear convolution of two count vectors, by FFT."""
    n = a.size + b.size - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)[:n]


@dataclass(frozen=True)
class ShiftEstimate:
    """``head - base`` on the test's scale, with its standard error and degrees of freedom."""

    method: str
    """``welch``, ``pooled``, ``paired`` or ``duet``."""
    diff: float
    se: float
    df: float
    n_base: int
    n_head: int

    def p_greater(self, than: float = 0.0) -> float:
        """One-sided p-value for the true shift being greater than ``than``."""
        if self.se == 0:
            return 0.0 if self.diff > than else 1.0
        return t_sf((self.diff - than) / self.se, self.df)

    def p_less(self, than: float = 0.0) -> float:
        """One-sided p-value for the true shift being less than ``than``."""
        if self.se == 0:
            return 0.0 if self.diff < than else 1.0
        return t_cdf((self.diff - than) / self.se, self.df)

    def interval(self, confidence: float) -> tuple[float, float]:
        """Two-sided confidence interval for the shift."""
        if self.se == 0:
            return self.diff, self.diff
        half = t_ppf(0.5 + confidence / 2, self.df) * self.se
        return self.diff - half, self.diff + half

    def detectable(self, alpha: float, power: float = POWER) -> float:
        """Smallest one-sided shift found with ``power`` at level ``alpha`` by data this noisy."""
        if self.se == 0:
            return 0.0
        return (t_ppf(1 - alpha, self.df) + t_ppf(power, self.df)) * self.se


class TooFewRuns(ValueError):
    """Not enough runs on a side to estimate run-to-run noise."""


def estimate_shift(base: Sequence[float], head: Sequence[float], *, paired: bool = False) -> ShiftEstimate:
    """Shift of ``head`` against ``base``, one value per run.

    Paired: ``base[i]`` and ``head[i]`` ran back to back; the test is on their
    differences. Unpaired: Welch's test when both sides have two runs or more;
    with a single head (or base) run, Student's test with the other side's
    variance, which then needs at least three runs.
    """
    b = np.asarray(base, dtype=float)
    h = np.asarray(head, dtype=float)
    if paired:
        if b.size != h.size:
            raise ValueError("paired samples must have the same length")
        if b.size < 2:
            raise TooFewRuns("needs at least 2 pairs")
        d = h - b
        return ShiftEstimate("paired", float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size)),
                             float(d.size - 1), b.size, h.size)
    nb, nh = b.size, h.size
    diff = float(h.mean() - b.mean()) if nb and nh else 0.0
    if nb >= 2 and nh >= 2:
        vb, vh = b.var(ddof=1) / nb, h.var(ddof=1) / nh
        se2 = vb + vh
        if se2 == 0:
            return ShiftEstimate("welch", diff, 0.0, float(nb + nh - 2), nb, nh)
        df = se2**2 / (vb**2 / (nb - 1) + vh**2 / (nh - 1))
        return ShiftEstimate("welch", diff, float(math.sqrt(se2)), float(df), nb, nh)
    if min(nb, nh) == 1 and max(nb, nh) >= 3:
        many = b if nb > nh else h
        s = float(many.std(ddof=1))
        return ShiftEstimate("pooled", diff, s * math.sqrt(1 / nb + 1 / nh), float(many.size - 1), nb, nh)
    raise TooFewRuns(f"{nb} baseline and {nh} head run(s): needs at least 2 runs on each side "
                     "(or 3 on one side and 1 on the other)")


DUET_MIN_BLOCKS = 4
"""Blocks a same-moment run needs before its differences say anything."""
DUET_BETWEEN_MIN_RUNS = 3
"""Same-moment runs from which the spread of their means joins the variance."""


def cosine_variance(d: np.ndarray) -> tuple[float, float]:
    """Variance of the mean of an autocorrelated series, and its degrees of freedom.

    The equal-weighted cosine estimate (Lazarus, Lewis, Stock & Watson 2018): the series projected on the
    first ``B`` cosines of its length, whose squares are ``B`` nearly independent estimates of the long-run
    variance, so the t statistic follows Student's t with ``B`` degrees of freedom. ``B = n/3``, more than
    their ``0.4·n^(2/3)`` because block differences barely correlate (lag-1 about 0 measured on the demo),
    so that a first look at a few runs can decide; checked by the A/A benchmark. With no correlation it is
    exact; with a lag-1 correlation of 0.3 a 5 % test rejects about 7 % of the time.
    """
    n = d.size
    x = d - d.mean()
    count = max(1, n // 3)
    t = np.arange(n) + 0.5
    weights = np.sqrt(2 / n) * np.cos(np.pi * np.outer(np.arange(1, count + 1), t) / n)
    projections = weights @ x
    return float(projections @ projections) / count / n, float(count)


def duet_shift(runs: Sequence[Sequence[float]]) -> ShiftEstimate:
    """Shift of head against base from same-moment runs, one series of block differences (head − base) per run.

    Within a run, the mean difference and its variance by :func:`cosine_variance` (neighbouring blocks may
    share the machine's state). Across runs, their mean, with the within-run variances plus whatever the
    runs' means spread beyond them (a side's position in the run, the services' start): a random-effects
    combination whose degrees of freedom come from Satterthwaite's rule. Below :data:`DUET_BETWEEN_MIN_RUNS`
    runs the spread of the means is not estimated (one or two runs give it one degree of freedom at most,
    which would sink every test); the runs swap sides, so a side's position cancels in their mean.
    """
    series = [np.asarray(d, dtype=float) for d in runs]
    if not series:
        raise TooFewRuns("needs at least 1 same-moment run")
    if short := [d.size for d in series if d.size < DUET_MIN_BLOCKS]:
        raise TooFewRuns(f"a same-moment run has {min(short)} block(s) with requests on both sides, "
                         f"{DUET_MIN_BLOCKS} needed; lengthen -t")
    means = np.array([d.mean() for d in series])
    within = [cosine_variance(d) for d in series]
    between = _between_runs(means, within)
    return _duet_estimate(float(means.mean()), within, between if len(series) >= DUET_BETWEEN_MIN_RUNS else 0.0)


def _between_runs(means: np.ndarray, within: Sequence[tuple[float, float]]) -> float:
    """How far the runs' means spread beyond their own within-run variances (a variance, never negative)."""
    if len(means) < 2:
        return 0.0
    return max(0.0, float(means.var(ddof=1)) - sum(v for v, _ in within) / len(means))


def _duet_estimate(diff: float, within: Sequence[tuple[float, float]], between: float) -> ShiftEstimate:
    """The mean of ``len(within)`` runs' means: within-run variances (each with its df) plus ``between``."""
    r = len(within)
    a = sum(v for v, _ in within) / r**2
    df_a = a**2 / sum((v / r**2) ** 2 / df for v, df in within) if a > 0 else float(sum(df for _, df in within))
    b = between / r
    var = a + b
    df = var**2 / (a**2 / df_a + (b**2 / (r - 1) if b > 0 else 0.0)) if var > 0 else df_a
    return ShiftEstimate("duet", diff, math.sqrt(var), float(df), r, r)


def duet_projection(runs: Sequence[Sequence[float]], planned: int) -> ShiftEstimate:
    """What :func:`duet_shift` would give after ``planned`` same-moment runs as noisy as ``runs`` (A/A runs:
    their shift is not kept): each run with the measured runs' mean within-run variance and degrees of
    freedom, plus the spread between them from :data:`DUET_BETWEEN_MIN_RUNS` planned runs on (``calibrate``)."""
    series = [np.asarray(d, dtype=float) for d in runs]
    if len(series) < DUET_BETWEEN_MIN_RUNS or any(d.size < DUET_MIN_BLOCKS for d in series):
        raise TooFewRuns(f"needs {DUET_BETWEEN_MIN_RUNS} same-moment runs of {DUET_MIN_BLOCKS} blocks or more")
    within = [cosine_variance(d) for d in series]
    between = _between_runs(np.array([d.mean() for d in series]), within)
    typical = (statistics.fmean(v for v, _ in within), statistics.fmean(df for _, df in within))
    return _duet_estimate(0.0, [typical] * planned, between if planned >= DUET_BETWEEN_MIN_RUNS else 0.0)


def hodges_lehmann_relative_shift(base: LatencyHistogram, head: LatencyHistogram) -> float:
    """Median over all (base, head) request pairs of head/base, minus one, from bucket counts.

    The differences of bucket keys are the log-ratios (in units of log γ); their
    count-weighted distribution is the convolution of the two count vectors.
    """
    if base.count - base.zero_count == 0 or head.count - head.zero_count == 0:
        raise ValueError("both sides need positive latencies")
    a0, a1 = int(base.keys[0]), int(base.keys[-1])
    b0, b1 = int(head.keys[0]), int(head.keys[-1])
    dense_a = np.zeros(a1 - a0 + 1)
    dense_a[base.keys - a0] = base.counts
    dense_b = np.zeros(b1 - b0 + 1)
    dense_b[head.keys - b0] = head.counts
    weights = np.clip(_convolve(dense_b, dense_a[::-1]), 0, None)
    cumulative = np.cumsum(weights)
    index = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    key_difference = (b0 - a1) + index
    return math.exp(key_difference * math.log(GAMMA)) - 1
