"""calibrate's analysis on synthetic A/A pairs with known noise: no real load, so its answers are not left to the
machine (the real-load test in tests/e2e/test_calibrate.py shares the machine and judges no false alarm)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from perfgate.ab.calibrate import analyse
from perfgate.ab.session import Pair, judge
from perfgate.config import AbMode, load_config
from perfgate.decide.verdict import Metric, Outcome
from perfgate.records import Block, RunRecord

from fakes.ab_load import BASE, ab_plan
from fakes.synthetic import make_run


def _pairs(count: int, second_scale: float = 1.0) -> list[Pair]:
    return [Pair(number=n, base=make_run(BASE, seed=2 * n), head=make_run(BASE, seed=2 * n + 1, scale=second_scale))
            for n in range(1, count + 1)]


def _calibration(tmp_path: Path, pairs: list[Pair]):  # noqa: ANN202
    plan = ab_plan(tmp_path, looks=[len(pairs)])
    verdict = judge(plan, pairs, plan.compare.alpha)
    return verdict, analyse(pairs, verdict, plan.profile, [3, 6, 10], load_config(start=tmp_path))


def test_a_a_pairs_show_no_false_regression_and_more_pairs_see_smaller_changes(tmp_path: Path) -> None:
    verdict, calibration = _calibration(tmp_path, _pairs(6))
    assert verdict.outcome is not Outcome.REGRESSED
    assert calibration.false_regressions == 0 and calibration.pairs == 6
    row = next(m for m in calibration.metrics if m.endpoint == "GET /items" and m.metric is Metric.P50)
    assert 0 < row.noise < 0.5 and row.correlation is not None and -1 <= row.correlation <= 1
    assert row.detectable[3] >= row.detectable[6] >= row.detectable[10] >= row.margin


def test_a_regression_among_the_pairs_is_counted_where_it_was_found(tmp_path: Path) -> None:
    verdict, calibration = _calibration(tmp_path, _pairs(6, second_scale=1.5))
    regressed = {(e.endpoint, t.metric) for e in verdict.endpoints for t in e.tests if t.outcome is Outcome.REGRESSED}
    assert regressed  # +50 % on every request of one side: the A/A was not one
    flagged = {(m.endpoint, m.metric) for m in calibration.metrics if m.false_regressions}
    assert flagged == regressed & {(m.endpoint, m.metric) for m in calibration.metrics}
    assert calibration.false_regressions == len(flagged) > 0


def _blocked(run: RunRecord, like: RunRecord, machine: np.ndarray, rng: np.random.Generator,
             noise: float) -> RunRecord:
    """The run cut into 1-s blocks around the latencies of ``like`` (both sides alike: an A/A), moving with
    the machine's factor (shared by both sides of a same-moment run) and with ``noise`` of their own."""
    endpoints = []
    for e in run.endpoints:
        own = machine + rng.normal(0, noise, machine.size)
        stats = like.endpoint(e.stats.key).stats
        blocks = [Block(t=float(i), requests=30, failures=0, **{m: getattr(stats, m) * math.exp(x)
                                                              for m in ("p50", "p95", "p99")})
                  for i, x in enumerate(own)]
        endpoints.append(e.model_copy(update={"block_s": 1.0, "blocks": blocks}))
    return run.model_copy(update={"endpoints": endpoints})


def _duet_pairs(count: int, noise: float) -> list[Pair]:
    rng = np.random.default_rng(17)
    pairs = []
    for n in range(1, count + 1):
        machine = rng.normal(0, 0.10, 24)  # ±10 % that both sides share: what the duet cancels
        base = make_run(BASE, seed=2 * n)
        pairs.append(Pair(number=n, base=_blocked(base, base, machine, rng, noise),
                          head=_blocked(make_run(BASE, seed=2 * n + 1), base, machine, rng, noise)))
    return pairs


def test_in_the_duet_mode_what_the_gate_sees_comes_from_the_blocks_and_grows_with_their_own_noise(
        tmp_path: Path) -> None:
    plan = ab_plan(tmp_path, looks=[6])
    loaded = load_config(start=tmp_path)
    rows = {}
    for noise in (0.02, 0.08):
        pairs = _duet_pairs(6, noise)
        verdict = judge(plan, pairs, plan.compare.alpha)
        calibration = analyse(pairs, verdict, plan.profile, [2, 4, 6], loaded, AbMode.DUET)
        assert calibration.mode is AbMode.DUET and calibration.reported == (2, 4, 6)
        assert calibration.false_regressions == 0
        rows[noise] = next(m for m in calibration.metrics if m.endpoint == "GET /items" and m.metric is Metric.P50)
        # From 3 runs on the spread between runs joins the variance with few degrees of freedom, as in the test:
        # 4 runs may see less than 2; 6 see more than 4.
        reach = rows[noise].detectable
        assert min(reach.values()) >= rows[noise].margin and reach[4] >= reach[6]
    # The machine's ±10 % cancels: with 2 % per block of each side and 24 blocks a run (a difference of 0.24 %
    # standard error after 6 runs), a margin of about 3 % is found with 90 % power at a Holm-corrected level.
    assert rows[0.02].needed_margin < 0.04 < rows[0.08].needed_margin
    assert rows[0.08].needed_margin > 2.5 * rows[0.02].needed_margin
