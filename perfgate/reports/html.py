"""The HTML report: one self-contained file (styles and charts inline, no script, no fetch).

It shows the verdict, then per endpoint the latency distributions of base and head,
their p95 over time within the runs and the per-run spread; the load (requests and
failures per second), the service's CPU and RSS, the branch's history, and findings
in plain words. Every number comes from the verdict or from the recorded runs; the
only arithmetic here is for drawing (CDF points, sums per second).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import jinja2
from markupsafe import Markup, escape

from perfgate import textsafety
from perfgate.decide.verdict import EndpointTrend, Metric, Outcome, Verdict
from perfgate.records import RunRecord
from perfgate.reports import content
from perfgate.reports.charts import BASE_COLOR, HEAD_COLOR, Chart, Series, downsample, render
from perfgate.reports.content import (
    ICONS,
    Line,
    budget_comparison,
    budgets_failed_first,
    format_change,
    format_failures,
    format_value,
    test_of,
)
from perfgate.samples import LatencyHistogram

LEAK_MB = 20.0
"""RSS growth within a run that the findings call a possible leak."""
CDF_POINTS = 60


@dataclass
class EndpointSection:
    endpoint: str
    outcome: Outcome | None
    charts: list[Markup] = field(default_factory=list)


def _side_label(verdict: Verdict | None, which: str) -> str:
    if verdict is None:
        return "run"
    side = verdict.base if which == "base" else verdict.head
    if side is None:
        return which
    return f"{which} {side.commit[:7]}" if side.commit else which


def _cdf(histogram: LatencyHistogram) -> list[tuple[float, float]]:
    qs = [i / (CDF_POINTS - 1) for i in range(CDF_POINTS)]
    qs = [min(max(q, 0.001), 0.999) for q in qs]
    return [(float(v), q) for v, q in zip(histogram.quantiles(qs), qs, strict=True) if v > 0]


def _merged(runs: list[RunRecord], endpoint: str) -> LatencyHistogram | None:
    found = [e.histogram for r in runs if r.valid and (e := r.endpoint(endpoint)) is not None and e.histogram.count]
    return LatencyHistogram.merge_all(found) if found else None


def _endpoint_section(endpoint: str, outcome: Outcome | None, base: list[RunRecord], head: list[RunRecord],
                      labels: tuple[str, str]) -> EndpointSection:
    section = EndpointSection(endpoint, outcome)
    sides = [(labels[0], BASE_COLOR, base), (labels[1], HEAD_COLOR, head)]
    shown = textsafety.plain_text(endpoint, textsafety.ENDPOINT_CHARS)  # the key itself still finds the runs' data
    cdf = Chart(f"{shown}: latency distribution (all requests of the valid runs)", "latency (ms, log)",
                "share of requests ≤ x", log_x=True)
    for label, color, runs in sides:
        merged = _merged(runs, endpoint)
        if merged is not None:
            cdf.series.append(Series(label, color, _cdf(merged)))
    section.charts.append(render(cdf))
    over_time = Chart(f"{shown}: p95 (solid) and p50 (dashed) per second within each run",
                      "second of the run", "ms")
    for label, color, runs in sides:
        for run in runs:
            result = run.endpoint(endpoint)
            if result is not None:
                for metric, dashed in (("p95", False), ("p50", True)):
                    points = [(b.t, getattr(b, metric)) for b in result.series if getattr(b, metric) is not None]
                    over_time.series.append(Series(f"{label} · run {run.id} {metric}", color, downsample(points),
                                                   dashed=dashed, width=1.0))
    section.charts.append(render(over_time))
    runs_shown = max(len(base), len(head), 1)
    spread = Chart(f"{shown}: p50 and p95 of each run", "run (in order)", "ms", y_from_zero=False,
                   x_ticks=[(i, str(i)) for i in range(1, runs_shown + 1)] if runs_shown <= 20 else None)
    for label, color, runs in sides:
        stats = [(i + 1, e.stats) for i, r in enumerate(runs) if (e := r.endpoint(endpoint)) is not None]
        spread.series.append(Series(f"{label} p50", color, [(i, s.p50) for i, s in stats if s.p50]))
        spread.series.append(Series(f"{label} p95", color, [(i, s.p95) for i, s in stats if s.p95], dashed=True))
    section.charts.append(render(spread))
    return section


def _per_second_totals(run: RunRecord) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    requests: dict[int, int] = {}
    failures: dict[int, int] = {}
    for endpoint in run.endpoints:
        for bucket in endpoint.series:
            requests[bucket.t] = requests.get(bucket.t, 0) + bucket.requests
            failures[bucket.t] = failures.get(bucket.t, 0) + bucket.failures
    return sorted(requests.items()), sorted(failures.items())


def _load_and_service_charts(sides: list[tuple[str, str, list[RunRecord]]]) -> list[Markup]:
    rps = Chart("Requests per second, all endpoints", "second of the run", "requests/s")
    fails = Chart("Failures per second, all endpoints", "second of the run", "failures/s")
    cpu = Chart("Service CPU (whole process tree)", "seconds since the service was ready", "CPU %")
    rss = Chart("Service memory (RSS)", "seconds since the service was ready", "MB", y_from_zero=False)
    for label, color, runs in sides:
        for run in runs:
            requests, failures = _per_second_totals(run)
            name = f"{label} · run {run.id}"
            rps.series.append(Series(name, color, downsample(requests), width=1.0))
            fails.series.append(Series(name, color, downsample(failures), width=1.0))
            if run.service is not None:
                cpu.series.append(Series(name, color, downsample([(s.t, s.cpu_percent) for s in run.service.samples]),
                                         width=1.0))
                rss.series.append(Series(name, color, downsample([(s.t, s.rss_mb) for s in run.service.samples]),
                                         width=1.0))
    return [render(c) for c in (rps, fails, cpu, rss, *_metric_charts(sides))]


MAX_METRIC_CHARTS = 12
"""Charts of the service's own metrics in one report: one per series key, the first this many by name."""


