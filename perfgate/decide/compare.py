"""Decide: compare the head's runs with a baseline's, per endpoint and metric, honestly.

The procedure (see the README, "How perfgate decides"):

1. Validity first. Different load parameters, a different environment, or no
   valid run on a side make the whole comparison INVALID; an endpoint with too
   few requests per run is INVALID on its own. Invalid is never REGRESSED.
2. One value per run and metric: log p50, log p95 (log p99 with enough
   requests), the failure rate, log throughput. Runs are the replicates.
3. A two-sample test across runs (paired when the runs were paired): one-sided
   p-values for a change beyond half the practical margin, in the worse and in
   the better direction, Holm-adjusted over every endpoint × metric test.
4. Three zones per test: REGRESSED when the adjusted p ≤ α and the estimated
   change reaches the margin; UNCHANGED when the confidence interval's worse end
   stays inside the margin; INCONCLUSIVE otherwise. IMPROVED mirrors REGRESSED.

Budgets and correctness checks are absolute and judged on the head alone.
Each rule is a small pure function (:func:`zone`, :func:`endpoint_outcome`,
:func:`overall_outcome`, :func:`budget_passed`, :func:`check_passed`), used both
to decide and, by :func:`verify`, to re-derive a verdict read back from a file:
one answer, whoever asks.
Mann-Whitney U, the probability of superiority and the Hodges-Lehmann shift on
the pooled requests are reported as evidence, never as the gate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from perfgate.config import Budget, CompareConfig
from perfgate.decide.budgets import COMMAND_LINE_SOURCE, check_budgets, summarize_checks
from perfgate.decide.metric_gates import judge_metric_gates
from perfgate.decide.rules import (
    endpoint_outcome,
    head_broke,
    headline,
    holm,
    overall_outcome,
    parameter_value,
    zone,
)
from perfgate.decide.sides import RunValues, Side, block_differences, run_value, with_validity
from perfgate.decide.stats import (
    ShiftEstimate,
    TooFewRuns,
    duet_shift,
    estimate_shift,
    hodges_lehmann_relative_shift,
)
from perfgate.decide.verdict import (
    MAX_FAILURE_KINDS,
    SEVERITY,
    DistributionEvidence,
    EndpointVerdict,
    FailureKind,
    Metric,
    MetricTest,
    Outcome,
    Settings,
    SideInfo,
    Verdict,
    exit_code,  # noqa: F401 - re-exported: it lives with the verdict, so that posting one loads no statistics
)
from perfgate.environment import Topology, environment_key
from perfgate.samples import mann_whitney_u

LATENCY_METRICS = (Metric.P50, Metric.P95, Metric.P99)


# -- validity ---------------------------------------------------------------------------------------

def _differences(base: dict, head: dict) -> list[str]:
    return [f"{key} {parameter_value(key, base.get(key))} vs {parameter_value(key, head.get(key))}"
            for key in sorted({*base, *head}) if base.get(key) != head.get(key)]


def _comparison_problems(base: Side, head: Side, *, head_broke: bool = False) -> list[str]:
    """What makes the comparison impossible; a head that broke the service is said once, by its own reason."""
    problems = []
    for side, name in ((base, "baseline"), (head, "head")):
        if not side.valid_runs and not (side is head and head_broke):
            reasons = sorted({reason for r in side.runs for reason in r.invalid_reasons})
            problems.append(f"every {name} run is invalid ({'; '.join(reasons)}); re-run it")
    if base.profile != head.profile:
        problems.append(f"different profiles: baseline {base.profile!r}, head {head.profile!r}")
    elif differences := _differences(base.load_parameters, head.load_parameters):
        # Key by key, a key missing on one side meaning "not set": older baseline files lack newer keys.
        problems.append("different load parameters (baseline vs head): " + "; ".join(differences))
    if base.environment is not None and head.environment is not None and \
            environment_key(base.environment) != environment_key(head.environment):
        fields = _differences(base.environment.model_dump(exclude={"perfgate"}),
                              head.environment.model_dump(exclude={"perfgate"}))
        problems.append("different environments (baseline vs head): " + "; ".join(fields))
    for side, name in ((base, "baseline"), (head, "head")):
        if len(side.topologies) > 1:
            problems.append(f"the {name} runs come from different load topologies: {_topologies(side.topologies)}")
    if base.topologies and head.topologies and base.topologies != head.topologies:
        problems.append("different load topologies (baseline vs head): "
                        f"{_topologies(base.topologies)} vs {_topologies(head.topologies)}")
    return problems


def _topologies(topologies: set[Topology]) -> str:
    return " and ".join(sorted(t.describe() for t in topologies))


# -- per-run values -----------------------------------------------------------------------------------

def _typical(values: list[float], metric: Metric) -> float:
    mean = sum(values) / len(values)
    return mean if not metric.relative else math.exp(mean)


def _to_change(x: float, metric: Metric) -> float:
    return math.expm1(x) if metric.relative else x


@dataclass
class _PendingTest:
    """A test with its estimate, waiting for the Holm adjustment over the whole family."""

    endpoint: str
    metric: Metric
    estimate: ShiftEstimate | None
    base_values: list[float]
    head_values: list[float]
    margin: float
    note: str = ""

    @property
    def worse_sign(self) -> int:
        return 1 if self.metric.higher_is_worse else -1

    @property
    def limit(self) -> float:
        """The margin on the test's scale."""
        return math.log1p(self.margin) if self.metric.relative else self.margin

    def p_worse(self) -> float:
        """p for a change beyond half the margin in the worse direction.

        Testing against half the margin rather than against zero keeps true
        changes just under the margin from crossing it by chance on some of
        many endpoints, and costs little power for changes at the margin.
        """
        assert self.estimate is not None
        floor = self.worse_sign * self.limit / 2
        return self.estimate.p_greater(floor) if self.metric.higher_is_worse else self.estimate.p_less(floor)

    def p_better(self) -> float:
        """p for a change beyond half the margin in the better direction."""
        assert self.estimate is not None
        floor = -self.worse_sign * self.limit / 2
        return self.estimate.p_less(floor) if self.metric.higher_is_worse else self.estimate.p_greater(floor)


