"""One verdict through the terminal, the Markdown comment and the HTML report: each says the same provenance and
the same failure lines, in the same words and number formats.

The facts are written out here, not taken from the module that builds them: a renderer that drifts (another
side's environment, another margin format, a baseline-change kind it does not know) fails this test.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from rich.console import Console

from perfgate.config import Budget, CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.verdict import (
    BaselineChange,
    CheckSummary,
    FailureKind,
    GateInputChange,
    Outcome,
    Sequential,
    Verdict,
)
from perfgate.environment import EnvironmentFingerprint
from perfgate.reports.console import print_verdict
from perfgate.reports.html import render_html
from perfgate.reports.markdown import render_markdown

from fakes.synthetic import synthetic_side

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEAD_ENV = EnvironmentFingerprint(cpu_model="Head CPU", cores=4, os="Linux 6.1", python="3.12.1", locust="2.47.0",
                                  perfgate="0.4.0")
BASE_ENV = HEAD_ENV.model_copy(update={"cpu_model": "Base CPU", "perfgate": "0.3.9"})


def _verdict() -> Verdict:
    rng = np.random.default_rng(11)
    base = synthetic_side(rng, runs=5, endpoints=3, label="merge-base")
    head = synthetic_side(rng, runs=4, endpoints=3, shift={1: 0.4})
    verdict = compare(base, head, CompareConfig(), budgets=[Budget(endpoint="GET /none*", p95=100.0)])
    assert verdict.base is not None and verdict.outcome is Outcome.REGRESSED
    first = verdict.endpoints[0]
    endpoints = [first.model_copy(update={"reasons": ["too few requests for p99"],
                                          "top_failures": [FailureKind(kind="503 Service Unavailable", count=41),
                                                           FailureKind(kind="ConnectionResetError", count=3)]}),
                 *verdict.endpoints[1:]]
    settings = verdict.settings.model_copy(update={
        "margins": {"p50": 0.025, "p95": 0.1, "p99": 0.1, "failure_rate": 0.005, "throughput": 0.1},
        "endpoint_margins": {"GET /e2": {"p50": 0.075}}})
    return verdict.model_copy(update={
        "created_at": NOW, "endpoints": endpoints, "settings": settings, "notes": ["the pinned file expired"],
        "reasons": ["a reason the headline does not give"],
        "head": verdict.head.model_copy(update={
            "label": "ab head", "commit": "1234567890abcdef", "branch": "feature/x", "newest_run_at": NOW,
            "environment": HEAD_ENV, "run_ids": [11, 12, 13, 14]}),
        "base": verdict.base.model_copy(update={
            "label": "pinned baseline", "commit": "abcdefabcdef", "branch": "main", "dirty": True,
            "invalid_runs": 1, "newest_run_at": NOW - timedelta(days=3), "environment": BASE_ENV,
            "baseline_file": "baselines/smoke.json", "accepted_by": "Ada", "reason": "faster cache"}),
        "sequential": Sequential(pairs=6, planned_looks=[3, 6, 10], looks_taken=[3, 6], alpha=0.05,
                                 alpha_spent=[0.0045, 0.0135], stopped="regressed", invalid_pairs=0,
                                 dropped_pairs=0, elapsed_s=150.0),
        "checks": [CheckSummary(name="no overselling", passed=False, failures=2, runs=4,
                                message="stock went below zero")],
        "baseline_changes": [
            BaselineChange(file="baselines/smoke.json", profile="smoke", kind="accepted", accepted_by="Ada",
                           accepted_at=NOW, reason="faster cache"),
            BaselineChange(file="baselines/api.json", profile="api", kind="expected", reason="first expectations"),
            BaselineChange(file="baselines/broken.json", profile="broken", kind="unreadable", reason="not JSON")],
        "gate_changes": [
            GateInputChange(path="perfgate.toml", kind="modified", what="config", detail="compare.margins.p50"),
            GateInputChange(path="load/new.py", kind="renamed", what="locustfile", renamed_from="load/old.py")],
    })


FACTS = [
    "head: ab head 1234567890 on feature/x, 4 run(s), just recorded, run ids 11, 12, 13, 14",
    "baseline: pinned baseline abcdefabcd on main (uncommitted changes), 5 run(s) (1 invalid), 3 days old, "
    "pinned in baselines/smoke.json, accepted by Ada: faster cache",
    "profile smoke: run_time 15 s, spawn_rate 5 users/s, users 5",
    "same-job A/B: 6 pair(s) in balanced order, judged at 3, 6 of the planned 3, 6, 10; stopped because a "
    "regression was found; α 0.05 spent as 0.0045 + 0.0135; 2.5 min",
    "α = 0.05 over 9 tests (Holm), 90 % intervals; margins: failure_rate 0.5 pp, p50 2.5 %, p95 10 %, p99 10 %, "
    "throughput 10 %",
    "margins of GET /e2: p50 7.5 %",
    "smallest change these runs can call a regression (80 % power): p50",
    "head environment: Head CPU, 4 cores, Linux 6.1, Python 3.12.1, Locust 2.47.0, perfgate 0.4.0",
    "baseline environment: Base CPU, 4 cores, Linux 6.1, Python 3.12.1, Locust 2.47.0, perfgate 0.3.9",
    "This change accepts a new baseline in baselines/smoke.json (profile smoke), accepted by Ada on 2026-11-20: "
    "faster cache. Approving this pull request approves the new baseline.",
    "This change sets expectations in baselines/api.json (profile api): first expectations. "
    "Approving this pull request approves the expectations.",
    "This change changes a baseline file that cannot be read in baselines/broken.json (profile broken): not JSON. "
    "Approving this pull request approves the change to it.",
    "This change edits the gate's own inputs (against the merge-base with the main branch); approving it approves "
    "them too:",
    "config perfgate.toml modified: compare.margins.p50",
    "locustfile load/new.py renamed from load/old.py",
]
FAILURE_FACTS = [
    "Correctness check failed: no overselling (2 of 4 runs): stock went below zero",
    "too few requests for p99",
    "failures rose; most frequent: 503 Service Unavailable ×41, ConnectionResetError ×3",
    "a reason the headline does not give",
    "Note: the pinned file expired",
]


def _flat(text: str) -> str:
    return " ".join(text.split())


def terminal(verdict: Verdict) -> str:
    out = StringIO()
    print_verdict(Console(file=out, width=400, color_system=None, force_terminal=False), verdict)
    return _flat(out.getvalue())


def markdown(verdict: Verdict) -> str:
    text = render_markdown(verdict).replace("`", "").replace("**", "")
    return _flat(html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)).replace("\u200b", ""))


def html_text(verdict: Verdict) -> str:
    page = render_html(verdict=verdict, base=[], head=[])
    return _flat(html.unescape(re.sub(r"<[^>]*>", "", page[page.index("<body>"):])))


RENDERERS = {"terminal": terminal, "markdown": markdown, "html": html_text}


@pytest.mark.parametrize("medium", RENDERERS)
def test_every_report_gives_the_same_provenance_and_failure_lines(medium: str) -> None:
    verdict = _verdict()
    (budget,) = verdict.budgets
    assert not budget.passed and budget.note.startswith("matches no endpoint of the head")
    facts = [*FACTS, *FAILURE_FACTS, f"GET /none*: {budget.note}"]
    text = RENDERERS[medium](verdict)
    missing = [fact for fact in facts if _flat(fact) not in text]
    assert missing == [], f"{medium} lacks: {missing}"


def test_the_environment_is_said_once_when_both_sides_share_it() -> None:
    verdict = _verdict()
    assert verdict.base is not None
    same = verdict.model_copy(update={"base": verdict.base.model_copy(update={"environment": HEAD_ENV})})
    line = "environment (both sides): Head CPU, 4 cores, Linux 6.1, Python 3.12.1, Locust 2.47.0, perfgate 0.4.0"
    for medium, render in RENDERERS.items():
        text = render(same)
        assert line in text and "head environment" not in text and "baseline environment" not in text, medium


def _budgets_only(limit: float) -> Verdict:
    head = synthetic_side(np.random.default_rng(3), runs=3, endpoints=2)
    verdict = compare(None, head, CompareConfig(), budgets=[Budget(endpoint="GET /e*", p50=limit)])
    return verdict.model_copy(update={"created_at": NOW})


@pytest.mark.parametrize("medium", RENDERERS)
def test_a_verdict_on_budgets_alone_is_titled_by_its_budgets_not_unchanged(medium: str) -> None:
    holding = _budgets_only(1000.0)
    assert holding.outcome is Outcome.UNCHANGED and holding.base is None and holding.budgets_passed
    assert holding.headline.startswith("UNCHANGED: no baseline")  # what the verdict says, and the reports do not
    text = RENDERERS[medium](holding)
    assert "BUDGETS HOLD (no baseline): 2 of 2 budget(s) hold" in text and "UNCHANGED" not in text
    exceeded = _budgets_only(1.0)
    assert exceeded.outcome is Outcome.UNCHANGED and not exceeded.budgets_passed
    text = RENDERERS[medium](exceeded)
    assert "BUDGETS EXCEEDED (no baseline): 0 of 2 budget(s) hold; 2 budget(s) exceeded" in text
    assert "UNCHANGED" not in text


def test_the_markdown_and_html_titles_carry_the_budgets_phrase() -> None:
    holding = _budgets_only(1000.0)
    assert render_markdown(holding).splitlines()[1] == "### ✅ perfgate · smoke · BUDGETS HOLD (no baseline)"
    exceeded = render_markdown(_budgets_only(1.0)).splitlines()[1]
    assert exceeded == "### 🔴 perfgate · smoke · BUDGETS EXCEEDED (no baseline)"
    page = render_html(verdict=holding, base=[], head=[])
    assert "<title>perfgate · smoke · budgets hold (no baseline)</title>" in page
    assert "Every budget holds; there was no baseline to compare the endpoints with." in page
