"""calibrate's analysis on synthetic A/A pairs with known noise: no real load, so its answers are not left to the
machine (the real-load test in tests/e2e/test_calibrate.py shares the machine and judges no false alarm)."""

from __future__ import annotations

from pathlib import Path

from perfgate.ab.calibrate import analyse
from perfgate.ab.session import Pair, judge
from perfgate.config import load_config
from perfgate.decide.verdict import Metric, Outcome

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