def _metric_charts(sides: list[tuple[str, str, list[RunRecord]]]) -> list[Chart]:
    """One chart per series of the service's own metrics (a name and its labels), every run of both sides on it."""
    charts: dict[str, Chart] = {}
    keys = sorted({s.key for _, _, runs in sides for r in runs if r.metrics for s in r.metrics.series})
    for key in keys[:MAX_METRIC_CHARTS]:
        charts[key] = Chart(f"Service metric {textsafety.plain_text(key, textsafety.NAME_CHARS)}",
                            "seconds since the first scrape", "value", y_from_zero=False)
    for label, color, runs in sides:
        for run in runs:
            for series in run.metrics.series if run.metrics else ():
                if series.key in charts:
                    charts[series.key].series.append(Series(f"{label} · run {run.id}", color,
                                                            downsample(list(series.samples)), width=1.0))
    return list(charts.values())


def _history_charts(history: list[EndpointTrend]) -> list[Markup]:
    charts = []
    for trend in history:
        unit = "req/s" if trend.metric == "rps" else "ms"
        chart = Chart(f"{textsafety.plain_text(trend.endpoint, textsafety.ENDPOINT_CHARS)}: "
                      f"{textsafety.plain_text(trend.metric, textsafety.NAME_CHARS)} per commit on "
                      f"{textsafety.plain_text(trend.branch, textsafety.NAME_CHARS)}", "commit", unit,
                      y_from_zero=False,
                      x_ticks=[(i, p.commit[:7]) for i, p in enumerate(trend.points)] if len(trend.points) <= 12
                      else None)
        chart.series.append(Series(trend.metric, BASE_COLOR, [(i, p.value) for i, p in enumerate(trend.points)]))
        chart.x_markers = [(i - 0.5, f"level shift before {trend.points[i].commit[:7]}") for i in trend.change_points]
        charts.append(render(chart))
    return charts


