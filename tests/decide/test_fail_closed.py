"""Fail closed: a head that broke the service fails the gate; what the gate cannot tell never passes.

Synthetic sides with known validity; the same rule serves `compare` and the pairs of `ab`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig
from perfgate.decide.compare import compare, exit_code
from perfgate.decide.rules import head_broke
from perfgate.decide.sides import Side, with_validity
from perfgate.decide.verdict import Outcome
from perfgate.errors import ExitCode
from perfgate.measure.summary import LOAD_GENERATOR_SATURATED
from perfgate.publish.github import conclusion

from fakes.synthetic import synthetic_side

CONFIG = CompareConfig()
STORM = "1500 of 2000 measured requests failed: an error storm is not a latency measurement"
MISSED = "achieved 12.0 requests/s, below 90% of the target 50/s: the service or the load generator could not keep up"
SATURATED = f"{LOAD_GENERATOR_SATURATED}: its timings are not trustworthy; use fewer users or more --processes"


def invalid(side: Side, reasons: list[str], which: set[int] | None = None, *, failures: int | None = None) -> Side:
    """``side`` with runs ``which`` (default: all) invalid for ``reasons`` (and failing ``failures`` requests)."""
    runs = []
    for i, run in enumerate(side.runs):
        if which is None or i in which:
            endpoints = run.endpoints if failures is None else {
                k: s.model_copy(update={"failures": failures}) for k, s in run.endpoints.items()}
            run = dataclasses.replace(run, valid=False, invalid_reasons=reasons, endpoints=endpoints)
        runs.append(run)
    return dataclasses.replace(side, runs=runs)


@pytest.fixture
def sides() -> tuple[Side, Side]:
    rng = np.random.default_rng(41)
    return synthetic_side(rng, runs=3, label="base"), synthetic_side(rng, runs=3)


def test_a_head_failing_most_requests_is_broken_and_fails(sides: tuple[Side, Side]) -> None:
    base, head = sides
    verdict = compare(base, invalid(head, [STORM], failures=1500), CONFIG)
    assert verdict.outcome is Outcome.BROKEN
    assert verdict.headline.startswith("BROKEN: the head broke the service: 3 of 3 head run(s) are invalid")
    assert "error storm" in verdict.reasons[0]
    assert verdict.head.own_fault_runs == 3 and verdict.base is not None and verdict.base.invalid_runs == 0
    assert exit_code(verdict, strict=False) is ExitCode.REGRESSION
    assert conclusion(verdict, int(exit_code(verdict, strict=False))) == ("failure", "failure")


def test_one_broken_head_run_against_a_clean_baseline_is_enough(sides: tuple[Side, Side]) -> None:
    base, head = sides
    verdict = compare(base, invalid(head, [MISSED], {1}), CONFIG)
    assert verdict.outcome is Outcome.BROKEN and "1 of 3 head run(s)" in verdict.reasons[0]
    assert verdict.endpoints, "the valid runs are still compared and shown"


def test_a_head_as_invalid_as_its_baseline_is_not_blamed(sides: tuple[Side, Side]) -> None:
    base, head = sides
    verdict = compare(invalid(base, [MISSED]), invalid(head, [MISSED]), CONFIG)
    assert verdict.outcome is Outcome.INVALID and "every baseline run is invalid" in verdict.reasons[0]
    assert exit_code(verdict, strict=False) is ExitCode.UNDECIDED
    assert conclusion(verdict, 3) == ("action_required", "error")
    # More head runs invalid than base runs: blamed on the head.
    assert compare(invalid(base, [MISSED], {0}), invalid(head, [MISSED], {0, 1}), CONFIG).outcome is Outcome.BROKEN


def test_a_saturated_load_generator_is_the_machine_not_the_head(sides: tuple[Side, Side]) -> None:
    base, head = sides
    verdict = compare(base, invalid(head, [SATURATED]), CONFIG)
    assert verdict.outcome is Outcome.INVALID
    assert exit_code(verdict, strict=False) is ExitCode.UNDECIDED
    assert verdict.head.invalid_runs == 3 and verdict.head.own_fault_runs == 0


def test_no_baseline_and_a_broken_head_is_broken(sides: tuple[Side, Side]) -> None:
    _, head = sides
    verdict = compare(None, invalid(head, [STORM]), CONFIG, budgets=[Budget(p95=1000.0)])
    assert verdict.outcome is Outcome.BROKEN and "there is no baseline" in verdict.reasons[0]
    assert exit_code(verdict, strict=False) is ExitCode.REGRESSION


def test_budgets_judge_every_head_run_valid_or_not(sides: tuple[Side, Side]) -> None:
    base, head = sides
    storm = invalid(head, [STORM], failures=1500)
    verdict = compare(base, storm, CONFIG, budgets=[Budget(failure_rate=0.01)])
    failed = [b for b in verdict.budgets if not b.passed]
    assert len(failed) == 5 and all(b.value == pytest.approx(0.75) for b in failed)


def test_a_budget_that_matches_no_endpoint_fails_and_names_the_endpoints(sides: tuple[Side, Side]) -> None:
    base, head = sides
    verdict = compare(base, head, CONFIG, budgets=[Budget(endpoint="GET /api/v1/books*", p95=100.0, failure_rate=0.01)])
    assert [(b.endpoint, b.metric, b.passed, b.value) for b in verdict.budgets] == [
        ("GET /api/v1/books*", "p95", False, None), ("GET /api/v1/books*", "failure_rate", False, None)]
    assert "matches no endpoint of the head" in verdict.budgets[0].note
    assert "GET /e0, GET /e1" in verdict.budgets[0].note
    assert exit_code(verdict, strict=False) is ExitCode.REGRESSION


def test_invalid_is_never_a_pass_and_inconclusive_is_neutral_unless_strict(sides: tuple[Side, Side]) -> None:
    base, head = sides
    other = dataclasses.replace(head, load_parameters={**head.load_parameters, "users": 50})
    verdict = compare(base, other, CONFIG)
    assert verdict.outcome is Outcome.INVALID
    assert exit_code(verdict, strict=False) is ExitCode.UNDECIDED
    rng = np.random.default_rng(3)
    noisy = compare(
        synthetic_side(rng, runs=2, label="base", run_noise=0.3), synthetic_side(rng, runs=2, run_noise=0.3), CONFIG
    )
    assert noisy.outcome is Outcome.INCONCLUSIVE
    assert exit_code(noisy, strict=False) is ExitCode.OK and conclusion(noisy, 0) == ("neutral", "success")
    assert exit_code(noisy, strict=True) is ExitCode.UNDECIDED and conclusion(noisy, 3) == ("action_required", "error")


@pytest.mark.parametrize("outcome", list(Outcome))
def test_no_outcome_but_unchanged_improved_or_inconclusive_maps_to_a_passing_check(sides: tuple[Side, Side],
                                                                                   outcome: Outcome) -> None:
    base, head = sides
    verdict = compare(base, head, CONFIG).model_copy(update={"outcome": outcome})
    passing = {"success", "neutral", "skipped"}
    for code in (0, 1, 3, 4):
        check, _ = conclusion(verdict, code)
        if check in passing:
            assert code == 0 and outcome in (Outcome.UNCHANGED, Outcome.IMPROVED, Outcome.INCONCLUSIVE)


def test_paired_runs_with_an_invalid_twin_are_left_out_of_the_tests() -> None:
    rng = np.random.default_rng(5)
    ids = [f"p{i}" for i in range(4)]
    base = synthetic_side(rng, runs=4, label="base", pair_ids=ids)
    head = invalid(synthetic_side(rng, runs=4, pair_ids=ids), [MISSED], {3})
    verdict = compare(base, head, CONFIG)
    assert verdict.outcome is Outcome.BROKEN  # one head run broken against four valid base runs
    tests = [t for e in verdict.endpoints for t in e.tests if t.method != "none"]
    assert tests and all(t.method == "paired" and t.base_runs == 3 and t.head_runs == 3 for t in tests)


def test_head_broke_compares_shares() -> None:
    rng = np.random.default_rng(2)
    head = with_validity(invalid(synthetic_side(rng, runs=4), [STORM], {0}))
    base = with_validity(invalid(synthetic_side(rng, runs=4, label="base"), [MISSED], {0}))
    assert not head_broke(head, base)  # 1 in 4 on both sides
    assert head_broke(head, None)


def test_an_endpoint_named_with_its_method_is_not_prefixed_twice() -> None:
    from perfgate.records import EndpointStats

    stats = dict(count=1, failures=0, rps=1.0, min=1.0, p50=1.0, p90=1.0, p95=1.0, p99=1.0, max=1.0, mean=1.0)
    assert EndpointStats(method="GET", name="GET /api/v1/books", **stats).key == "GET /api/v1/books"
    assert EndpointStats(method="GET", name="/api/v1/books", **stats).key == "GET /api/v1/books"
    assert EndpointStats(method="POST", name="GET-like /x", **stats).key == "POST GET-like /x"


def test_a_run_names_endpoints_with_too_few_requests_and_the_run_time_that_would_do() -> None:
    from perfgate.measure.record import sparse_endpoints

    from fakes.synthetic import make_run

    run = make_run()  # 505 requests per endpoint in 10 s measured, 2 s warm-up
    assert sparse_endpoints(run, 50) == []
    (first, second) = sparse_endpoints(run, 1000)
    assert (first.endpoint, first.requests) == ("GET /items", 505)
    assert first.run_time_s == 25  # 2 s + 10 s × 1000 / 505 = 21.8 s, rounded up to 5 s