def _paired_values(base: list[RunValues], head: list[RunValues]) -> list[tuple[RunValues, RunValues]] | None:
    """Base and head runs matched by pair id, when every run has a partner."""
    base_pairs = {r.pair_id: r for r in base if r.pair_id}
    head_pairs = {r.pair_id: r for r in head if r.pair_id}
    if len(base_pairs) != len(base) or len(head_pairs) != len(head) or set(base_pairs) != set(head_pairs):
        return None
    return [(base_pairs[p], head_pairs[p]) for p in sorted(base_pairs)]


def _pending_tests(endpoint: str, base: list[RunValues], head: list[RunValues],
                   config: CompareConfig, focus: Collection[tuple[str, Metric]] | None) -> list[_PendingTest]:
    pairs = _paired_values(base, head)
    if pairs is not None:
        base, head = [b for b, _ in pairs], [h for _, h in pairs]
    counts = [r.endpoints[endpoint].count for r in (*base, *head)]
    metrics = [Metric.P50, Metric.P95]
    if min(counts) >= config.p99_min_requests:
        metrics.append(Metric.P99)
    metrics += [Metric.FAILURE_RATE, Metric.THROUGHPUT]
    if focus is not None:
        metrics = [m for m in metrics if (endpoint, m) in focus]
    tests = []
    for metric in metrics:
        margin = config.margin(endpoint, metric.value)
        b_values = [run_value(r.endpoints.get(endpoint), metric) for r in base]
        h_values = [run_value(r.endpoints.get(endpoint), metric) for r in head]
        b = [v for v in b_values if v is not None]
        h = [v for v in h_values if v is not None]
        if len(b) < len(b_values) or len(h) < len(h_values):
            tests.append(_PendingTest(endpoint, metric, None, [], [], margin,
                                      note="no successful request in some run"))
            continue
        try:
            estimate = _estimate(endpoint, metric, b, h, pairs)
        except TooFewRuns as exc:
            tests.append(_PendingTest(endpoint, metric, None, b, h, margin,
                                      note=f"{exc}; measure more runs or pairs"))
            continue
        tests.append(_PendingTest(endpoint, metric, estimate, b, h, margin))
    return tests


