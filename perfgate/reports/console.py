"""Terminal rendering: the live progress display and the tables of runs.

Nothing here computes a statistic; it only shows records it is given.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.console import Console
from rich.live import Live
from rich.markup import escape as escape_markup
from rich.table import Table
from rich.text import Text

from perfgate import textsafety
from perfgate.decide.endurance import EnduranceFinding
from perfgate.decide.verdict import BudgetResult, EndpointTrend, Outcome, Verdict
from perfgate.measure.locust import Progress, ProgressCallback
from perfgate.records import RunRecord, median_of_runs
from perfgate.reports import content
from perfgate.reports.content import (
    Line,
    budget_comparison,
    budgets_failed_first,
    format_change,
    format_failures,
    format_value,
    test_of,
)

if TYPE_CHECKING:
    from perfgate.ab.calibrate import Calibration
    from perfgate.baselines.pinned import PinnedBaseline

PLAIN_PROGRESS_EVERY_S = 5.0


TERMINAL_TEXT_CHARS = 2000
"""Any one text printed: a name of 100 kB would flood the terminal (and take rich minutes to fold)."""


def escape(text: str) -> str:
    """Text from outside, safe for a rich markup string: its markup escaped, its control and format characters
    gone (an ANSI escape sequence in an endpoint name would restyle or rewrite the terminal; rich keeps them),
    one line, bounded. A leading ``::`` is split: in a GitHub Actions log a line starting with it is a workflow
    command (an annotation, a mask, stop-commands), and an endpoint name or a reason can start a line."""
    value = textsafety.plain_text(text, TERMINAL_TEXT_CHARS)
    return escape_markup(": :" + value[2:] if value.startswith("::") else value)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _progress_text(p: Progress) -> str:
    p95 = "–" if p.current_p95_ms is None else f"{p.current_p95_ms:g} ms"
    return (f"{min(p.elapsed_s, p.planned_s):4.0f}s / {p.planned_s:.0f}s  users {p.users}  "
            f"rps {p.current_rps:.1f}  requests {p.requests}  failures {p.failures}  p95 {p95}")


@contextmanager
def progress_display(console: Console) -> Iterator[ProgressCallback]:
    """A live line on a terminal; a plain line every few seconds in CI or a pipe."""
    interactive = console.is_terminal and not os.environ.get("CI")
    if interactive:
        with Live(Text("starting Locust…"), console=console, refresh_per_second=4, transient=True) as live:
            yield lambda p: live.update(Text("perfgate  " + _progress_text(p)))
        return
    last = [0.0]

    def plain(p: Progress) -> None:
        now = time.monotonic()
        if now - last[0] >= PLAIN_PROGRESS_EVERY_S:
            last[0] = now
            console.print("perfgate: " + _progress_text(p), markup=False, highlight=False)

    yield plain


def run_summary(run: RunRecord) -> Table:
    """One run: a title with provenance and a row per endpoint."""
    git = run.git
    commit = (git.commit or "no git")[:12] + (" (dirty)" if git.dirty else "")
    verdict = "valid" if run.valid else "INVALID"
    title = (f"run {run.id} · {escape(run.profile.name)} · {commit} on {escape(git.branch or '-')} · "
             f"{run.total_requests} requests in {run.duration_s:.1f}s ({run.achieved_rps:.1f}/s) · {verdict}")
    table = Table(title=title, title_justify="left")
    table.add_column("endpoint", overflow="fold")
    for column in ("requests", "fail %", "rps", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for e in run.endpoints:
        s = e.stats
        table.add_row(escape(s.key), str(s.count), f"{100 * s.failure_rate:.2f}", f"{s.rps:.1f}",
                      _ms(s.p50), _ms(s.p90), _ms(s.p95), _ms(s.p99), _ms(s.max))
    return table


def print_run(console: Console, run: RunRecord, min_requests: int | None = None) -> None:
    from perfgate.measure.record import sparse_endpoints

    console.print(run_summary(run))
    if run.profile.host_from_user_classes:
        console.print(f"host {escape(run.profile.host)}, the User classes' own", highlight=False)
    if run.profile.locust_args:
        console.print(f"extra Locust arguments: {escape(shlex.join(run.profile.locust_args))}", highlight=False)
    if run.topology.workers:
        console.print(f"load from {escape(run.topology.describe())}", highlight=False)
    if run.master is not None:
        console.print(f"master CPU {run.master.cpu_mean:.0f} % of one core on average, {run.master.cpu_max:.0f} % "
                      "at most", highlight=False)
    if run.warmup_end_s is not None:
        waited = " (waited for every user's on_start)" if run.warmup_end_s > run.profile.warmup + 0.05 else ""
        console.print(f"measured from {run.warmup_end_s:.1f} s after the start{waited}", highlight=False)
    for reason in run.invalid_reasons:
        console.print(f"[bold red]invalid:[/] {escape(reason)}")
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for check in run.checks:
        mark = "[green]passed[/]" if check.passed else "[bold red]FAILED[/]"
        detail = f": {escape(check.message)}" if check.message else ""
        console.print(f"check {escape(check.name)} {mark}{detail}")
    for e in run.endpoints:
        for kind, count in e.stats.failures_by_type.items():
            console.print(f"[yellow]failures[/] {escape(e.stats.key)}: {count} × {escape(kind)}")
    if run.service is not None:
        s = run.service
        console.print(f"service: CPU mean {s.cpu_mean:.0f} % (max {s.cpu_max:.0f} %), "
                      f"RSS mean {s.rss_mean_mb:.0f} MB (max {s.rss_max_mb:.0f} MB, growth {s.rss_growth_mb:+.1f} MB)")
    if run.metrics is not None:
        for line in metrics_lines(run):
            console.print(escape(line), highlight=False)
    for sparse in sparse_endpoints(run, min_requests) if min_requests else []:
        console.print(f"[yellow]too few requests to compare:[/] {escape(sparse.endpoint)} had {sparse.requests}, "
                      f"compare needs {min_requests} a run; -t {sparse.run_time_s:.0f}s would give it enough")


def metrics_lines(run: RunRecord) -> list[str]:
    """The service's own metrics of a run, a line per series: first → last value, and a counter's growth per
    request."""
    m = run.metrics
    if m is None:
        return []
    lines = [f"service metrics from {textsafety.plain_text(m.url, 200)}: {m.scrapes - m.failed} of {m.scrapes} "
             "scrapes answered"]
    for series in m.series[:20]:
        name = textsafety.plain_text(series.key, 200)
        first, last = series.samples[0][1], series.samples[-1][1]
        growth = last - first
        if series.name.endswith("_bytes"):
            text = f"{first / 2**20:.1f} MB → {last / 2**20:.1f} MB ({growth / 2**20:+.1f} MB)"
        elif series.kind == "counter" or series.name.endswith("_total"):
            per = f", {growth / run.locust_request_count:.3g} per request" if run.locust_request_count else ""
            text = f"{growth:+,.6g} over the run{per}"
        else:
            text = f"{first:,.6g} → {last:,.6g}"
        lines.append(f"  {name}: {text}")
    if len(m.series) > 20:
        lines.append(f"  … {len(m.series) - 20} more series (perfgate show --format json has them all)")
    return lines


def print_budgets(console: Console, budgets: list[BudgetResult], *, notes: bool = True) -> None:
    """Every budget on a line, k6-style, the failed ones first: ``✓ GET /items* p95 18.2 ms ≤ 100 ms``
    (and why it has no value, unless ``notes`` is false: a verdict says that once per pattern)."""
    for budget in budgets_failed_first(budgets):
        mark = "[green]✓[/]" if budget.passed else "[bold red]✗[/]"
        source = "" if budget.source == "config" else f" ({escape(budget.source)})"
        console.print(f"{mark} {escape(budget.endpoint)} {escape(budget.metric)} {budget_comparison(budget)}{source}"
                      + (f": {escape(budget.note)}" if budget.note and notes else ""))


def endurance_line(finding: EnduranceFinding) -> str:
    """One endurance finding, plain (the caller escapes it)."""
    status = "held" if finding.passed else "FAILED"
    if finding.value is None:
        return f"endurance {finding.name}: undecided: {finding.note}"
    if finding.name == "memory slope":
        measured = (f"{finding.value:+.2f} MB/min [{finding.low:+.2f}, {finding.high:+.2f}] from {finding.source}, "
                    f"limit {finding.limit:g} MB/min")
    else:
        measured = (f"last fifth's p50 {finding.value:+.1%} [{finding.low:+.1%}, {finding.high:+.1%}] against the "
                    f"first fifth's, limit {finding.limit:+.0%}")
    return f"endurance {finding.name} {status}: {measured}"


def print_endurance(console: Console, findings: list[EnduranceFinding]) -> None:
    for finding in findings:
        style = "" if finding.passed or finding.value is None else "[bold red]"
        console.print(style + escape(endurance_line(finding)) + ("[/]" if style else ""))


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(title_justify="left")
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("id", "right"), ("started (UTC)", "left"), ("commit", "left"), ("branch", "left"), ("profile", "left"),
        ("requests", "right"), ("rps", "right"), ("fail %", "right"), ("valid", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for run in runs:
        commit = (run.git.commit or "-")[:10] + ("*" if run.git.dirty else "")
        fail = 100 * run.total_failures / run.total_requests if run.total_requests else 0.0
        table.add_row(str(run.id), run.started_at.strftime("%Y-%m-%d %H:%M:%S"), commit,
                      escape(run.git.branch or "-"), escape(run.profile.name), str(run.total_requests),
                      f"{run.achieved_rps:.1f}", f"{fail:.2f}", "yes" if run.valid else "NO")
    return table


_STYLES = {Outcome.BROKEN: "bold red", Outcome.REGRESSED: "bold red", Outcome.IMPROVED: "green",
           Outcome.UNCHANGED: "green", Outcome.INCONCLUSIVE: "yellow", Outcome.INVALID: "dim"}


def markup(line: Line) -> str:
    """A :data:`~perfgate.reports.content.Line` as a rich markup string: its fields escaped, its strong words bold."""
    out = []
    for part in line:
        if part.kind in ("field", "code"):
            out.append(escape(textsafety.plain_text(part.text, part.limit)))
        elif part.kind == "strong":
            out.append(f"[bold]{escape_markup(part.text)}[/]")
        else:
            out.append(escape_markup(part.text))
    return "".join(out)


def print_verdict(console: Console, verdict: Verdict) -> None:
    """The verdict as a table, worst endpoint first, with provenance underneath."""
    style = _STYLES[content.shown_outcome(verdict)]
    console.print(f"[{style}]{escape(content.headline(verdict))}[/]")
    if verdict.endpoints:
        table = Table(title_justify="left")
        table.add_column("endpoint", overflow="fold")
        table.add_column("verdict")
        level = content.interval_level(verdict.settings.alpha)
        for column in ("p50 ms", f"p50 change [{level} % CI]", "p95 ms", "p95 change", "fail %", "rps",
                       "HL shift", "P(slower)"):
            table.add_column(escape_markup(column), justify="right")
        for e in verdict.endpoints:
            p50, p95 = test_of(e.tests, "p50"), test_of(e.tests, "p95")
            evidence = e.evidence
            table.add_row(
                escape(e.endpoint), f"[{_STYLES[e.outcome]}]{e.outcome.value}[/]",
                f"{format_value(p50, 'base')} → {format_value(p50, 'head')}", format_change(p50),
                f"{format_value(p95, 'base')} → {format_value(p95, 'head')}", format_change(p95),
                format_failures(test_of(e.tests, "failure_rate")),
                format_change(test_of(e.tests, "throughput"), interval=False),
                f"{evidence.hodges_lehmann_shift * 100:+.1f} %" if evidence else "–",
                f"{evidence.prob_superiority:.2f}" if evidence else "–",
            )
        console.print(table)
    for e in verdict.endpoints:
        for line in content.endpoint_lines(e):
            console.print(f"[dim]{markup(line)}[/]")
    for line in content.reason_lines(verdict):
        console.print(f"[{style}]{markup(line)}[/]")
    for line in content.note_lines(verdict):
        console.print(f"[yellow]{markup(line)}[/]")
    for change in verdict.baseline_changes:
        console.print(f"[yellow]{markup(content.baseline_change_line(change))}[/]")
    if verdict.gate_changes:
        console.print(f"[yellow]{markup(content.GATE_CHANGES_LINE)}[/]")
        for gate_change in verdict.gate_changes:
            console.print(f"[yellow]  - {markup(content.gate_change_line(gate_change))}[/]")
    print_budgets(console, verdict.budgets, notes=False)
    for line in content.budget_note_lines(verdict):
        console.print(f"[bold red]{markup(line)}[/]")
    for line in content.check_lines(verdict):
        console.print(f"[bold red]{markup(line)}[/]")
    for line in content.provenance_lines(verdict):
        console.print(f"[dim]{markup(line)}[/]")


def print_pinned(console: Console, path: Path, pinned: PinnedBaseline) -> None:
    console.print(f"{escape(str(path))}: {pinned.kind} baseline of profile {escape(pinned.profile)}")
    console.print(f"commit {pinned.commit or '-'}; accepted by {escape(pinned.accepted_by or 'unknown')} "
                  f"at {pinned.accepted_at:%Y-%m-%d %H:%M} UTC: {escape(pinned.reason)}")
    if pinned.expires:
        state = "EXPIRED" if pinned.expired() else "expires"
        console.print(f"{state} {pinned.expires:%Y-%m-%d}")
    table = Table(title_justify="left")
    table.add_column("endpoint", overflow="fold")
    for column in ("runs", "p50 ms", "p95 ms", "p99 ms", "rps"):
        table.add_column(column, justify="right")
    if pinned.kind == "expected":
        for endpoint, e in sorted(pinned.expected.items()):
            table.add_row(escape(endpoint), "–", _ms(e.p50), _ms(e.p95), _ms(e.p99),
                          "–" if e.rps is None else f"{e.rps:g}")
    else:
        keys = sorted({k for r in pinned.runs for k in r.endpoints})
        for key in keys:
            stats = [r.endpoints[key] for r in pinned.runs if key in r.endpoints]
            p50, p95, p99, rps = (median_of_runs(stats, f) for f in ("p50", "p95", "p99", "rps"))
            table.add_row(escape(key), str(len(stats)), _ms(p50), _ms(p95), _ms(p99),
                          "–" if rps is None else f"{rps:.1f}")
    console.print(table)


def pinned_table(found: list[tuple[Path, PinnedBaseline]]) -> Table:
    table = Table(title_justify="left")
    for column in ("file", "profile", "kind", "commit", "runs", "accepted by", "accepted (UTC)", "expires",
                   "reason"):
        table.add_column(column, overflow="fold")
    for path, p in found:
        expires = "-" if p.expires is None else f"{p.expires:%Y-%m-%d}" + (" (expired)" if p.expired() else "")
        table.add_row(escape(path.name), escape(p.profile), p.kind, (p.commit or "-")[:10], str(len(p.runs)),
                      escape(p.accepted_by or "-"), f"{p.accepted_at:%Y-%m-%d %H:%M}", expires, escape(p.reason))
    return table


def print_calibration(console: Console, calibration: Calibration, min_requests: int) -> None:
    """Noise per endpoint and metric, what the gate can detect, and the suggested margins."""
    p = calibration.profile
    duet = calibration.mode == "duet"
    unit = "same-moment run(s)" if duet else "pair(s)"
    console.print(f"{calibration.pairs} A/A {unit} of {p.run_time:g} s runs ({p.warmup:g} s warm-up), "
                  f"{p.users} users{' on each side' if duet else ''}; {calibration.false_regressions} false "
                  f"regression(s) among {calibration.family_size} tests")
    table = Table(title_justify="left")
    table.add_column("endpoint", overflow="fold")
    table.add_column("metric")
    for column in ("noise", "pair corr.", "A/A", "margin", *(f"detectable @{n}" for n in calibration.reported),
                   "margin needed"):
        table.add_column(column, justify="right")
    for m in calibration.metrics:
        table.add_row(escape(m.endpoint), m.metric.value, f"{m.noise * 100:.1f} %",
                      "–" if m.correlation is None else f"{m.correlation:+.2f}",
                      "REGRESSED" if m.false_regressions else "ok", f"{m.margin * 100:g} %",
                      *(f"{m.detectable[n] * 100:.0f} %" for n in calibration.reported),
                      f"{m.needed_margin * 100:.1f} %")
    console.print(table)
    together = "the two sides of a same-moment run" if duet else "two back-to-back runs"
    console.print(f"[dim]noise: run-to-run standard deviation; pair corr.: what {together} share "
                  "(pairing cancels it); detectable @n: the smallest change found with 90 % power after n "
                  f"{unit.replace('(s)', 's')} at the current margins and α, spent over the looks "
                  f"{calibration.looks}[/]")
    suggested = ", ".join(f"{k} {v * 100:g} %" for k, v in sorted(calibration.suggested_margins.items()))
    console.print(f"suggested margins (each found with 90 % power by the last look): {suggested}")
    for endpoint, margins in sorted(calibration.endpoint_margins.items()):
        wider = ", ".join(f"{k} {v * 100:g} %" for k, v in sorted(margins.items()))
        console.print(f"  noisier than the rest, its own margins: {escape(endpoint)}: {wider}")
    if calibration.suggested_run_time is not None:
        console.print(f"run length: {escape(calibration.rarest_endpoint)} had only {calibration.rarest_requests} "
                      f"requests in a run; -t {calibration.suggested_run_time:g}s gives it about "
                      f"{calibration.wanted_requests} (fewer than {min_requests} make it invalid, "
                      "few make its quantiles noisy); the margins above are measured on these short runs, "
                      "so calibrate again at that length before adopting them")
    else:
        console.print(f"run length: {p.run_time:g} s gives every endpoint {calibration.rarest_requests}+ requests "
                      "a run; shorter runs would mean more pairs in the same time")


def print_history(console: Console, trends: list[EndpointTrend]) -> None:
    """Per endpoint: the metric per commit, oldest first, with the level shifts marked."""
    for trend in trends:
        unit = "req/s" if trend.metric == "rps" else "ms"
        table = Table(title=f"{escape(trend.endpoint)} · {trend.metric} ({unit}) on {escape(trend.branch)}",
                      title_justify="left")
        for column in ("commit", "recorded (UTC)", "runs", trend.metric, "vs previous", ""):
            table.add_column(column, justify="right" if column in ("runs", trend.metric, "vs previous") else "left")
        previous = None
        for i, point in enumerate(trend.points):
            change = "–" if previous is None else f"{(point.value / previous - 1) * 100:+.1f} %"
            shift = "[bold yellow]◆ level shift[/]" if i in trend.change_points else ""
            table.add_row(point.commit[:10], f"{point.at:%Y-%m-%d %H:%M}", str(point.runs), f"{point.value:.2f}",
                          change, shift)
            previous = point.value
        console.print(table)
