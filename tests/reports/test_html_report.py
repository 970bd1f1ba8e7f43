"""The HTML report in a real headless Chromium: it renders, draws its charts, logs no error and fetches nothing.

Chromium comes from the distribution (`.ci/run` installs Debian's `chromium` when it is missing);
where it cannot be installed, the browser tests are skipped with that reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.sides import side_from_runs
from perfgate.decide.verdict import EndpointTrend, TrendPoint
from perfgate.records import CheckResult, MetricSeries, ResourceSample, SecondBucket, ServiceMetrics, ServiceUsage
from perfgate.reports.html import findings, render_html

from fakes.synthetic import make_run, synthetic_side

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium; elsewhere install "
                             "chromium to run the browser tests)")
HOSTILE = "GET /a|b <script>alert(1)</script> @everyone"


def _runs(commit: str, seeds: range, scale: float, leak: float = 0.0) -> list:
    runs = []
    for seed in seeds:
        run = make_run(commit=commit, seed=seed, scale=scale)
        endpoints = []
        for e in run.endpoints:
            series = [SecondBucket(t=t, requests=50 + t % 3, failures=t % 5 == 0, p50=19.5 * scale + t * 0.01,
                                   p95=30.1 * scale + (t % 4)) for t in range(20)]
            endpoints.append(e.model_copy(update={"series": series}))
        service = ServiceUsage(
            cpu_mean=12 * scale,
            cpu_max=20,
            rss_mean_mb=60,
            rss_max_mb=60 + leak,
            rss_growth_mb=leak,
            samples=[ResourceSample(t=t, cpu_percent=10 + t % 5 * scale, rss_mb=50 + leak * t / 20) for t in range(21)],
        )
        runs.append(run.model_copy(update={"id": seed, "endpoints": endpoints, "service": service}))
    return runs


def _report(tmp_path: Path) -> tuple[Path, str]:
    base = _runs("b" * 40, range(1, 5), 1.0)
    head = _runs("e" * 40, range(11, 15), 1.4, leak=40.0)
    head_side = side_from_runs("head", head)
    head_side = dataclasses.replace(head_side, info=head_side.info.model_copy(update={"branch": HOSTILE}))
    verdict = compare(side_from_runs("merge-base", base), head_side, CompareConfig())
    now = datetime(2026, 11, 20, tzinfo=UTC)
    trend = EndpointTrend(endpoint=HOSTILE, metric="p50", branch="main", change_points=[4], points=[
        TrendPoint(commit=f"{i:x}" * 40, at=now - timedelta(days=8 - i), value=20.0 * (1.3 if i >= 4 else 1), runs=3)
        for i in range(8)])
    html = render_html(verdict=verdict.model_copy(update={"history": [trend]}), base=base, head=head)
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    return path, html


def test_report_is_self_contained_escaped_and_has_findings(tmp_path: Path) -> None:
    _, html = _report(tmp_path)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "url(" not in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "The p50 of GET /items rose" in html and "failures unchanged." in html
    assert "The service&#39;s RSS grew 40 MB during a run" in html and "a possible leak." in html
    assert html.count("<svg") >= 2 * 3 + 4 + 1  # 3 per endpoint, load and service, history


def test_findings_speak_only_from_the_verdict_and_the_recorded_usage() -> None:
    base, head = _runs("b" * 40, range(1, 4), 1.0), _runs("e" * 40, range(11, 14), 1.0)
    assert findings(None, head, base) == ["The service used 12 % CPU on the base and 12 % on the head "
                                          "(median of the runs' means)."]


def test_every_finding_is_a_whole_sentence() -> None:
    rng = np.random.default_rng(4)
    base = synthetic_side(rng, runs=3, endpoints=3, label="merge-base", run_noise=0.15)
    head = synthetic_side(rng, runs=3, endpoints=3, shift={0: 0.6}, run_noise=0.15)
    failing = [dataclasses.replace(r, checks=[CheckResult(name="stock", passed=False, message="went below zero")])
               for r in head.runs]
    verdict = compare(base, dataclasses.replace(head, runs=failing), CompareConfig(),
                      budgets=[Budget(endpoint="GET /e1", p95=1.0), Budget(endpoint="GET /none", rps=5.0)])
    lines = findings(verdict, [], [])
    assert any("cannot tell a change from noise" in line for line in lines)
    assert any(re.match(r"A budget was exceeded: GET /e1 p95 [0-9.]+ ms > 1 ms\.$", line) for line in lines), lines
    assert any(line.startswith("A correctness check failed: stock") for line in lines)
    for line in lines:
        assert line[0].isupper() and line.endswith("."), line
        assert not line.endswith(("would.", "would")), line


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{page.stem}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={tmp_path / (page.stem + '-net.json')}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120)


BLINK_RESOURCE_LOADER = 101845102
"""Chromium's traffic annotation of requests a page makes (its own background requests carry others)."""