def _estimate(endpoint: str, metric: Metric, base: list[float], head: list[float],
              pairs: list[tuple[RunValues, RunValues]] | None) -> ShiftEstimate:
    """The paired block test when every pair ran at the same moments, else the run-level test."""
    if pairs is not None:
        blocks = [block_differences(b.blocks.get(endpoint), h.blocks.get(endpoint), metric) for b, h in pairs]
        if all(d is not None for d in blocks):
            return duet_shift([d for d in blocks if d is not None])
    return estimate_shift(base, head, paired=pairs is not None)


def _decide(test: _PendingTest, p_worse_adj: float | None, p_better_adj: float | None, alpha: float,
            family_size: int) -> MetricTest:
    metric, estimate = test.metric, test.estimate
    base_value = _typical(test.base_values, metric) if test.base_values else None
    head_value = _typical(test.head_values, metric) if test.head_values else None
    confidence = 1 - 2 * alpha
    if estimate is None:
        return MetricTest(metric=metric, outcome=Outcome.INCONCLUSIVE, method="none", base_value=base_value,
                          head_value=head_value, change=None, ci_low=None, ci_high=None, confidence=confidence,
                          p_value=None, p_adjusted=None, margin=test.margin, detectable=None,
                          base_runs=len(test.base_values), head_runs=len(test.head_values), note=test.note)
    limit = test.limit
    low, high = estimate.interval(confidence)
    change, ci_low, ci_high = _to_change(estimate.diff, metric), _to_change(low, metric), _to_change(high, metric)
    # Decided on the values the verdict stores, so that a reader of the verdict re-derives the same outcome.
    outcome = zone(metric, test.margin, change, ci_low, ci_high, p_worse_adj, p_better_adj, alpha)
    p_adjusted = p_better_adj if outcome is Outcome.IMPROVED else p_worse_adj
    # What REGRESSED needs: a change beyond half the margin by the test's reach, and at least the margin.
    detectable = max(limit, limit / 2 + estimate.detectable(alpha / max(family_size, 1)))
    return MetricTest(
        metric=metric, outcome=outcome, method=estimate.method, base_value=base_value, head_value=head_value,
        change=change, ci_low=ci_low, ci_high=ci_high,
        confidence=confidence, p_value=test.p_worse(), p_adjusted=p_adjusted, margin=test.margin,
        detectable=_to_change(test.worse_sign * detectable, metric),
        base_runs=estimate.n_base, head_runs=estimate.n_head, note=test.note,
    )


def _evidence(base: Side, head: Side, endpoint: str) -> DistributionEvidence | None:
    a, b = base.histograms.get(endpoint), head.histograms.get(endpoint)
    if a is None or b is None or a.count - a.zero_count == 0 or b.count - b.zero_count == 0:
        return None
    result = mann_whitney_u(a, b)
    return DistributionEvidence(
        mann_whitney_u=result.u, p_value=result.p_value, prob_superiority=result.prob_superiority,
        hodges_lehmann_shift=hodges_lehmann_relative_shift(a, b), base_requests=a.count, head_requests=b.count)


def _usable_runs(base: Side, head: Side) -> tuple[list[RunValues], list[RunValues]]:
    """The valid runs of each side; of paired runs only complete valid pairs (a pair's twin may be invalid)."""
    base_runs, head_runs = base.valid_runs, head.valid_runs
    if all(r.pair_id for r in (*base.runs, *head.runs)):
        complete = {r.pair_id for r in base_runs} & {r.pair_id for r in head_runs}
        base_runs = [r for r in base_runs if r.pair_id in complete]
        head_runs = [r for r in head_runs if r.pair_id in complete]
    return base_runs, head_runs


def _top_failures(key: str, base_runs: list[RunValues], head_runs: list[RunValues]) -> list[FailureKind]:
    """The head's most frequent failure kinds of ``key``, when its failure rate is above the base's."""
    def totals(runs: list[RunValues]) -> tuple[int, int]:
        stats = [r.endpoints[key] for r in runs if key in r.endpoints]
        return sum(s.failures for s in stats), sum(s.count for s in stats)

    (base_failed, base_count), (head_failed, head_count) = totals(base_runs), totals(head_runs)
    if not head_failed or not head_count or (base_count and head_failed / head_count <= base_failed / base_count):
        return []
    kinds: Counter[str] = Counter()
    for run in head_runs:
        if key in run.endpoints:
            kinds.update(run.endpoints[key].failures_by_type)
    return [FailureKind(kind=kind[:500], count=count) for kind, count in
            sorted(kinds.items(), key=lambda item: (-item[1], item[0]))[:MAX_FAILURE_KINDS] if count > 0]


