"""The capacity search on synthetic services: the knee found, its interval, and every way it cannot tell."""

from __future__ import annotations

import math
import random

import pytest

from perfgate.capacity.search import SearchPlan, capacity_interval, search
from perfgate.records import CapacityStep


def knee(capacity: float, *, noise: float = 0.0, seed: int = 0, invalid_at: set[float] | None = None):
    """A service meeting its objectives up to ``capacity`` (its knee moved by ±``noise`` per step)."""
    rng = random.Random(seed)
    asked: list[tuple[float, int]] = []

    def measure(rate: float, repeat: int) -> CapacityStep:
        asked.append((rate, repeat))
        if invalid_at is not None and any(math.isclose(rate, r) for r in invalid_at):
            return CapacityStep(offered=rate, achieved=rate * 0.5, requests=10, failures=0, repeat=repeat,
                                valid=False, invalid_reasons=["the load generator fell behind its schedule: ..."])
        limit = capacity * (1 + rng.uniform(-noise, noise))
        broken = [] if rate <= limit else [f"p95<60ms: GET /work p95 {100 + rate - limit:.1f} ms"]
        return CapacityStep(offered=rate, achieved=min(rate, limit), requests=100, failures=0, p95=30.0,
                            repeat=repeat, broken=broken)
    measure.asked = asked  # type: ignore[attr-defined]
    return measure


@pytest.mark.parametrize("truth", [7.3, 80.0, 333.0, 1234.5])
def test_a_sharp_knee_is_found_within_the_resolution_and_the_interval_holds_it(truth: float) -> None:
    plan = SearchPlan(start=5, growth=1.5, max_rate=5000, repeats=3, resolution=0.05)
    outcome = search(plan, knee(truth))
    assert outcome.valid and outcome.reasons == []
    assert outcome.capacity is not None and abs(outcome.capacity / truth - 1) <= 0.05 / 2 + 1e-9
    assert outcome.low <= truth <= outcome.high
    assert outcome.high / outcome.low <= 1.06
    assert len(outcome.repeats) == len(outcome.brackets) == 3
    assert all(a <= truth <= b and b / a <= 1.05 for a, b in outcome.brackets)
    assert outcome.first_broken is not None and outcome.first_broken.startswith("p95<60ms")
    # The climb offers 5, 7.5, 11.25, ...: each step 1.5 times the last, until the first broken one.
    climb = [s.offered for s in outcome.steps if s.repeat == 0]
    assert all(math.isclose(b / a, 1.5, rel_tol=1e-3) for a, b in zip(climb, climb[1:], strict=False))
    assert climb[-2] <= truth < climb[-1]


@pytest.mark.parametrize("noise", [0.03, 0.06, 0.10])
def test_a_noisy_knee_widens_the_interval_that_still_holds_the_truth_near_its_level(noise: float) -> None:
    # Each step's knee drawn anew within ±noise of 100/s: the pass/fail near it is a coin, as on a busy machine.
    covered = 0
    for seed in range(200):
        outcome = search(SearchPlan(start=10, repeats=3, resolution=0.03), knee(100.0, noise=noise, seed=seed))
        assert outcome.valid and outcome.capacity is not None
        assert abs(outcome.capacity / 100 - 1) < noise, (seed, outcome.capacity)
        covered += outcome.low <= 100.0 <= outcome.high
    assert covered >= 0.85 * 200, covered  # a 90 % interval from three refinements: 88.5–97 % measured


def test_a_capacity_below_the_first_step_or_above_the_last_is_no_capacity() -> None:
    below = search(SearchPlan(start=50), knee(20.0))
    assert not below.valid and below.capacity is None and below.high == 50
    assert "the first step, 50/s, already broke p95<60ms" in below.reasons[0] and "--start-rate" in below.reasons[0]
    above = search(SearchPlan(start=10, max_rate=100), knee(1000.0))
    assert not above.valid and above.capacity is None and above.low == 100
    assert "every objective held up to 100/s" in above.reasons[0] and "--max-rate" in above.reasons[0]


def test_an_invalid_step_is_measured_again_and_twice_invalid_it_ends_the_search_without_a_limit() -> None:
    once = knee(80.0, invalid_at=set())
    calls = {"n": 0}

    def flaky(rate: float, repeat: int) -> CapacityStep:
        calls["n"] += 1
        if calls["n"] == 3:  # the third step, once
            return CapacityStep(offered=rate, achieved=0, requests=0, failures=0, valid=False,
                                invalid_reasons=["the load generator's CPU went above 90 %"])
        return once(rate, repeat)
    recovered = search(SearchPlan(start=10), flaky)
    assert recovered.valid and abs(recovered.capacity / 80 - 1) < 0.03
    assert [s.valid for s in recovered.steps].count(False) == 1

    stuck = search(SearchPlan(start=10), knee(80.0, invalid_at={22.5}))
    assert not stuck.valid and stuck.capacity is None and stuck.low == 15
    assert stuck.reasons == ["the step at 22.5/s was invalid twice (the load generator fell behind its schedule: "
                             "...): the service's capacity there is unknown; it met every objective up to 15/s"]
    assert [s.offered for s in stuck.steps] == [10, 15, 22.5, 22.5]


def test_the_step_budget_ends_a_search_that_would_not() -> None:
    outcome = search(SearchPlan(start=1, growth=1.06, max_rate=10_000, max_steps=12), knee(500.0))
    assert not outcome.valid and len(outcome.steps) == 12 and "used its 12 steps" in outcome.reasons[0]


def test_the_interval_is_the_wider_of_the_spread_and_the_brackets() -> None:
    same = capacity_interval([(95.0, 100.0)] * 3)
    assert same == (round(math.sqrt(9500), 3), 95.0, 100.0)
    spread = capacity_interval([(60.0, 62.0), (80.0, 82.0), (100.0, 102.0)])
    assert spread[1] < 60 and spread[2] > 102