def _requested_urls(net_log: Path) -> set[str]:
    """URLs the page itself requested, from Chromium's net log."""
    events = json.loads(net_log.read_text(errors="replace")).get("events", [])
    return {e["params"]["url"] for e in events
            if e.get("params", {}).get("traffic_annotation") == BLINK_RESOURCE_LOADER and "url" in e["params"]}


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@needs_chromium
def test_the_report_renders_in_chromium_with_its_data_points_no_errors_and_no_fetches(tmp_path: Path) -> None:
    page, _ = _report(tmp_path)
    done = _chromium(tmp_path, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<svg") >= 11 and dom.count('class="pt"') > 500
    assert "possible leak" in dom and "level shift before" in dom
    assert _console_errors(done.stderr) == []
    external = {u for u in _requested_urls(tmp_path / "report-net.json") if not u.startswith(("file:", "data:"))}
    assert external == set()
    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1340,1800", "--hide-scrollbars")
    assert taken.returncode == 0 and shot.stat().st_size > 20_000


@needs_chromium
def test_the_browser_checks_would_see_a_console_error_and_a_fetch(tmp_path: Path) -> None:
    """The control: the same checks do catch what the report must not do."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom from the page")</script></body></html>')
    done = _chromium(tmp_path, page, "--dump-dom")
    assert any("boom from the page" in line for line in _console_errors(done.stderr))
    assert "http://127.0.0.1:9/x.png" in _requested_urls(tmp_path / "bad-net.json")


def test_perfgate_report_writes_the_comparison_or_one_run(git_repo: Path) -> None:
    from perfgate.store import Store

    from conftest import git, run_cli

    db = git_repo / "runs.db"
    base_sha = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-q", "-b", "feature")
    (git_repo / "service.txt").write_text("v2\n")
    git(git_repo, "commit", "-q", "-am", "v2")
    with Store(db) as store:
        for run in _runs(base_sha, range(1, 4), 1.0) + _runs(git(git_repo, "rev-parse", "HEAD"), range(4, 7), 1.3):
            store.save(run.model_copy(update={"id": None}))
    result = run_cli("report", "-o", str(git_repo / "r.html"), "--db", str(db), cwd=git_repo)
    assert result.code == 0, result.stderr
    html = (git_repo / "r.html").read_text()
    assert "regressed" in html and "p50 of GET /items rose" in html and html.count('class="pt"') > 200
    single = run_cli("report", "2", "-o", str(git_repo / "one.html"), "--db", str(db), cwd=git_repo)
    assert single.code == 0, single.stderr
    one = (git_repo / "one.html").read_text()
    assert "perfgate · run 2" in one and "GET /orders" in one
    missing = run_cli("report", "99", "--db", str(db), cwd=git_repo)
    assert missing.code == 2 and "no run 99" in missing.stderr


def test_each_service_metric_series_is_a_chart_of_both_sides_with_its_labels_escaped() -> None:
    base, head = _runs("b" * 40, range(1, 3), 1.0), _runs("e" * 40, range(11, 13), 1.0)

    def with_metrics(run, growth: float):
        series = [MetricSeries(name="process_resident_memory_bytes", kind="gauge",
                               samples=[(float(t), 5e7 + growth * t) for t in range(30)]),
                  MetricSeries(name="app_queries_total", labels={"db": HOSTILE[:200]}, kind="counter",
                               samples=[(float(t), 3.0 * t) for t in range(10)])]
        return run.model_copy(update={"metrics": ServiceMetrics(url="http://127.0.0.1:1/metrics", scrapes=30, failed=0,
                                                                series=series)})
    base = [with_metrics(r, 0) for r in base]
    head = [with_metrics(r, 1e5) for r in head]
    html = render_html(verdict=None, base=base, head=head)
    memory = html.split("Service metric process_resident_memory_bytes</text>", 1)[1].split("</svg>", 1)[0]
    assert memory.count("<circle") == 4 * 30  # two runs a side, every scrape a point
    assert "Service metric app_queries_total{db=" in html and "<script>alert" not in html