def _endpoint_verdicts(base: Side, head: Side, config: CompareConfig,
                       focus: Collection[tuple[str, Metric]] | None) -> tuple[list[EndpointVerdict], int]:
    base_runs, head_runs = _usable_runs(base, head)
    wanted = {endpoint for endpoint, _ in focus} if focus is not None else None
    base_keys = {k for r in base_runs for k in r.endpoints if wanted is None or k in wanted}
    head_keys = {k for r in head_runs for k in r.endpoints if wanted is None or k in wanted}
    verdicts: dict[str, EndpointVerdict] = {}
    pending: list[_PendingTest] = []
    for key in sorted(base_keys | head_keys):
        if key not in base_keys or key not in head_keys:
            where = "head" if key in head_keys else "baseline"
            verdicts[key] = EndpointVerdict(endpoint=key, outcome=Outcome.INVALID, judged=False,
                                            reasons=[f"only in the {where}: nothing to compare it with"])
            continue
        counts = [r.endpoints[key].count if key in r.endpoints else 0 for r in (*base_runs, *head_runs)]
        if min(counts) < config.min_requests:
            verdicts[key] = EndpointVerdict(
                endpoint=key, outcome=Outcome.INVALID, evidence=_evidence(base, head, key),
                reasons=[f"too few requests: {min(counts)} in a run, {config.min_requests} needed; "
                         "raise -t or -u, or lower compare.min_requests"])
            continue
        pending += _pending_tests(key, base_runs, head_runs, config, focus)

    # A test whose runs are all identical on both sides (no failures anywhere, say) carries no evidence:
    # it is UNCHANGED by itself and would only dilute the correction for the others.
    estimated = [t for t in pending if t.estimate is not None and not _degenerate(t.estimate)]
    family_size = len(estimated)
    worse_adj = dict(zip(map(id, estimated), holm([t.p_worse() for t in estimated]), strict=True))
    better_adj = dict(zip(map(id, estimated), holm([t.p_better() for t in estimated]), strict=True))
    by_endpoint: dict[str, list[MetricTest]] = {}
    for test in pending:
        decided = _decide(test, worse_adj.get(id(test)), better_adj.get(id(test)), config.alpha, family_size)
        by_endpoint.setdefault(test.endpoint, []).append(decided)
    for key, tests in by_endpoint.items():
        notes = sorted({t.note for t in tests if t.note})
        verdicts[key] = EndpointVerdict(endpoint=key, outcome=endpoint_outcome(tests), tests=tests,
                                        evidence=_evidence(base, head, key), reasons=notes,
                                        top_failures=_top_failures(key, base_runs, head_runs))
    ordered = sorted(verdicts.values(), key=lambda v: (not v.judged, SEVERITY[v.outcome], _worst_change(v), v.endpoint))
    return ordered, family_size


def _degenerate(estimate: ShiftEstimate) -> bool:
    return estimate.se == 0 and estimate.diff == 0


def _worst_change(verdict: EndpointVerdict) -> float:
    changes = [t.change for t in verdict.tests if t.change is not None and t.metric in LATENCY_METRICS]
    return -max(changes, default=0.0)


# -- the verdict ----------------------------------------------------------------------------------------

NO_BASELINE_NOTE = "no baseline: only the budgets are judged"
"""The note of a verdict on budgets alone (``compare`` or ``ab`` found no baseline, and budgets exist)."""


