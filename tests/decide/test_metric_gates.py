"""Service-metric gates on synthetic sides: growth per request, head against base."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from perfgate.config.schema import CompareConfig, MetricGate
from perfgate.decide.compare import compare
from perfgate.decide.metric_gates import judge_metric_gates
from perfgate.decide.verdict import exit_code

from fakes.synthetic import synthetic_side

MEMORY = "process_resident_memory_bytes"


def _with_growth(side, values):  # type: ignore[no-untyped-def]
    runs = [replace(r, metric_growth={} if v is None else {MEMORY: v}) for r, v in zip(side.runs, values, strict=True)]
    return replace(side, runs=runs)


def test_the_gate_fails_only_when_every_head_run_grew_past_the_baselines_largest_plus_margin_and_floor() -> None:
    rng = np.random.default_rng(3)
    base = _with_growth(synthetic_side(rng, runs=3, label="base"), [1000.0, 1500.0, 800.0])
    gate = {MEMORY: MetricGate(margin=0.5, floor=1000)}  # limit 1500 × 1.5 + 1000 = 3250 bytes a request
    leaky = _with_growth(synthetic_side(rng, runs=3), [60_000.0, 3300.0, 70_000.0])
    (result,) = judge_metric_gates(base, leaky, gate)
    assert not result.passed and result.limit == 3250 and result.head == 3300 and result.base == 1500
    one_low = _with_growth(synthetic_side(rng, runs=3), [60_000.0, 3200.0, 70_000.0])
    assert judge_metric_gates(base, one_low, gate)[0].passed  # one head run within the limit: not every run grew
    shrinking = _with_growth(synthetic_side(rng, runs=3, label="base"), [-2000.0, -1000.0, -3000.0])
    assert judge_metric_gates(shrinking, _with_growth(synthetic_side(rng, runs=3), [400.0] * 3),
                              {MEMORY: MetricGate(margin=0.5, floor=0)})[0].limit == -500


def test_a_series_a_side_did_not_record_fails_the_gate_saying_where_and_the_exit_is_1() -> None:
    rng = np.random.default_rng(4)
    base = _with_growth(synthetic_side(rng, runs=3, label="base"), [None, None, None])
    head = _with_growth(synthetic_side(rng, runs=3), [100.0, 100.0, 100.0])
    verdict = compare(base, head, CompareConfig(metric_gates={MEMORY: MetricGate()}))
    (result,) = verdict.metric_gates
    assert not result.passed and result.limit is None and "not recorded on the baseline" in result.note
    assert int(exit_code(verdict, strict=False)) == 1
    assert "service metric grew per request: process_resident_memory_bytes" in verdict.headline
    assert compare(base, head, CompareConfig()).metric_gates == []  # no gate configured: nothing judged
