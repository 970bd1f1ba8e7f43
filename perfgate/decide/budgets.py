"""Absolute limits judged on the head alone: budgets (p95 < 100 ms, failure rate < 1 %, rps > 20) and the
correctness checks its runs recorded. A budget that matches no endpoint fails: a typo must not turn a guard off.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from perfgate.config import Budget
from perfgate.decide.rules import budget_passed, check_passed
from perfgate.decide.sides import Side, side_from_runs
from perfgate.decide.verdict import BudgetResult, CheckSummary
from perfgate.errors import ExitCode
from perfgate.records import CheckResult, RunRecord, median_of_runs

COMMAND_LINE_SOURCE = "--budget"
"""The source of a budget given on the command line."""


def check_budgets(head: Side, budgets: Iterable[Budget], source: str) -> list[BudgetResult]:
    """Absolute limits on every head run, valid or not: pooled quantiles, overall failure rate, mean throughput.

    Invalid runs count too: a head that fails most of its requests must not pass a failure-rate budget
    because those very runs were set aside. A budget whose pattern matches no endpoint fails: a typo must
    not turn a guard off.
    """
    runs = head.runs
    keys = sorted({k for r in runs for k in r.endpoints})
    results = []
    for budget in budgets:
        matched = [k for k in keys if fnmatch.fnmatchcase(k, budget.endpoint)]
        if not matched:
            shown = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
            note = (f"matches no endpoint of the head; its endpoints are: {shown or 'none'}; "
                    "fix the budget's endpoint pattern")
            for metric, limit in _limits(budget):
                results.append(BudgetResult(endpoint=budget.endpoint, metric=metric, limit=limit, value=None,
                                            passed=False, source=source, note=note))
            continue
        for key in matched:
            stats = [r.endpoints[key] for r in runs if key in r.endpoints]
            histogram = head.all_histograms.get(key)
            for metric in ("p50", "p95", "p99"):
                limit = getattr(budget, metric)
                if limit is None:
                    continue
                value: float | None
                if histogram is not None and histogram.count:
                    value = histogram.quantile(float(metric[1:]) / 100)
                else:  # a pinned side has no samples: the median of the runs' values
                    value = median_of_runs(stats, metric)
                results.append(BudgetResult(endpoint=key, metric=metric, limit=limit, value=value,
                                            passed=budget_passed(metric, value, limit), source=source))
            if budget.failure_rate is not None:
                total = sum(s.count for s in stats)
                failure_rate = sum(s.failures for s in stats) / total if total else None
                results.append(BudgetResult(endpoint=key, metric="failure_rate", limit=budget.failure_rate,
                                            value=failure_rate, passed=budget_passed("failure_rate", failure_rate,
                                                                                     budget.failure_rate),
                                            source=source))
            if budget.rps is not None:
                rps = sum(s.rps for s in stats) / len(stats) if stats else None
                results.append(BudgetResult(endpoint=key, metric="rps", limit=budget.rps, value=rps,
                                            passed=budget_passed("rps", rps, budget.rps), source=source))
    return results


def _limits(budget: Budget) -> list[tuple[str, float]]:
    return [(metric, limit) for metric in ("p50", "p95", "p99", "failure_rate", "rps")
            if (limit := getattr(budget, metric)) is not None]


def summarize_checks(head: Side) -> list[CheckSummary]:
    by_name: dict[str, list[CheckResult]] = {}
    for run in head.runs:
        for check in run.checks:
            by_name.setdefault(check.name, []).append(check)
    summaries = []
    for name, results in sorted(by_name.items()):
        failed = [c for c in results if not c.passed]
        summaries.append(CheckSummary(name=name, passed=check_passed(len(failed)), failures=len(failed),
                                      runs=len(results),
                                      message=failed[0].message if failed else ""))
    return summaries


def run_budgets(run: RunRecord, budgets: Iterable[Budget] = (),
                command_line_budgets: Iterable[Budget] = ()) -> list[BudgetResult]:
    """The budgets judged on one recorded run, as :func:`compare` judges them on a head."""
    side = side_from_runs("run", [run])
    return check_budgets(side, budgets, "config") + check_budgets(side, command_line_budgets, COMMAND_LINE_SOURCE)


def run_exit_code(run: RunRecord, budgets: Sequence[BudgetResult] = ()) -> ExitCode:
    """A recorded run's outcome: a failed correctness check or budget fails (an invalid run too: a failed
    budget is a finding whatever else is wrong); an invalid run is undecided otherwise."""
    if not run.checks_passed or not all(b.passed for b in budgets):
        return ExitCode.REGRESSION
    return ExitCode.OK if run.valid else ExitCode.UNDECIDED
