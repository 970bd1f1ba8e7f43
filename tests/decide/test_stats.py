"""Run-level statistics against SciPy and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from perfgate.decide.stats import (
    ShiftEstimate,
    TooFewRuns,
    estimate_shift,
    hodges_lehmann_relative_shift,
    holm,
    t_cdf,
    t_ppf,
    t_sf,
    welch_p,
)
from perfgate.samples import LatencyHistogram, _representatives


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    base, head = rng.normal(0, 0.03, 6), rng.normal(0.02, 0.05, 4)
    estimate = estimate_shift(base, head)
    reference = sps.ttest_ind(head, base, equal_var=False, alternative="greater")
    assert estimate.method == "welch"
    assert estimate.p_greater() == pytest.approx(reference.pvalue, rel=1e-9)
    assert estimate.p_less() == pytest.approx(1 - reference.pvalue, rel=1e-9)
    low, high = estimate.interval(0.9)
    ci = sps.ttest_ind(head, base, equal_var=False).confidence_interval(0.9)
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-9)


@pytest.mark.parametrize("df", [1, 2.5, 7, 16.3, 1e4, math.inf])
def test_students_t_is_scipy_stats_t(df: float) -> None:
    for x in (-4.0, -0.7, 0.0, 1.3, 6.0):
        assert t_cdf(x, df) == pytest.approx(sps.t.cdf(x, df), rel=1e-12, abs=1e-300)
        assert t_sf(x, df) == pytest.approx(sps.t.sf(x, df), rel=1e-9, abs=1e-300)
    for q in (0.001, 0.05, 0.5, 0.9, 0.99875):
        assert t_ppf(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-10)


def test_welch_p_is_scipys_two_sided_welch() -> None:
    rng = np.random.default_rng(8)
    for size_a, size_b in ((3, 3), (4, 9), (12, 5)):
        a, b = rng.normal(0, 0.1, size_a), rng.normal(0.05, 0.03, size_b)
        assert welch_p(a, b) == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)


def test_paired_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(0, 0.05, 5)
    head = base + 0.01 + rng.normal(0, 0.01, 5)
    estimate = estimate_shift(base, head, paired=True)
    reference = sps.ttest_rel(head, base, alternative="greater")
    assert estimate.method == "paired"
    assert estimate.p_greater() == pytest.approx(reference.pvalue, rel=1e-9)


def test_single_head_run_uses_the_baselines_spread() -> None:
    base = [0.0, 0.01, -0.01, 0.02, -0.02]
    estimate = estimate_shift(base, [0.1])
    assert estimate.method == "pooled" and estimate.df == 4
    expected_se = float(np.std(base, ddof=1)) * math.sqrt(1 + 1 / 5)
    assert estimate.se == pytest.approx(expected_se)


@pytest.mark.parametrize(("base", "head"), [([0.0], [0.5]), ([0.0, 0.1], [0.5]), ([], [0.1, 0.2])])
def test_too_few_runs(base, head) -> None:
    with pytest.raises(TooFewRuns):
        estimate_shift(base, head)


def test_identical_runs_have_no_spread() -> None:
    estimate = estimate_shift([0.0, 0.0], [0.0, 0.0])
    assert estimate.se == 0 and estimate.p_greater() == 1.0 and estimate.interval(0.9) == (0.0, 0.0)
    shifted = estimate_shift([0.0, 0.0], [0.01, 0.01])
    assert shifted.p_greater() == 0.0 and shifted.p_less() == 1.0


def test_detectable_shift_is_found_with_the_stated_power() -> None:
    """A true shift equal to the reported detectable one is found about 80 % of the time."""
    rng = np.random.default_rng(5)
    sd, n, alpha = 0.03, 6, 0.01
    plan = ShiftEstimate("welch", 0.0, sd * math.sqrt(2 / n), 2 * n - 2, n, n)
    detectable = plan.detectable(alpha)
    found = sum(estimate_shift(rng.normal(0, sd, n), rng.normal(detectable, sd, n)).p_greater() <= alpha
                for _ in range(3000)) / 3000
    assert 0.72 < found < 0.86  # Welch estimates its df, so it is a little weaker than the plan


def test_holm_against_a_worked_example() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=30))
def test_holm_is_monotone_and_bounded(p_values) -> None:
    adjusted = holm(p_values)
    order = np.argsort(p_values, kind="stable")
    ranked = [adjusted[i] for i in order]
    assert ranked == sorted(ranked)
    assert all(p <= a <= 1 for p, a in zip(p_values, adjusted, strict=True))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_hodges_lehmann_matches_brute_force(seed) -> None:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(math.log(10), 0.5, 60)
    b = rng.lognormal(math.log(12), 0.5, 50)
    ha, hb = LatencyHistogram.from_values(a), LatencyHistogram.from_values(b)
    # Brute force on the same bucket representatives (HL is defined on what the histogram keeps).
    ra = np.repeat(np.log(_representatives(ha.keys)), ha.counts)
    rb = np.repeat(np.log(_representatives(hb.keys)), hb.counts)
    diffs = np.sort((rb[:, None] - ra[None, :]).ravel())
    lower_median = diffs[(diffs.size - 1) // 2]
    assert math.log1p(hodges_lehmann_relative_shift(ha, hb)) == pytest.approx(lower_median, abs=1e-9)
