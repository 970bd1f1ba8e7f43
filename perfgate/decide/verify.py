"""Re-derive a verdict that comes from elsewhere, and say where its parts disagree.

A verdict posted by ``perfgate comment`` comes from an artifact that the pull request's own workflow
wrote: untrusted. Every summary in it is derived again from what it summarises, by the rules that decided
it (:mod:`perfgate.decide.rules`); a verdict whose parts disagree was edited or is corrupt, and is refused.
"""

from __future__ import annotations

import math

from perfgate.config import MAX_FAILURE_MARGIN, MAX_RELATIVE_MARGIN
from perfgate.decide.rules import (
    budget_passed,
    check_passed,
    endpoint_outcome,
    headline,
    holm,
    on_test_scale,
    overall_outcome,
    zone,
)
from perfgate.decide.verdict import Metric, MetricTest, Outcome, SideInfo, Verdict
from perfgate.errors import ExitCode, PerfgateError


class VerdictRefusedError(PerfgateError):
    """A verdict file whose parts disagree with each other: edited or corrupt, never posted as it is."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, verdict: Verdict, problems: list[str]) -> None:
        super().__init__(message)
        self.verdict = verdict
        """The refused verdict as read (validated by the model, not re-derived): only its profile and head
        commit are used, to find the sticky comment and check that the refusal replaces."""
        self.problems = problems


_TOLERANCE = 1e-9
_MAX_SHOWN = 5


def _finite(*values: float | None) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOLERANCE, abs_tol=1e-300)


def _withdrawn(verdict: Verdict, endpoint: str, test: MetricTest) -> bool:
    """A REGRESSED test that ``perfgate ab`` measured again and that did not hold: INCONCLUSIVE by design
    (:func:`withdraw`), with a note saying so."""
    confirmation = verdict.sequential.confirmation if verdict.sequential is not None else None
    name = f"{endpoint} {test.metric.value}"
    return (confirmation is not None and name in confirmation.tests and name not in confirmation.confirmed
            and bool(test.note))


def _test_problems(verdict: Verdict, endpoint: str, test: MetricTest) -> list[str]:
    where = f"{endpoint} {test.metric.value}"
    alpha = verdict.settings.alpha
    numbers = (test.change, test.ci_low, test.ci_high, test.p_value, test.p_adjusted, test.margin, test.confidence)
    if not _finite(*numbers):
        return [f"{where}: a value is not a finite number"]
    bound = MAX_FAILURE_MARGIN if test.metric is Metric.FAILURE_RATE else MAX_RELATIVE_MARGIN
    if not 0 <= test.margin <= bound:
        return [f"{where}: margin {test.margin:g} is outside 0..{bound:g}"]
    settings = verdict.settings
    expected_margin = settings.endpoint_margins.get(endpoint, {}).get(test.metric.value,
                                                                      settings.margins.get(test.metric.value))
    if expected_margin is None or not _close(test.margin, expected_margin):
        return [f"{where}: margin {test.margin:g} is not the settings' {expected_margin}"]
    if not _close(test.confidence, 1 - 2 * alpha):
        return [f"{where}: confidence {test.confidence:g} is not 1 - 2α = {1 - 2 * alpha:g}"]
    if test.method == "none":
        if test.outcome is not Outcome.INCONCLUSIVE or test.change is not None or test.p_adjusted is not None:
            return [f"{where}: an untested metric is {test.outcome.value}, not inconclusive"]
        return []
    if test.change is None or test.ci_low is None or test.ci_high is None:
        return [f"{where}: a tested metric without a change and an interval"]
    if not test.ci_low <= test.change <= test.ci_high:
        return [f"{where}: the change is outside its own interval"]
    if test.metric.relative and test.ci_low <= -1:
        return [f"{where}: a relative change of -100 % or less"]
    for p in (test.p_value, test.p_adjusted):
        if p is not None and not 0 <= p <= 1:
            return [f"{where}: p {p:g} is not a probability"]
    if test.p_adjusted is None and not (test.change == test.ci_low == test.ci_high == 0):
        return [f"{where}: left out of the correction although its runs differ"]
    # The interval is symmetric around the change on the test's scale, and the raw p (for a change beyond
    # half the margin, worse direction) is below one half exactly when the change is beyond that half.
    change, low, high = (on_test_scale(x, test.metric) for x in (test.change, test.ci_low, test.ci_high))
    if not math.isclose(low + high, 2 * change, rel_tol=1e-6, abs_tol=1e-9):
        return [f"{where}: the interval is not centred on the change"]
    sign = 1 if test.metric.higher_is_worse else -1
    beyond = sign * change - on_test_scale(test.margin, test.metric) / 2
    if test.p_value is not None and abs(beyond) > 1e-9 and (test.p_value < 0.5) != (beyond > 0):
        return [f"{where}: p {test.p_value:g} does not go with a change of {test.change:+.4g}"]
    improved = test.outcome is Outcome.IMPROVED
    expected = zone(test.metric, test.margin, test.change, test.ci_low, test.ci_high,
                    None if improved else test.p_adjusted, test.p_adjusted if improved else None, alpha)
    if expected is Outcome.REGRESSED and test.outcome is Outcome.INCONCLUSIVE and _withdrawn(verdict, endpoint, test):
        return []
    if expected is not test.outcome:
        return [f"{where} is {test.outcome.value}, but its own numbers make it {expected.value}"]
    return []


def _holm_problems(verdict: Verdict) -> list[str]:
    """The adjusted p of every test is Holm's over the raw p of the whole family."""
    family = [(e.endpoint, t) for e in verdict.endpoints for t in e.tests
              if t.method != "none" and t.p_adjusted is not None]
    if len(family) != verdict.family_size:
        return [f"family_size is {verdict.family_size}, but {len(family)} test(s) were corrected"]
    if any(t.p_value is None or not _finite(t.p_value) for _, t in family):
        return ["a corrected test has no raw p"]
    adjusted = holm([t.p_value for _, t in family])  # type: ignore[misc]
    problems = []
    for (endpoint, test), p in zip(family, adjusted, strict=True):
        # IMPROVED stores the better direction's adjusted p, whose raw p the verdict does not keep.
        if test.outcome is not Outcome.IMPROVED and test.p_adjusted is not None and not _close(test.p_adjusted, p):
            problems.append(f"{endpoint} {test.metric.value}: adjusted p {test.p_adjusted:g} is not Holm's {p:g}")
    return problems