def _sentence(text: str) -> str:
    """``text`` ending as a sentence does (a reason or a message from outside may lack the full stop)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def findings(verdict: Verdict | None, head: list[RunRecord], base: list[RunRecord]) -> list[str]:
    """Whole sentences a reader takes away, from the verdict and the recorded service usage."""
    lines = []
    if verdict is not None:
        for e in verdict.endpoints:
            name = textsafety.plain_text(e.endpoint, textsafety.ENDPOINT_CHARS)
            decided = [(t, t.change) for t in e.tests
                       if t.outcome in (Outcome.REGRESSED, Outcome.IMPROVED) and t.change is not None]
            for test, change in decided:
                verb = ("rose" if change > 0 else "fell")
                if test.metric is Metric.FAILURE_RATE:
                    text = f"The failure rate of {name} {verb} {abs(change) * 100:.1f} percentage points"
                else:
                    low, high = test.ci_low or 0.0, test.ci_high or 0.0
                    text = (f"The {test.metric.value} of {name} {verb} {abs(change) * 100:.0f} % "
                            f"[{low * 100:+.0f} %, {high * 100:+.0f} %]")
                failures = test_of(e.tests, "failure_rate")
                if failures is not None and test.metric is not Metric.FAILURE_RATE:
                    text += "; failures unchanged" if failures.outcome is Outcome.UNCHANGED else \
                        f"; failures {failures.outcome.value}"
                lines.append(_sentence(text))
            if e.outcome is Outcome.INCONCLUSIVE:
                p50 = test_of(e.tests, "p50")
                detail = f" (p50 {format_change(p50)})" if p50 is not None and p50.change is not None else ""
                lines.append(f"The data of {name} cannot tell a change from noise{detail}; more runs (perfgate run) "
                             "or pairs (perfgate ab --max-pairs) would decide it.")
            if e.outcome is Outcome.INVALID and e.reasons:
                lines.append(_sentence(f"{name} was not judged: {textsafety.plain_text(e.reasons[0])}"))
        for budget in verdict.budgets:
            if not budget.passed:
                where = (f"{textsafety.plain_text(budget.endpoint, textsafety.ENDPOINT_CHARS)} "
                         f"{textsafety.plain_text(budget.metric, textsafety.NAME_CHARS)}")
                lines.append(_sentence(f"A budget was exceeded: {where} {budget_comparison(budget)}"
                                       + (f" ({textsafety.plain_text(budget.note)})" if budget.note else "")))
        for check in verdict.checks:
            if not check.passed:
                lines.append(_sentence(f"A correctness check failed: "
                                       f"{textsafety.plain_text(check.name, textsafety.NAME_CHARS)} "
                                       f"({textsafety.plain_text(check.message)})"))
    growth = [r.service.rss_growth_mb for r in head if r.service is not None]
    if growth and statistics.median(growth) >= LEAK_MB:
        lines.append(f"The service's RSS grew {statistics.median(growth):.0f} MB during a run (median of "
                     f"{len(growth)} run(s)), a possible leak.")
    cpu_head = [r.service.cpu_mean for r in head if r.service is not None]
    cpu_base = [r.service.cpu_mean for r in base if r.service is not None]
    if cpu_head and cpu_base:
        lines.append(f"The service used {statistics.median(cpu_base):.0f} % CPU on the base and "
                     f"{statistics.median(cpu_head):.0f} % on the head (median of the runs' means).")
    if verdict is not None and not lines:
        if content.budgets_only(verdict):
            lines.append("Every budget holds; there was no baseline to compare the endpoints with.")
        elif verdict.outcome is Outcome.UNCHANGED:
            lines.append("Every endpoint is within its margins.")
        else:
            lines.append(_sentence(textsafety.plain_text(content.headline(verdict))))
    return lines


HTML_TEXT_CHARS = 2000
"""Backstop for any one piece of text in the report; the fields from outside have their own, smaller bounds."""


def _visible(value: object) -> object:
    """Every text the template prints, before autoescaping: no control or format characters, bounded.

    Bidi overrides and zero-width characters would make the page read differently from its
    text; the charts are already-escaped markup and pass as they are.
    """
    if isinstance(value, str) and not isinstance(value, Markup):
        return textsafety.plain_text(value, HTML_TEXT_CHARS)
    return value


def html_line(line: Line) -> Markup:
    """A :data:`~perfgate.reports.content.Line` as HTML: every part escaped, its code in ``<code>``, its strong
    words in ``<strong>``, its fields stripped of invisible characters and bounded."""
    out = []
    for part in line:
        if part.kind == "field":
            out.append(escape(textsafety.plain_text(part.text, part.limit)))
        elif part.kind == "code":
            out.append(Markup("<code>%s</code>") % textsafety.plain_text(part.text, part.limit))
        elif part.kind == "strong":
            out.append(Markup("<strong>%s</strong>") % part.text)
        else:
            out.append(escape(part.text))
    return Markup("").join(out)


@lru_cache(maxsize=1)
def html_environment() -> jinja2.Environment:
    """Autoescaping on: endpoint names, branches and reasons come from users."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("perfgate.reports", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             finalize=_visible)
    env.filters.update(change=format_change, value=format_value, failures=format_failures,
                       plain=textsafety.plain_text, parts=html_line, budget=budget_comparison,
                       failed_first=budgets_failed_first)
    # A coloured dot rather than an emoji: the report must read the same without an emoji font.
    env.globals.update(icons={outcome: "●" for outcome in ICONS}, test_of=test_of, content=content,
                       ENDPOINT=textsafety.ENDPOINT_CHARS, NAME=textsafety.NAME_CHARS)
    return env


def render_html(*, verdict: Verdict | None, base: list[RunRecord], head: list[RunRecord],
                history: list[EndpointTrend] | None = None, title: str | None = None) -> str:
    """The whole report as one HTML document."""
    labels = (_side_label(verdict, "base"), _side_label(verdict, "head"))
    order: list[tuple[str, Outcome | None]]
    if verdict is not None:
        order = [(e.endpoint, e.outcome) for e in verdict.endpoints]
    else:
        order = [(e.stats.key, None) for e in head[0].endpoints] if head else []
    sections = [_endpoint_section(endpoint, outcome, base, head, labels) for endpoint, outcome in order]
    sides = [(labels[0], BASE_COLOR, base), (labels[1], HEAD_COLOR, head)]
    history = history if history is not None else (verdict.history if verdict is not None else [])
    template = html_environment().get_template("report.html.j2")
    return template.render(
        v=verdict, title=title or (f"perfgate · {textsafety.plain_text(verdict.profile, textsafety.NAME_CHARS)} · "
                                  f"{content.outcome_label(verdict).lower()}" if verdict else "perfgate run"),
        sections=sections, load_charts=_load_and_service_charts(sides), history_charts=_history_charts(history),
        findings=findings(verdict, head, base), base=base, head=head, labels=labels, now=datetime.now(UTC))