def compare(base: Side | None, head: Side, config: CompareConfig, *, budgets: Iterable[Budget] = (),
            command_line_budgets: Iterable[Budget] = (),
            expected_budgets: Iterable[Budget] = (), expected_source: str = "",
            extra_reasons: Iterable[str] = (), notes: Iterable[str] = (),
            focus: Collection[tuple[str, Metric]] | None = None) -> Verdict:
    """The verdict of ``head`` against ``base`` (``None``: budgets and checks only).

    ``focus`` limits the tests (and the family Holm corrects for) to these endpoint × metric pairs.
    """
    budget_results = (check_budgets(head, budgets, "config")
                      + check_budgets(head, command_line_budgets, COMMAND_LINE_SOURCE)
                      + check_budgets(head, expected_budgets, expected_source))
    checks = summarize_checks(head)
    reasons = list(extra_reasons)
    endpoints: list[EndpointVerdict] = []
    family_size = 0
    head_info, base_info = with_validity(head), with_validity(base) if base is not None else None
    broken = head_broke(head_info, base_info)
    if base is not None:
        problems = _comparison_problems(base, head, head_broke=broken)
        if not problems and not reasons and head.valid_runs:  # a broken head may have none left to compare
            endpoints, family_size = _endpoint_verdicts(base, head, config, focus)
            if not any(e.judged for e in endpoints):
                problems.append("no endpoint appears on both sides")
    else:
        problems = [] if budget_results else ["no baseline to compare with"]
    if broken:
        # The head's own failure is the finding; what else is wrong with the comparison comes after it.
        reasons = [_broken_reason(head_info, base_info), *reasons, *problems]
    else:
        reasons += problems
    outcome = overall_outcome(endpoints, reasons, head_info, base_info)
    gates = judge_metric_gates(base, head, config.metric_gates) if outcome is not Outcome.INVALID else []
    notes = list(notes)
    for side in (s for s in (base, head) if s is not None):
        for run in side.runs:
            notes += [f"{side.info.label} run {run.run_id}: {w}" for w in run.warnings
                      if f"{side.info.label} run {run.run_id}: {w}" not in notes]
    return Verdict(
        outcome=outcome, headline=headline(outcome, endpoints, reasons, budget_results, checks, gates),
        profile=head.profile, base=base_info, head=head_info,
        load_parameters=head.load_parameters,
        settings=Settings(alpha=config.alpha, margins=config.default_margins(),
                          endpoint_margins=_endpoint_margins(config), min_requests=config.min_requests,
                          p99_min_requests=config.p99_min_requests, strict=config.strict),
        endpoints=endpoints, budgets=budget_results, checks=checks, metric_gates=gates, reasons=reasons,
        notes=list(notes),
        family_size=family_size,
        created_at=datetime.now(UTC),
    )


def _endpoint_margins(config: CompareConfig) -> dict[str, dict[str, float]]:
    return {endpoint: margins for endpoint, settings in sorted(config.endpoints.items())
            if (margins := settings.margins.model_dump(exclude_none=True))}


def _broken_reason(head: SideInfo, base: SideInfo | None) -> str:
    against = (
        "the baseline's runs are all valid"
        if base is not None and base.invalid_runs == 0
        else f"{base.invalid_runs} of {base.runs} baseline run(s) are"
        if base is not None
        else "there is no baseline"
    )
    return (f"the head broke the service: {head.own_fault_runs} of {head.runs} head run(s) are invalid "
            f"({'; '.join(head.own_fault_reasons)}), while {against}; fix the head, or re-run if the "
            "service's dependencies failed")


def withdraw(verdict: Verdict, tests: Collection[tuple[str, Metric]], note: str) -> Verdict:
    """The verdict with these REGRESSED tests turned INCONCLUSIVE (a regression that did not hold up)."""
    endpoints = []
    for endpoint in verdict.endpoints:
        changed = [t.model_copy(update={"outcome": Outcome.INCONCLUSIVE, "note": note})
                   if (endpoint.endpoint, t.metric) in tests and t.outcome is Outcome.REGRESSED else t
                   for t in endpoint.tests]
        if changed != endpoint.tests:
            endpoint = endpoint.model_copy(update={"tests": changed, "outcome": endpoint_outcome(changed),
                                                   "reasons": sorted({*endpoint.reasons, note})})
        endpoints.append(endpoint)
    endpoints.sort(key=lambda v: (not v.judged, SEVERITY[v.outcome], _worst_change(v), v.endpoint))
    outcome = overall_outcome(endpoints, verdict.reasons, verdict.head, verdict.base)
    return verdict.model_copy(update={
        "endpoints": endpoints, "outcome": outcome,
        "headline": headline(outcome, endpoints, verdict.reasons, verdict.budgets, verdict.checks)})
