"""The decision on synthetic runs with known truth: rates are measured over many seeds, not assumed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig, EndpointSettings, Margins
from perfgate.decide.compare import compare, exit_code
from perfgate.decide.verdict import Metric, Outcome
from perfgate.errors import ExitCode
from perfgate.records import CheckResult

from fakes.synthetic import ENVIRONMENT, synthetic_side

CONFIG = CompareConfig()
SEEDS = 300


def outcomes(*, runs: int, shift: dict[int, float], endpoints: int = 5, seeds: int = SEEDS,
             run_noise: float = 0.03) -> Counter:
    counts: Counter = Counter()
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        base = synthetic_side(rng, runs=runs, endpoints=endpoints, label="base", run_noise=run_noise)
        head = synthetic_side(rng, runs=runs, endpoints=endpoints, shift=shift, run_noise=run_noise)
        counts[compare(base, head, CONFIG).outcome] += 1
    return counts


@pytest.mark.parametrize("runs", [3, 5, 10])
def test_a_a_is_not_regressed_beyond_alpha(runs: int) -> None:
    counts = outcomes(runs=runs, shift={})
    rate = counts[Outcome.REGRESSED] / SEEDS
    print(f"A/A with {runs} runs per side: {dict(counts)}")
    assert rate <= CONFIG.alpha


def test_holm_keeps_forty_endpoints_safe_and_without_it_they_would_not_be() -> None:
    """A/A with 40 endpoints: with Holm no more false alarms than α; judged test by test at α, several."""
    uncorrected = corrected = 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        verdict = compare(synthetic_side(rng, runs=5, endpoints=40, label="base"),
                          synthetic_side(rng, runs=5, endpoints=40), CONFIG)
        corrected += verdict.outcome is Outcome.REGRESSED
        uncorrected += any(
            t.p_value is not None and t.p_value <= CONFIG.alpha
            and t.change * (1 if t.metric.higher_is_worse else -1) >= t.margin
            for e in verdict.endpoints for t in e.tests)
    assert corrected / 150 <= CONFIG.alpha
    assert uncorrected > corrected + 3


def test_twenty_percent_on_one_endpoint_is_regressed_there_only() -> None:
    hits = bystanders = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        verdict = compare(synthetic_side(rng, runs=5, label="base"), synthetic_side(rng, runs=5, shift={2: 0.2}),
                          CONFIG)
        regressed = {e.endpoint for e in verdict.endpoints if e.outcome is Outcome.REGRESSED}
        hits += "GET /e2" in regressed
        bystanders += bool(regressed - {"GET /e2"})
    assert hits >= 95
    assert bystanders / 100 <= CONFIG.alpha


def test_two_percent_is_not_regressed() -> None:
    counts = outcomes(runs=10, shift={i: 0.02 for i in range(5)})
    assert counts[Outcome.REGRESSED] / SEEDS <= 0.05


def test_improvement_is_symmetric() -> None:
    rng = np.random.default_rng(11)
    verdict = compare(synthetic_side(rng, runs=5, label="base", run_noise=0.005),
                      synthetic_side(rng, runs=5, shift={0: -0.2}, run_noise=0.005), CONFIG)
    assert verdict.outcome is Outcome.IMPROVED
    assert {e.endpoint: e.outcome for e in verdict.endpoints}["GET /e0"] is Outcome.IMPROVED
    assert verdict.headline.startswith("IMPROVED: faster: 1 endpoint(s) improved")


def test_too_noisy_is_inconclusive_not_regressed() -> None:
    counts = outcomes(runs=3, shift={0: 0.1}, run_noise=0.3, seeds=100)
    assert counts[Outcome.REGRESSED] <= 5
    assert counts[Outcome.INCONCLUSIVE] >= 90


def test_a_single_run_per_side_can_never_regress() -> None:
    rng = np.random.default_rng(1)
    verdict = compare(synthetic_side(rng, runs=1, label="base"), synthetic_side(rng, runs=1, shift={0: 1.0}), CONFIG)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    test = verdict.endpoints[0].tests[0]
    assert test.outcome is Outcome.INCONCLUSIVE and "needs at least 2 runs on each side" in test.note
    assert "measure more runs or pairs" in test.note


def test_one_head_run_against_many_baseline_runs_can_decide() -> None:
    rng = np.random.default_rng(2)
    verdict = compare(synthetic_side(rng, runs=10, label="base", run_noise=0.01),
                      synthetic_side(rng, runs=1, shift={0: 0.5}, run_noise=0.01), CONFIG)
    assert verdict.endpoints[0].outcome is Outcome.REGRESSED
    assert verdict.endpoints[0].tests[0].method == "pooled"


def test_paired_runs_use_the_paired_test() -> None:
    rng = np.random.default_rng(3)
    ids = [f"p{i}" for i in range(4)]
    verdict = compare(synthetic_side(rng, runs=4, label="base", pair_ids=ids),
                      synthetic_side(rng, runs=4, shift={0: 0.3}, pair_ids=ids), CONFIG)
    assert {t.method for e in verdict.endpoints for t in e.tests if t.method != "none"} == {"paired"}


def test_each_test_carries_estimate_interval_adjusted_p_and_detectable_change() -> None:
    rng = np.random.default_rng(4)
    verdict = compare(synthetic_side(rng, runs=6, label="base"), synthetic_side(rng, runs=6, shift={0: 0.25}), CONFIG)
    test = next(t for t in verdict.endpoints[0].tests if t.metric is Metric.P50)
    assert test.outcome is Outcome.REGRESSED
    assert test.ci_low < test.change < test.ci_high and test.ci_low > 0.05
    assert test.p_adjusted >= test.p_value and test.p_adjusted <= CONFIG.alpha
    assert 0 < test.detectable < 0.25
    assert test.base_value == pytest.approx(10, rel=0.1) and test.head_value == pytest.approx(12.5, rel=0.1)
    evidence_free = verdict.endpoints[0].evidence  # synthetic sides carry no samples
    assert evidence_free is None
    assert verdict.family_size == 5 * 3  # p50, p95, throughput per endpoint; zero failures everywhere are no test


def test_per_endpoint_margins() -> None:
    rng = np.random.default_rng(5)
    wide = CompareConfig(endpoints={"GET /e0": EndpointSettings(margins=Margins(p50=0.5, p95=0.5))})
    base, head = synthetic_side(rng, runs=6, label="base"), synthetic_side(rng, runs=6, shift={0: 0.2})
    assert compare(base, head, CONFIG).endpoints[0].outcome is Outcome.REGRESSED
    relaxed = compare(base, head, wide)
    assert {e.endpoint: e.outcome for e in relaxed.endpoints}["GET /e0"] is not Outcome.REGRESSED


def test_different_load_or_environment_is_invalid_never_regressed() -> None:
    rng = np.random.default_rng(6)
    base = synthetic_side(rng, runs=5, label="base")
    other_load = synthetic_side(rng, runs=5, shift={0: 1.0}, load={"users": 50, "spawn_rate": 5.0, "run_time": 15.0})
    verdict = compare(base, other_load, CONFIG)
    assert verdict.outcome is Outcome.INVALID and "users 5 vs 50" in verdict.reasons[0]
    other_env = synthetic_side(rng, runs=5, shift={0: 1.0}, environment=ENVIRONMENT.model_copy(update={"cores": 64}))
    verdict = compare(base, other_env, CONFIG)
    assert verdict.outcome is Outcome.INVALID and "cores 2 vs 64" in verdict.reasons[0]
    assert exit_code(verdict, strict=False) is ExitCode.UNDECIDED  # an invalid comparison never passes
    assert exit_code(verdict, strict=True) is ExitCode.UNDECIDED


def test_invalid_runs_and_too_few_requests() -> None:
    rng = np.random.default_rng(7)
    base = synthetic_side(rng, runs=3, label="base")
    head = synthetic_side(rng, runs=3)
    broken = head.__class__(**{**head.__dict__, "runs": [r.__class__(**{**r.__dict__, "valid": False,
                                                                         "invalid_reasons": ["samples were lost"]})
                                                          for r in head.runs]})
    verdict = compare(base, broken, CONFIG)
    assert verdict.outcome is Outcome.BROKEN and "samples were lost" in verdict.reasons[0]
    sparse = synthetic_side(rng, runs=3, count=20)
    verdict = compare(base, sparse, CONFIG)
    assert all(e.outcome is Outcome.INVALID and "too few requests: 20" in e.reasons[0] for e in verdict.endpoints)
    assert verdict.outcome is Outcome.INCONCLUSIVE


def test_budgets_and_checks_fail_on_their_own() -> None:
    rng = np.random.default_rng(8)
    base, head = synthetic_side(rng, runs=3, label="base"), synthetic_side(rng, runs=3)
    verdict = compare(base, head, CONFIG, budgets=[Budget(endpoint="GET /e1", p50=5.0), Budget(rps=1.0)])
    failed = [(b.endpoint, b.metric) for b in verdict.budgets if not b.passed]
    assert failed == [("GET /e1", "p50")]
    assert len(verdict.budgets) == 2 + 5 - 1  # one p50 budget, one rps budget per endpoint
    assert exit_code(verdict, strict=False) is ExitCode.REGRESSION
    head.runs[0].checks.append(CheckResult(name="no overselling", passed=False, message="7 orders for 5"))
    verdict = compare(base, head, CONFIG)
    assert [(c.name, c.passed, c.failures, c.runs) for c in verdict.checks] == [("no overselling", False, 1, 1)]
    assert exit_code(verdict, strict=False) is ExitCode.REGRESSION
    assert "correctness check failed: no overselling" in verdict.headline


def test_runs_without_endpoints_are_not_comparable() -> None:
    rng = np.random.default_rng(9)
    base = synthetic_side(rng, runs=3, label="base")
    empty = synthetic_side(rng, runs=3, endpoints=0)
    verdict = compare(base, empty, CONFIG)
    assert verdict.outcome is Outcome.INVALID
    assert all(not e.judged for e in verdict.endpoints)
    assert verdict.reasons == ["no endpoint appears on both sides"]


def test_a_load_parameter_missing_on_one_side_counts_as_unset() -> None:
    rng = np.random.default_rng(10)
    base = synthetic_side(rng, runs=3, label="base")
    head = synthetic_side(rng, runs=3, load={**base.load_parameters, "target_rps": None})
    assert compare(base, head, CONFIG).outcome is not Outcome.INVALID
    faster = synthetic_side(rng, runs=3, load={**base.load_parameters, "target_rps": 80.0})
    verdict = compare(base, faster, CONFIG)
    assert verdict.outcome is Outcome.INVALID and "target_rps unset vs 80 req/s" in verdict.reasons[0]


def test_the_reported_detectable_change_is_found_about_four_times_in_five() -> None:
    """Plant a shift equal to the reported detectable p50 change: REGRESSED on p50 in roughly 80 % of seeds."""
    def p50_test(verdict):
        return next(t for t in verdict.endpoints[0].tests if t.metric is Metric.P50)

    planned = []
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        verdict = compare(synthetic_side(rng, runs=6, endpoints=1, label="base"),
                          synthetic_side(rng, runs=6, endpoints=1), CONFIG)
        planned.append(p50_test(verdict).detectable)
    detectable = float(np.median(planned))
    found = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        verdict = compare(synthetic_side(rng, runs=6, endpoints=1, label="base"),
                          synthetic_side(rng, runs=6, endpoints=1, shift={0: detectable}), CONFIG)
        found += p50_test(verdict).outcome is Outcome.REGRESSED
    assert 0.6 <= found / 300 <= 0.95, (detectable, found)


def test_different_load_topologies_are_invalid_with_the_difference_named() -> None:
    from dataclasses import replace

    from perfgate.environment import Topology

    rng = np.random.default_rng(16)
    machine = {"cpu_model": "AMD EPYC", "cores": 2, "os": "Linux 6.1"}
    alone, three = Topology(), Topology.of_workers([machine] * 3)
    base = replace(synthetic_side(rng, runs=5, label="base"), topologies={alone})
    head = replace(synthetic_side(rng, runs=5, shift={0: 1.0}), topologies={three})
    verdict = compare(base, head, CONFIG)
    assert verdict.outcome is Outcome.INVALID and exit_code(verdict, strict=False) is ExitCode.UNDECIDED
    assert verdict.reasons == ["different load topologies (baseline vs head): this machine alone vs "
                               "3 worker(s): 3 × AMD EPYC, 2 cores, Linux 6.1"]
    mixed = replace(head, topologies={three, Topology.of_workers([machine] * 2)})
    assert "the head runs come from different load topologies" in compare(head, mixed, CONFIG).reasons[0]
    assert compare(replace(base, topologies={three}), head, CONFIG).outcome is Outcome.REGRESSED
    # Six processes from three `perfgate worker --processes 2` are not six one-process workers.
    paired = Topology.of_workers([{**machine, "group": g} for g in "aabbcc"])
    six = Topology.of_workers([machine] * 6)
    reasons = compare(replace(base, topologies={six}), replace(head, topologies={paired}), CONFIG).reasons
    assert reasons == ["different load topologies (baseline vs head): 6 worker(s): 6 × AMD EPYC, 2 cores, Linux 6.1"
                       " vs 6 worker process(es) from 3 `perfgate worker`, 2 each: 6 × AMD EPYC, 2 cores, Linux 6.1"]


def test_where_the_load_came_from_is_in_every_report_once_per_side_or_for_both() -> None:
    from dataclasses import replace

    from perfgate.environment import Topology
    from perfgate.reports.content import environment_lines
    from perfgate.reports.markdown import render_markdown

    rng = np.random.default_rng(17)
    machine = {"cpu_model": "AMD EPYC <b>|x|</b>", "cores": 2, "os": "Linux 6.1"}
    three = Topology.of_workers([machine] * 3)
    base = replace(synthetic_side(rng, runs=5, label="base"), topologies={three})
    head = replace(synthetic_side(rng, runs=5, shift={0: 1.0}), topologies={three})
    verdict = compare(base, head, CONFIG)
    assert verdict.head.topology == verdict.base.topology == three.describe()  # type: ignore[union-attr]
    lines = ["".join(part.text for part in line) for line in environment_lines(verdict)]
    assert lines[-1] == "load (both sides) from 3 worker(s): 3 × AMD EPYC <b>|x|</b>, 2 cores, Linux 6.1"
    markdown = render_markdown(verdict)
    assert "load (both sides) from 3 worker(s)" in markdown and "<b>|x|</b>" not in markdown  # escaped
    alone = compare(replace(base, topologies={Topology()}), replace(head, topologies={Topology()}), CONFIG)
    assert alone.head.topology is None and "load" not in "".join(
        part.text for line in environment_lines(alone) for part in line)
    split = compare(replace(base, topologies={Topology()}), head, CONFIG)  # INVALID, and each side says its own
    assert ["".join(p.text for p in line) for line in environment_lines(split)][-1].startswith("head load from 3 ")
