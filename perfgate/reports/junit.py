"""The verdict, or a recorded run, as JUnit XML: the test report that GitLab, Jenkins, Buildkite and most CIs show.

One ``<testsuite>`` per command. How perfgate's outcomes map onto JUnit's three states:

- a test case per endpoint × metric (``classname`` the endpoint, ``name`` the metric): REGRESSED is a
  ``<failure>``; INCONCLUSIVE and INVALID are ``<skipped>`` with the reason (the gate could not tell, which
  is not a pass and, unless ``strict``, not a failure either); UNCHANGED and IMPROVED pass;
- an endpoint without tests (too few requests, or on one side only) is one ``<skipped>`` case named
  ``endpoint``;
- one case for the head's validity (``classname="head"``, ``name="validity"``): a ``<failure>`` when the head
  broke the service (BROKEN), ``<skipped>`` when the whole comparison is INVALID;
- a case per budget (``classname`` the budget's endpoint glob, ``name="budget <metric>"``) and per
  correctness check (``classname="checks"``): failed ones are ``<failure>``.

For ``perfgate run``: a case for the run's validity (``<skipped>`` with the reasons when invalid, as the
run's exit code 3 says "undecided") and one per correctness check. Times are given where perfgate knows
them: the measured window of a run, the elapsed time of an A/B; no per-test time is invented.

Endpoint and check names come from the locustfile: ElementTree escapes markup, and
:func:`perfgate.textsafety.xml_text` removes the characters XML 1.0 forbids.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from perfgate import textsafety
from perfgate.decide.verdict import BudgetResult, CheckSummary, EndpointVerdict, Metric, MetricTest, Outcome, Verdict
from perfgate.reports import content
from perfgate.reports.content import budget_quantity, format_change, format_value

if TYPE_CHECKING:
    from perfgate.records import RunRecord  # loads NumPy: the verdict's rendering does not need it

_SKIPPED_OUTCOMES = (Outcome.INCONCLUSIVE, Outcome.INVALID)


@dataclass(frozen=True)
class JUnitCase:
    """One ``<testcase>``: passed, or failed or skipped with a message."""

    classname: str
    name: str
    failure: str | None = None
    """Why it failed: the ``message`` of its ``<failure>``."""
    failure_type: str = ""
    """The ``type`` of its ``<failure>``: ``regressed``, ``broken``, ``budget`` or ``check``."""
    skipped: str | None = None
    """Why it was not decided: the ``message`` of its ``<skipped>``."""
    output: str = ""
    """What a passing case measured, as its ``<system-out>``."""
    time_s: float | None = None


@dataclass(frozen=True)
class JUnitSuite:
    """One ``<testsuite>``: a command's cases and what is known of the whole."""

    name: str
    cases: list[JUnitCase]
    timestamp: datetime
    time_s: float | None = None
    properties: dict[str, str] | None = None
    output: str = ""


def _metric_case(endpoint: EndpointVerdict, test: MetricTest) -> JUnitCase:
    name, metric = endpoint.endpoint, test.metric.value
    measured = (f"{test.outcome.value}: base {_value(test, 'base')}, head {_value(test, 'head')}, "
                f"change {format_change(test)}, margin {_margin(test)}")
    if test.outcome is Outcome.REGRESSED:
        return JUnitCase(name, metric, failure=f"{name} {metric} regressed: change {format_change(test)} "
                         f"beyond the margin {_margin(test)}", failure_type="regressed", output=measured)
    if test.outcome in _SKIPPED_OUTCOMES:
        why = test.note or "; ".join(endpoint.reasons) or \
            f"the interval {format_change(test)} reaches both sides of the margin {_margin(test)}"
        return JUnitCase(name, metric, skipped=f"{test.outcome.value}: {why}", output=measured)
    return JUnitCase(name, metric, output=measured)


def _value(test: MetricTest, which: str) -> str:
    text = format_value(test, which)
    return text + " ms" if test.metric.relative and test.metric is not Metric.THROUGHPUT and text != "–" else text


def _margin(test: MetricTest) -> str:
    return f"{test.margin * 100:.1f} pp" if not test.metric.relative else f"{test.margin * 100:.1f} %"


def _endpoint_cases(endpoint: EndpointVerdict) -> list[JUnitCase]:
    if endpoint.tests:
        return [_metric_case(endpoint, test) for test in endpoint.tests]
    why = "; ".join(endpoint.reasons) or ("on one side only" if not endpoint.judged else "not tested")
    return [JUnitCase(endpoint.endpoint, "endpoint", skipped=f"{endpoint.outcome.value}: {why}")]


def _head_case(verdict: Verdict) -> JUnitCase:
    head = verdict.head
    counts = f"{head.runs} run(s) of the head, {head.invalid_runs} invalid"
    if verdict.outcome is Outcome.BROKEN:
        why = "; ".join(head.own_fault_reasons) or "; ".join(verdict.reasons) or verdict.headline
        return JUnitCase("head", "validity", failure=f"broken: {why}", failure_type="broken", output=counts)
    if verdict.outcome is Outcome.INVALID:
        return JUnitCase("head", "validity", skipped=f"invalid: {'; '.join(verdict.reasons) or verdict.headline}",
                         output=counts)
    return JUnitCase("head", "validity", output=counts)


