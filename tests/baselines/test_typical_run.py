"""One notion of a typical run: the history's points and a pinned side's budget values are the same median."""

from __future__ import annotations

from perfgate.baselines.history import trends
from perfgate.records import median_of_runs, median_over_runs

from fakes.synthetic import make_run


def test_history_and_budgets_take_the_same_median_over_runs() -> None:
    runs = [make_run(seed=seed) for seed in range(4)]  # an even count: median and lower median differ
    p50s = sorted(r.endpoints[0].stats.p50 for r in runs)
    expected = (p50s[1] + p50s[2]) / 2
    assert median_over_runs(p50s) == expected
    assert median_of_runs([r.endpoints[0].stats for r in runs], "p50") == expected
    line = [("a" * 40, runs), ("b" * 40, runs)]
    found = trends(line, "main", metric="p50", endpoints=["GET /items"])
    assert [p.value for p in found[0].points] == [expected, expected]
    assert median_over_runs([None, 3.0, None]) == 3.0 and median_over_runs([None]) is None