def _side_problems(name: str, side: SideInfo | None) -> list[str]:
    if side is None:
        return []
    if not 0 <= side.own_fault_runs <= side.invalid_runs <= side.runs:
        return [f"the {name}'s run counts disagree ({side.own_fault_runs} own-fault, {side.invalid_runs} invalid, "
                f"{side.runs} runs)"]
    return []


def verify(verdict: Verdict) -> list[str]:
    """Where a verdict's parts disagree with each other: empty for a verdict as :func:`compare` made it.

    Every summary is re-derived from what it summarises, by the functions that decided it: each test's
    outcome from its own change, interval, adjusted p, margin and the verdict's α; the adjusted p from Holm
    over the family's raw p; each endpoint's outcome from its tests; the whole outcome from the endpoints,
    the reasons and the sides' validity; budgets from value and limit; checks from their failures; the
    headline from all of them. The numbers themselves are the measuring job's claims: what can be checked
    without the runs is that they tell one story.
    """
    problems: list[str] = []
    settings = verdict.settings
    if not (_finite(settings.alpha) and 0 < settings.alpha < 0.5):
        problems.append(f"α {settings.alpha:g} is outside (0, 0.5)")
        return problems
    for metric, margin in [*settings.margins.items(), *((m, v) for e in settings.endpoint_margins.values()
                                                        for m, v in e.items())]:
        bound = MAX_FAILURE_MARGIN if metric == Metric.FAILURE_RATE.value else MAX_RELATIVE_MARGIN
        if not (_finite(margin) and 0 <= margin <= bound):
            problems.append(f"margin {metric} {margin:g} is outside 0..{bound:g}")
            return problems
    if verdict.sequential is not None and settings.alpha > verdict.sequential.alpha * (1 + _TOLERANCE):
        problems.append(f"α {settings.alpha:g} is more than the A/B's {verdict.sequential.alpha:g}")
    problems += _side_problems("head", verdict.head) + _side_problems("baseline", verdict.base)
    for endpoint in verdict.endpoints:
        for test in endpoint.tests:
            problems += _test_problems(verdict, endpoint.endpoint, test)
        expected = endpoint_outcome(endpoint.tests)
        if endpoint.tests and not endpoint.judged:
            problems.append(f"{endpoint.endpoint}: tested but left out of the outcome")
        if endpoint.outcome is not expected:
            problems.append(f"{endpoint.endpoint} is {endpoint.outcome.value}, but its tests make it {expected.value}")
    problems += _holm_problems(verdict)
    for budget in verdict.budgets:
        if not _finite(budget.limit, budget.value):
            problems.append(f"budget {budget.endpoint} {budget.metric}: a value is not a finite number")
        elif budget.passed != budget_passed(budget.metric, budget.value, budget.limit):
            problems.append(f"budget {budget.endpoint} {budget.metric} {budget.value} against {budget.limit:g} "
                            f"is marked {'passed' if budget.passed else 'failed'}")
    for check in verdict.checks:
        if not 0 <= check.failures <= check.runs or check.passed != check_passed(check.failures):
            problems.append(f"check {check.name}: {check.failures} of {check.runs} run(s) failed, "
                            f"marked {'passed' if check.passed else 'failed'}")
    if problems:
        return problems  # the rest is derived from these parts
    outcome = overall_outcome(verdict.endpoints, verdict.reasons, verdict.head, verdict.base)
    if verdict.outcome is not outcome:
        problems.append(f"the verdict is {verdict.outcome.value}, but its endpoints, reasons and runs make it "
                        f"{outcome.value}")
    derived = headline(outcome, verdict.endpoints, verdict.reasons, verdict.budgets, verdict.checks)
    if verdict.headline != derived:
        problems.append("the headline is not the one its parts give")
    return problems


def describe_problems(problems: list[str], *, most: int = _MAX_SHOWN, separator: str = "; ") -> str:
    """The first few disagreements as plain text for a log: endpoint names come from the file, so control
    characters go and no line can start a workflow command (``::``)."""
    def plain(text: str) -> str:
        kept = "".join(c if c.isprintable() else " " for c in text).replace("::", ": :")
        return kept[:300]

    shown = separator.join(plain(p) for p in problems[:most])
    return shown + (f" and {len(problems) - most} more" if len(problems) > most else "")
