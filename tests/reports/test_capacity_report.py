"""The capacity report: its charts hold every valid step, and outside text (objectives, endpoint names) is escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from perfgate.capacity.judge import judge_capacity
from perfgate.config import ResolvedProfile
from perfgate.records import CapacityRecord, CapacityStep, GitInfo
from perfgate.reports.capacity import capacity_html, capacity_markdown, verdict_lines

from fakes.synthetic import ENVIRONMENT

HOSTILE = "GET /a|b <script>alert(1)</script> @everyone"


def _record(commit: str, scale: float) -> CapacityRecord:
    steps = [CapacityStep(offered=r * scale, achieved=min(r, 80) * scale, requests=100, failures=0, p50=20, p95=30,
                          p99=40 + r, repeat=0, broken=[] if r < 80 else [f"p95<60ms: {HOSTILE} p95 90.0 ms"])
             for r in (20, 30, 45, 67.5, 101.25)]
    steps.append(CapacityStep(offered=70, achieved=0, requests=0, failures=0, valid=False,
                              invalid_reasons=["the load generator fell behind its schedule: ..."]))
    return CapacityRecord(
        started_at=datetime(2026, 12, 1, tzinfo=UTC), duration_s=60,
        profile=ResolvedProfile(name="smoke", locustfile="/x/lf.py", host="http://127.0.0.1:1", users=1,
                                spawn_rate=1, run_time=3, warmup=1),
        git=GitInfo(commit=commit, branch="main", dirty=False), environment=ENVIRONMENT,
        objectives=[f"{HOSTILE}: p95<60ms"], capacity=78.0 * scale, low=75.0 * scale, high=81.0 * scale,
        repeats=[77.0 * scale, 79.0 * scale], brackets=[(75.0 * scale, 79.0 * scale), (77.0 * scale, 81.0 * scale)],
        first_broken=f"p95<60ms: {HOSTILE} p95 90.0 ms", steps=steps)


def test_the_html_report_charts_every_valid_step_and_escapes_outside_text() -> None:
    html = capacity_html(_record("b" * 40, 1.0))
    latency = html.split("Latency against the offered rate (each step)</text>", 1)[1].split("</svg>", 1)[0]
    assert latency.count("<circle") == 3 * 5  # p50, p95, p99 of the five valid steps; the invalid one left out
    assert "capacity 78.0/s" in latency  # the capacity's marker
    assert html.count("<tr>") == 1 + 6  # the header and every step, the invalid one too
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_verdict_reads_the_same_in_every_medium_and_markdown_is_inert() -> None:
    verdict = judge_capacity([_record("b" * 40, 1.0)], [_record("c" * 40, 0.7)])
    lines = verdict_lines(verdict)
    assert lines[0].startswith("REGRESSED: capacity -30.0% [")
    markdown = capacity_markdown(verdict)
    assert "<script>" not in markdown and "@everyone" not in markdown and "\\|" in markdown