def _budget_case(budget: BudgetResult) -> JUnitCase:
    bound = "at least" if budget.metric == "rps" else "at most"
    text = (f"{budget.metric} {budget_quantity(budget.metric, budget.value)}, {bound} "
            f"{budget_quantity(budget.metric, budget.limit)} ({budget.source})" + (f": {budget.note}" if budget.note
                                                                              else ""))
    name = f"budget {budget.metric}"
    if budget.passed:
        return JUnitCase(budget.endpoint, name, output=text)
    return JUnitCase(budget.endpoint, name, failure=f"budget exceeded: {text}", failure_type="budget", output=text)


def _check_case(check: CheckSummary) -> JUnitCase:
    counted = f"failed in {check.failures} of {check.runs} run(s)"
    if check.passed:
        return JUnitCase("checks", check.name, output=f"passed in {check.runs} run(s)")
    return JUnitCase("checks", check.name, failure=counted + (f": {check.message}" if check.message else ""),
                     failure_type="check")


def verdict_suite(verdict: Verdict, command: str) -> JUnitSuite:
    """The cases of a verdict of ``compare`` or ``ab`` (``command``)."""
    cases = [case for endpoint in verdict.endpoints for case in _endpoint_cases(endpoint)]
    cases.append(_head_case(verdict))
    cases += [_budget_case(b) for b in verdict.budgets] + [_check_case(c) for c in verdict.checks]
    properties = {"verdict": verdict.outcome.value, "profile": verdict.profile,
                  "head": verdict.head.commit or "", "base": (verdict.base.commit or "") if verdict.base else ""}
    elapsed = verdict.sequential.elapsed_s if verdict.sequential is not None else None
    return JUnitSuite(name=f"perfgate {command} {verdict.profile}", cases=cases, timestamp=verdict.created_at,
                      time_s=elapsed, properties=properties,
                      output="\n".join([content.headline(verdict), *verdict.notes]))


def run_suite(run: RunRecord) -> JUnitSuite:
    """The cases of a recorded run: its validity and its correctness checks."""
    measured = f"{run.total_requests} request(s), {run.total_failures} failed, {run.achieved_rps:.1f} req/s"
    if run.valid:
        validity = JUnitCase("run", "validity", output=measured, time_s=run.duration_s)
    else:
        validity = JUnitCase("run", "validity", skipped=f"invalid: {'; '.join(run.invalid_reasons)}",
                             output=measured, time_s=run.duration_s)
    checks = [JUnitCase("checks", c.name, failure=c.message or "failed", failure_type="check") if not c.passed
              else JUnitCase("checks", c.name, output="passed") for c in run.checks]
    properties = {"profile": run.profile.name, "commit": run.git.commit or "", "valid": str(run.valid).lower()}
    if run.id is not None:
        properties["run"] = str(run.id)
    return JUnitSuite(name=f"perfgate run {run.profile.name}", cases=[validity, *checks], timestamp=run.started_at,
                      time_s=run.duration_s, properties=properties)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _counts(cases: list[JUnitCase]) -> dict[str, str]:
    return {"tests": str(len(cases)), "failures": str(sum(c.failure is not None for c in cases)), "errors": "0",
            "skipped": str(sum(c.failure is None and c.skipped is not None for c in cases))}


def _case_element(parent: ET.Element, case: JUnitCase) -> None:
    element = ET.SubElement(parent, "testcase", classname=textsafety.xml_text(case.classname,
                                                                               textsafety.ENDPOINT_CHARS),
                            name=textsafety.xml_text(case.name, textsafety.ENDPOINT_CHARS))
    if case.time_s is not None:
        element.set("time", _seconds(case.time_s))
    if case.failure is not None:
        message = textsafety.xml_text(case.failure)
        failure = ET.SubElement(element, "failure", message=message, type=case.failure_type)
        failure.text = message
    elif case.skipped is not None:
        ET.SubElement(element, "skipped", message=textsafety.xml_text(case.skipped))
    if case.output:
        ET.SubElement(element, "system-out").text = textsafety.xml_text(case.output)


def render_junit(suite: JUnitSuite) -> str:
    """The suite as a JUnit XML document (``<testsuites>`` holding one ``<testsuite>``), UTF-8."""
    counts = _counts(suite.cases)
    root = ET.Element("testsuites", {"name": "perfgate", **counts})
    element = ET.SubElement(root, "testsuite", {"name": textsafety.xml_text(suite.name, textsafety.NAME_CHARS),
                                                **counts})
    # JUnit's timestamp is ISO 8601 without a zone (the Jenkins schema's pattern): written in UTC.
    element.set("timestamp", suite.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    if suite.time_s is not None:
        root.set("time", _seconds(suite.time_s))
        element.set("time", _seconds(suite.time_s))
    if suite.properties:
        properties = ET.SubElement(element, "properties")
        for key, value in suite.properties.items():
            ET.SubElement(properties, "property", name=key, value=textsafety.xml_text(value, textsafety.NAME_CHARS))
    for case in suite.cases:
        _case_element(element, case)
    if suite.output:
        lines = (textsafety.xml_text(line) for line in suite.output.splitlines())
        ET.SubElement(element, "system-out").text = "\n".join(lines)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def verdict_junit(verdict: Verdict, command: str) -> str:
    """JUnit XML of a verdict of ``compare`` or ``ab``."""
    return render_junit(verdict_suite(verdict, command))


def run_junit(run: RunRecord) -> str:
    """JUnit XML of a recorded run."""
    return render_junit(run_suite(run))
