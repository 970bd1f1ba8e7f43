"""The decision rules: pure functions from a verdict's parts to its outcomes, words and headline.

:mod:`perfgate.decide.compare` decides with them, and :mod:`perfgate.decide.verify` re-derives a verdict from elsewhere
(an artifact of a pull request's workflow) with the very same functions, so deciding and checking give one
answer. They need no statistics library: posting a verdict loads neither NumPy nor SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from perfgate.decide.verdict import (
    BudgetResult,
    CheckSummary,
    EndpointVerdict,
    Metric,
    MetricGateResult,
    MetricTest,
    Outcome,
    SideInfo,
)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: controls the family-wise error rate over all tests."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def head_broke(head: SideInfo, base: SideInfo | None) -> bool:
    """Fail closed: the head's own runs are invalid more often than the baseline's runs are.

    With a clean baseline (or none) one head run invalid by its own fault is enough: an error storm,
    a missed target rate or lost samples is what a broken service looks like, never a pass. A head
    whose runs are only as invalid as the baseline's is not blamed (the machine or the profile is).
    """
    if head.own_fault_runs == 0 or head.runs == 0:
        return False
    base_share = base.invalid_runs / base.runs if base is not None and base.runs else 0.0
    return head.own_fault_runs / head.runs > base_share


def on_test_scale(x: float, metric: Metric) -> float:
    """A stored change back on the scale the test decides on (log for ratios)."""
    return math.log1p(x) if metric.relative else x


def zone(metric: Metric, margin: float, change: float, ci_low: float, ci_high: float,
         p_worse_adj: float | None, p_better_adj: float | None, alpha: float) -> Outcome:
    """The three zones of one test, from what its :class:`MetricTest` stores.

    REGRESSED: the adjusted p (worse direction) ≤ α and the change in the worse direction reaches the
    margin; IMPROVED mirrors it; UNCHANGED: the interval's worse end stays inside the margin; else
    INCONCLUSIVE. Changes are compared on the test's scale (log for latency and throughput).
    """
    sign = 1 if metric.higher_is_worse else -1
    limit = on_test_scale(margin, metric)
    worse = sign * on_test_scale(change, metric)
    worse_end = max(sign * on_test_scale(ci_low, metric), sign * on_test_scale(ci_high, metric))
    if p_worse_adj is not None and p_worse_adj <= alpha and worse >= limit:
        return Outcome.REGRESSED
    if p_better_adj is not None and p_better_adj <= alpha and -worse >= limit:
        return Outcome.IMPROVED
    if worse_end < limit:
        return Outcome.UNCHANGED
    return Outcome.INCONCLUSIVE


def endpoint_outcome(tests: list[MetricTest]) -> Outcome:
    """An endpoint's outcome from its tests: the worst of them; INVALID without a test (one side only, or
    too few requests)."""
    if not tests:
        return Outcome.INVALID
    outcomes = {t.outcome for t in tests}
    for outcome in (Outcome.REGRESSED, Outcome.INCONCLUSIVE, Outcome.IMPROVED):
        if outcome in outcomes:
            return outcome
    return Outcome.UNCHANGED


def overall_outcome(endpoints: list[EndpointVerdict], reasons: list[str], head: SideInfo,
                    base: SideInfo | None) -> Outcome:
    """The comparison's outcome from its parts: BROKEN when :func:`head_broke`; INVALID when anything made
    the comparison impossible (``reasons``); budgets-only (no base) UNCHANGED, as budgets decide through the
    exit code; otherwise from the judged endpoints."""
    if head_broke(head, base):
        return Outcome.BROKEN
    if reasons:
        return Outcome.INVALID
    if base is None:
        return Outcome.UNCHANGED
    return overall_of_endpoints(endpoints)


def overall_of_endpoints(endpoints: list[EndpointVerdict]) -> Outcome:
    judged = {e.outcome for e in endpoints if e.judged}
    if Outcome.REGRESSED in judged:
        return Outcome.REGRESSED
    if judged & {Outcome.INCONCLUSIVE, Outcome.INVALID}:
        return Outcome.INCONCLUSIVE
    return Outcome.IMPROVED if Outcome.IMPROVED in judged else Outcome.UNCHANGED


def budget_passed(metric: str, value: float | None, limit: float) -> bool:
    """A budget holds when it has a value within its limit: at least ``rps``, at most everything else."""
    if value is None:
        return False
    return value >= limit if metric == "rps" else value <= limit


def check_passed(failures: int) -> bool:
    """A correctness check holds when no run failed it."""
    return failures == 0


def headline(outcome: Outcome, endpoints: list[EndpointVerdict], reasons: list[str],
              budgets: list[BudgetResult], checks: list[CheckSummary],
              gates: list[MetricGateResult] | None = None) -> str:
    failed_budgets = [b for b in budgets if not b.passed]
    failed_checks = [c for c in checks if not c.passed]
    failed_gates = [g for g in gates or [] if not g.passed]
    extra = []
    if failed_gates:
        extra.append(f"service metric grew per request: {', '.join(g.series for g in failed_gates[:3])}")
    if failed_budgets:
        extra.append(f"{len(failed_budgets)} budget(s) exceeded")
    if failed_checks:
        extra.append(f"correctness check failed: {', '.join(c.name for c in failed_checks)}")
    judged = [e for e in endpoints if e.judged]
    if outcome is Outcome.BROKEN:
        text = reasons[0] if reasons else "the head's runs are invalid"
    elif outcome is Outcome.INVALID:
        text = "not comparable: " + (reasons[0] if reasons else "no endpoint in common")
    elif outcome is Outcome.REGRESSED:
        worst = [e for e in judged if e.outcome is Outcome.REGRESSED]
        parts = []
        for e in worst[:3]:
            test = next(t for t in e.tests if t.outcome is Outcome.REGRESSED)
            parts.append(f"{e.endpoint} {test.metric.value} {signed(test.change, test.metric)}")
        text = "slower: " + "; ".join(parts) + (f" and {len(worst) - 3} more" if len(worst) > 3 else "")
    elif outcome is Outcome.INCONCLUSIVE:
        undecided = [e for e in judged if e.outcome in (Outcome.INCONCLUSIVE, Outcome.INVALID)]
        text = (f"{len(undecided)} of {len(judged)} endpoint(s) undecided: the data cannot tell a change "
                "from noise; measure more runs (perfgate run) or pairs (perfgate ab --max-pairs)")
        if reach := _could_see(undecided):
            text += f"; these runs could see {reach}"
    elif outcome is Outcome.IMPROVED:
        text = f"faster: {sum(e.outcome is Outcome.IMPROVED for e in judged)} endpoint(s) improved, none worse"
    elif not judged and budgets:  # no baseline: the budgets are all there is to judge
        text = f"no baseline; {len(budgets) - len(failed_budgets)} of {len(budgets)} budget(s) hold"
    else:
        text = f"all {len(judged)} endpoint(s) within their margins"
    return "; ".join([f"{outcome.value.upper()}: {text}", *extra])


def _could_see(undecided: list[EndpointVerdict], most: int = 3) -> str:
    """``changes of 4 % or more on GET /items, 12 % on POST /orders (p50)``: the smallest change each undecided
    endpoint's data could call a regression, so that an INCONCLUSIVE verdict says what it could see. Of an
    endpoint's latency tests it names the undecided ones (a p50 already judged unchanged is not what held the
    verdict back): their p50's, else the smallest; with no undecided latency test, the same rule over all."""
    seen: list[tuple[str, Metric, float]] = []
    for endpoint in undecided:
        latency = [t for t in endpoint.tests
                   if t.metric in (Metric.P50, Metric.P95, Metric.P99) and t.detectable is not None]
        held_back = [t for t in latency if t.outcome is Outcome.INCONCLUSIVE] or latency
        reach = {t.metric: t.detectable for t in held_back if t.detectable is not None}
        if reach:
            metric = Metric.P50 if Metric.P50 in reach else min(reach, key=reach.__getitem__)
            seen.append((endpoint.endpoint, metric, reach[metric]))
    if not seen:
        return ""
    shown = seen[:most]
    one_metric = len({metric for _, metric, _ in shown}) == 1
    parts = [f"{size * 100:.0f} %{' or more' if i == 0 else ''}{'' if one_metric else f' ({metric.value})'} on {name}"
             for i, (name, metric, size) in enumerate(shown)]
    more = f" and {len(seen) - most} more endpoint(s)" if len(seen) > most else ""
    return "changes of " + ", ".join(parts) + more + (f" ({shown[0][1].value})" if one_metric else "")


PARAMETER_UNITS = {"run_time": " s", "warmup": " s", "stop_timeout": " s", "spawn_rate": " users/s",
                   "target_rps": " req/s"}
"""The unit of each load parameter that has one."""


def parameter_value(key: str, value: object) -> str:
    """A load parameter's value for people, with its unit: ``15 s``, ``5 users/s``; a missing one is ``unset``."""
    if value is None or value in ([], {}, ""):
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}{PARAMETER_UNITS.get(key, '')}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {parameter_value(k, v)}" for k, v in sorted(value.items()))
    return str(value)


def signed(change: float | None, metric: Metric) -> str:
    if change is None:
        return "?"
    return f"{change * 100:+.1f} pp" if not metric.relative else f"{change * 100:+.1f} %"
