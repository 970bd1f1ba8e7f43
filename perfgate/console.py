"""Terminal rendering: the live progress display and the tables of runs.

Nothing here computes a statistic; it only shows records it is given.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from perfgate.models import RunRecord
from perfgate.runner import Progress, ProgressCallback

PLAIN_PROGRESS_EVERY_S = 5.0


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


def print_run(console: Console, run: RunRecord) -> None:
    console.print(run_summary(run))
    for reason in run.invalid_reasons:
        console.print(f"[bold red]invalid:[/] {escape(reason)}")
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


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(title_justify="left")
    for column, justify in (("id", "right"), ("started (UTC)", "left"), ("commit", "left"), ("branch", "left"),
                            ("profile", "left"), ("requests", "right"), ("rps", "right"), ("fail %", "right"),
                            ("valid", "left")):
        table.add_column(column, justify=justify)
    for run in runs:
        commit = (run.git.commit or "-")[:10] + ("*" if run.git.dirty else "")
        fail = 100 * run.total_failures / run.total_requests if run.total_requests else 0.0
        table.add_row(str(run.id), run.started_at.strftime("%Y-%m-%d %H:%M:%S"), commit,
                      escape(run.git.branch or "-"), escape(run.profile.name), str(run.total_requests),
                      f"{run.achieved_rps:.1f}", f"{fail:.2f}", "yes" if run.valid else "NO")
    return table
