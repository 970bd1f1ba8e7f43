"""A capacity search and a capacity verdict, for the terminal and as Markdown.

Objectives, endpoint names and reasons come from outside (a config a pull request may edit, a locustfile's
names): escaped for each medium, as in every other report.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from perfgate import textsafety
from perfgate.baselines.selection import short
from perfgate.capacity.judge import CapacitySide, CapacityVerdict
from perfgate.records import CapacityRecord, CapacityStep
from perfgate.reports.charts import BASE_COLOR, HEAD_COLOR, Chart, Series, render
from perfgate.reports.console import escape
from perfgate.reports.html import html_environment


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def _rate(value: float | None) -> str:
    return "–" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def step_line(step: CapacityStep) -> str:
    """One step as a progress line (plain text: the caller escapes it for its medium)."""
    if not step.valid:
        verdict = "invalid: " + (step.invalid_reasons[0] if step.invalid_reasons else "")
    elif step.broken:
        verdict = "broke " + "; ".join(step.broken[:2])
    else:
        verdict = "met every objective"
    phase = "climb" if step.repeat == 0 else f"refine {step.repeat}"
    return (f"{phase}: {step.offered:g}/s offered, {step.achieved:.1f} req/s, p95 {_ms(step.p95)} ms, "
            f"{step.failures} failed: {verdict}")


def result_line(record: CapacityRecord) -> str:
    if record.capacity is None:
        return "capacity unknown: " + "; ".join(record.reasons or ["the search found none"])
    return (f"capacity {record.capacity:.1f}/s [{record.low:.1f}, {record.high:.1f}] meeting "
            f"{', '.join(record.objectives)}; first broken: {record.first_broken or '–'}")


STEP_COLUMNS = ("phase", "offered/s", "achieved req/s", "p50 ms", "p95 ms", "p99 ms", "failures", "service CPU %",
                "outcome")


def step_cells(step: CapacityStep) -> list[str]:
    """One step's row (plain text), for every medium's table."""
    outcome = ("invalid: " + (step.invalid_reasons[0] if step.invalid_reasons else "") if not step.valid
               else ("broke " + "; ".join(step.broken[:2]) if step.broken else "met"))
    return ["climb" if step.repeat == 0 else f"refine {step.repeat}", f"{step.offered:g}", f"{step.achieved:.1f}",
            _ms(step.p50), _ms(step.p95), _ms(step.p99), f"{step.failures}/{step.requests}",
            "–" if step.service_cpu is None else f"{step.service_cpu:.0f}", outcome]


def steps_table(record: CapacityRecord) -> Table:
    table = Table(title="steps")
    for column in STEP_COLUMNS:
        table.add_column(column, justify="left" if column in ("phase", "outcome") else "right")
    for step in record.steps:
        table.add_row(*(escape(cell) for cell in step_cells(step)))
    return table


def about_line(record: CapacityRecord) -> str:
    where = f"{short(record.git.commit)}{' (uncommitted changes)' if record.git.dirty else ''}"
    return (f"search {record.id} of {where}, profile {record.profile.name}: {len(record.steps)} steps of "
            f"{record.profile.run_time:g} s ({record.profile.warmup:g} s warm-up), {record.duration_s / 60:.1f} min")


def capacity_html(record: CapacityRecord) -> str:
    """The search as one self-contained HTML page: latency and achieved rate against the offered rate, the steps."""
    valid = sorted((s for s in record.steps if s.valid), key=lambda s: s.offered)
    markers = [] if record.capacity is None else [(record.capacity, f"capacity {record.capacity:.1f}/s")]
    latency = Chart("Latency against the offered rate (each step)", "offered iterations/s (log)", "ms", log_x=True,
                    x_markers=markers)
    for name, color, field in (("p50", BASE_COLOR, "p50"), ("p95", HEAD_COLOR, "p95"), ("p99", "#7a3db8", "p99")):
        latency.series.append(Series(name, color, [(s.offered, getattr(s, field)) for s in valid
                                                   if getattr(s, field) is not None], dots=True, width=1.0))
    rate = Chart("Achieved against offered rate", "offered iterations/s (log)", "achieved requests/s", log_x=True,
                 x_markers=markers)
    rate.series.append(Series("achieved", BASE_COLOR, [(s.offered, s.achieved) for s in valid], width=1.0))
    rate.series.append(Series("offered", "#999999", [(s.offered, s.offered) for s in valid], dashed=True,
                              dots=False, width=1.0))
    template = html_environment().get_template("capacity.html.j2")
    return template.render(title=f"perfgate capacity · {record.profile.name}", result=result_line(record),
                           about=about_line(record), charts=[render(latency), render(rate)],
                           rows=[step_cells(s) for s in record.steps])


def print_capacity(console: Console, record: CapacityRecord) -> None:
    console.print(steps_table(record))
    console.print(escape(result_line(record)))
    console.print(escape(about_line(record)))


def _side_text(side: CapacitySide) -> str:
    if side.capacity is None:
        return f"{side.label}: no capacity"
    return f"{side.label}: {side.capacity:.1f}/s [{side.low:.1f}, {side.high:.1f}] from {len(side.estimates)} " \
           f"estimate(s) of search(es) {', '.join(str(i) for i in side.searches)}"


def verdict_lines(verdict: CapacityVerdict) -> list[str]:
    """The verdict in plain lines: the headline first."""
    headline = f"{verdict.outcome.value.upper()}: capacity"
    if verdict.change is not None and verdict.ci_low is not None and verdict.ci_high is not None:
        headline += (f" {verdict.change:+.1%} [{verdict.ci_low:+.1%}, {verdict.ci_high:+.1%}] head against base "
                     f"(margin {verdict.margin:.0%}, α {verdict.alpha:g})")
    elif verdict.change is not None:
        headline += f" {verdict.change:+.1%} head against base"
    lines = [headline, *verdict.reasons, _side_text(verdict.head), _side_text(verdict.base),
             "objectives: " + ", ".join(verdict.objectives)]
    return lines


def print_capacity_verdict(console: Console, verdict: CapacityVerdict) -> None:
    for line in verdict_lines(verdict):
        console.print(escape(line))


def capacity_markdown(verdict: CapacityVerdict) -> str:
    lines = verdict_lines(verdict)
    body = [f"### perfgate capacity: {textsafety.markdown_inline(lines[0])}", ""]
    body += [f"- {textsafety.markdown_line(line)}" for line in lines[1:]]
    return "\n".join(body) + "\n"
