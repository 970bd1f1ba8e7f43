"""The same-moment test on synthetic block differences: honest without a change, sharp with one."""

from __future__ import annotations

import numpy as np
import pytest

from perfgate.decide.sides import block_differences
from perfgate.decide.stats import TooFewRuns, cosine_variance, duet_projection, duet_shift
from perfgate.decide.verdict import Metric
from perfgate.records import Block


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x


@pytest.mark.parametrize(("runs", "blocks", "phi", "highest"), [(2, 24, 0.0, 0.065), (1, 30, 0.0, 0.065),
                                                                 (4, 24, 0.3, 0.085)])
def test_without_a_change_a_5_percent_test_rejects_about_5_percent(runs: int, blocks: int, phi: float,
                                                                   highest: float) -> None:
    rng = np.random.default_rng(7)
    trials = 2000
    rejected = sum(duet_shift([_ar1(rng, blocks, phi) for _ in range(runs)]).p_greater(0) < 0.05
                   for _ in range(trials))
    # Exact without correlation (2000 trials: ±1 % by chance); a lag-1 correlation of 0.3 costs about 2 points.
    assert 0.035 < rejected / trials < highest


def test_a_shift_of_0_7_times_the_block_noise_is_found_and_estimated() -> None:
    rng = np.random.default_rng(3)
    found = []
    for _ in range(200):
        estimate = duet_shift([0.7 + rng.normal(size=24) for _ in range(2)])
        found.append(estimate.p_greater(0) < 0.01)
        low, high = estimate.interval(0.9)
        assert low < estimate.diff < high
    assert np.mean(found) > 0.9  # 48 blocks: the mean is 4.8 standard errors away; t with 16 df
    assert estimate.method == "duet" and estimate.n_base == estimate.n_head == 2


def test_runs_whose_means_spread_beyond_their_blocks_widen_the_interval() -> None:
    rng = np.random.default_rng(5)
    offsets = [-1.0, 1.0, -1.0, 1.0]
    alike = duet_shift([rng.normal(size=24) * 0.1 for _ in offsets])
    spread = duet_shift([rng.normal(size=24) * 0.1 + o for o in offsets])
    assert spread.se > 3 * alike.se and spread.df < alike.df
    # Two runs never estimate the spread of their means: one degree of freedom would sink every test.
    two = duet_shift([rng.normal(size=24) * 0.1 + o for o in offsets[:2]])
    assert two.se < spread.se and two.df > 10


def test_cosine_variance_of_a_constant_series_is_zero_and_too_few_blocks_are_refused() -> None:
    assert cosine_variance(np.full(12, 0.3)) == (pytest.approx(0.0), 4.0)
    with pytest.raises(TooFewRuns, match="3 block"):
        duet_shift([np.zeros(12), np.zeros(3)])


def _blocks(p50s: list[float | None], requests: list[int]) -> list[Block]:
    return [Block(t=i * 2.0, requests=n, failures=0, p50=p, p95=p, p99=p)
            for i, (p, n) in enumerate(zip(p50s, requests, strict=True))]


def test_block_differences_pair_blocks_by_time_and_skip_empty_ones() -> None:
    base = (2.0, _blocks([10.0, 10.0, None, 10.0], [30, 30, 0, 30]))
    head = (2.0, _blocks([11.0, None, 12.0, 10.0], [30, 0, 30, 30]))
    p50 = block_differences(base, head, Metric.P50)
    assert p50 == pytest.approx([np.log(1.1), 0.0])
    # Throughput compares counts linearly, scaled by the run's typical count, empty blocks included.
    assert block_differences(base, head, Metric.THROUGHPUT) == pytest.approx([0.0, -30 / 22.5, 30 / 22.5, 0.0])
    assert block_differences(base, (1.0, head[1]), Metric.P50) is None  # cut differently: no pairing
    assert block_differences(base, None, Metric.P50) is None


def test_the_projection_to_as_many_runs_is_the_test_itself_and_more_runs_see_smaller_shifts() -> None:
    rng = np.random.default_rng(11)
    runs = [rng.normal(size=24) * 0.05 + offset for offset in (0.0, 0.02, -0.02, 0.01)]
    assert duet_projection(runs, 4).se == pytest.approx(duet_shift(runs).se, rel=1e-9)
    reaches = [duet_projection(runs, n).detectable(0.01) for n in (3, 6, 12)]
    assert reaches[0] > reaches[1] > reaches[2] > 0
    # Below three runs the spread between runs is not estimated, as in the test: the reach is the within-run one.
    two = duet_projection(runs, 2)
    assert two.se == pytest.approx(np.sqrt(np.mean([cosine_variance(r)[0] for r in runs]) / 2), rel=1e-9)
    with pytest.raises(TooFewRuns, match="3 same-moment runs"):
        duet_projection(runs[:2], 6)
