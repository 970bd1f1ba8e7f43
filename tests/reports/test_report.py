"""Rendering the verdict for people: escaping of user-controlled text, the Markdown's shape, golden files
for each kind of verdict, and the size cap of a GitHub comment.

The golden files in tests/reports/golden/ are regenerated with::

    PERFGATE_UPDATE_GOLDEN=1 uv run pytest tests/reports/test_report.py
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.sides import RunValues
from perfgate.decide.verdict import Confirmation, EndpointTrend, Sequential, SideInfo, TrendPoint, Verdict
from perfgate.errors import UsageError
from perfgate.records import CheckResult, EndpointStats
from perfgate.reports.markdown import MAX_COMMENT_CHARS, CommentLinks, escape_markdown, marker, render_markdown

from fakes.synthetic import ENVIRONMENT, synthetic_side

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOSTILE = "GET /a|b `x` <script>alert(1)</script> @everyone"


def test_hostile_names_cannot_break_a_table_or_ping_anyone() -> None:
    text = escape_markdown("GET /a|b `x` <script>alert(1)</script> @everyone *bold* [link](http://x)\nnext")
    assert "|" not in text.replace("\\|", "")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "@everyone" not in text and "@&#x200B;everyone" in text and "\u200b" not in text
    assert "\\`x\\`" in text and "\\*bold\\*" in text and "\\[link\\]" in text
    assert "\n" not in text


def _stamp(verdict: Verdict) -> Verdict:
    """Fixed times, so that the rendering is the same on every day."""
    base = verdict.base.model_copy(update={"newest_run_at": NOW - timedelta(days=2), "branch": "main"}) \
        if verdict.base else None
    head = verdict.head.model_copy(update={"newest_run_at": NOW, "branch": "feature/faster-orders",
                                           "environment": ENVIRONMENT})
    return verdict.model_copy(update={"created_at": NOW, "base": base, "head": head})


def _sides(seed: int, *, runs: int = 5, shift: dict[int, float] | None = None, noise: float = 0.03,
           endpoints: int = 3) -> tuple:
    rng = np.random.default_rng(seed)
    base = synthetic_side(rng, runs=runs, endpoints=endpoints, label="merge-base", run_noise=noise)
    head = synthetic_side(rng, runs=runs, endpoints=endpoints, shift=shift, run_noise=noise)
    return base, head


def golden_verdicts() -> dict[str, Verdict]:
    config = CompareConfig()
    verdicts = {
        "regressed": compare(*_sides(1, shift={1: 0.3}), config),
        "improved": compare(*_sides(2, runs=8, shift={0: -0.3, 1: -0.3, 2: -0.3}, noise=0.01), config),
        "unchanged": compare(*_sides(3, runs=10, noise=0.005), config),
        "inconclusive": compare(*_sides(4, runs=3, noise=0.15), config),
    }
    base, head = _sides(5)
    verdicts["invalid"] = compare(dataclasses.replace(base, load_parameters={"users": 50}), head, config)
    base, head = _sides(6)
    failing = [dataclasses.replace(r, checks=[CheckResult(name="no overselling", passed=False,
                                                          message="stock went below zero: -1")])
               for r in head.runs]
    verdicts["budget-and-check-failed"] = compare(base, dataclasses.replace(head, runs=failing), config,
                                                  budgets=[Budget(endpoint="GET /e1", p95=20.0),
                                                           Budget(endpoint="GET /e0", p95=50.0)])
    pair_ids = [f"s-a{i}" for i in range(6)]
    rng = np.random.default_rng(7)
    base = synthetic_side(rng, runs=6, endpoints=3, label="ab base", pair_ids=pair_ids)
    head = synthetic_side(rng, runs=6, endpoints=3, label="ab head", pair_ids=pair_ids, shift={2: 0.25})
    ab = compare(base, head, config.model_copy(update={"alpha": 0.0135}))
    verdicts["ab-regressed"] = ab.model_copy(update={"sequential": Sequential(
        pairs=6, planned_looks=[3, 6, 10], looks_taken=[3, 6], alpha=0.05, alpha_spent=[0.0045, 0.0135],
        stopped="regressed", invalid_pairs=1, dropped_pairs=0, elapsed_s=151.0,
        confirmation=Confirmation(pairs=5, tests=["GET /e2 p50"], confirmed=["GET /e2 p50"]))})
    verdicts["regressed"] = verdicts["regressed"].model_copy(update={"history": [EndpointTrend(
        endpoint="GET /e1", metric="p50", branch="main",
        points=[TrendPoint(commit=f"{i:x}" * 40, at=NOW - timedelta(days=5 - i), value=11.0 + 0.1 * i, runs=3)
                for i in range(5)])]})
    return {kind: _stamp(v) for kind, v in verdicts.items()}


@pytest.mark.parametrize("kind", ["regressed", "improved", "unchanged", "inconclusive", "invalid",
                                  "budget-and-check-failed", "ab-regressed"])
def test_markdown_of_each_kind_of_verdict_matches_its_golden_file(kind: str) -> None:
    verdict = golden_verdicts()[kind]
    expected_kind = {"budget-and-check-failed": None, "ab-regressed": "regressed"}.get(kind, kind)
    if expected_kind:
        assert verdict.outcome.value == expected_kind
    rendered = render_markdown(verdict)
    path = GOLDEN / f"verdict-{kind}.md"
    if os.environ.get("PERFGATE_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: regenerate with PERFGATE_UPDATE_GOLDEN=1 uv run pytest {__file__}"
    assert rendered == path.read_text(encoding="utf-8"), (
        f"{path.name} differs; if the change is intended: "
        "PERFGATE_UPDATE_GOLDEN=1 uv run pytest tests/reports/test_report.py"
    )


def test_markdown_has_the_marker_a_row_per_endpoint_worst_first_and_the_provenance() -> None:
    markdown = render_markdown(golden_verdicts()["regressed"], marker_id="api gate")
    lines = markdown.splitlines()
    assert lines[0] == "<!-- perfgate:verdict profile=smoke id=api_gate -->"
    assert lines[1].startswith("### 🔴") and "REGRESSED" in lines[1]
    rows = [line for line in lines if line.startswith("| GET /e")]
    assert len(rows) == 3 and rows[0].startswith("| GET /e1 | 🔴 regressed |")
    assert "- baseline: merge-base `cccccccccc` on main, 5 run(s), 2 days old" in markdown
    assert "over 9 tests (Holm)" in markdown and "smallest change these runs can call a regression" in markdown
    assert "```mermaid\nxychart-beta" in markdown and "line [11.00, 11.10, 11.20, 11.30, 11.40]" in markdown
    assert "Mann-Whitney U" not in markdown  # synthetic sides carry no samples: no evidence section


def _hostile_verdict(endpoints: int) -> Verdict:
    base, head = _sides(8, endpoints=endpoints, shift={0: 0.4})

    def rename(side):  # noqa: ANN001, ANN202
        runs = []
        for run in side.runs:
            stats = {}
            for i, (_key, s) in enumerate(run.endpoints.items()):
                name = f"/a|b `x` <script>alert({i})</script> @everyone " + "segment/" * 12 + str(i)
                stats[f"GET {name}"] = EndpointStats(**{**s.model_dump(), "name": name})
            runs.append(RunValues(run.run_id, run.pair_id, True, [], stats))
        return dataclasses.replace(side, runs=runs, info=side.info.model_copy(
            update={"branch": "feat/|`<img src=x onerror=alert(1)>` @org/team"}))

    return _stamp(compare(rename(base), rename(head), CompareConfig()))


def test_hostile_endpoint_and_branch_names_are_escaped_in_the_rendered_verdict() -> None:
    markdown = render_markdown(_hostile_verdict(3))
    assert "<script>" not in markdown and "<img" not in markdown
    assert "@everyone" not in markdown and "@org/team" not in markdown
    for row in (line for line in markdown.splitlines() if line.startswith("| GET ")):
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 10, row  # 8 columns between 9 unescaped pipes, plus the empty ends


def test_a_400_endpoint_verdict_stays_under_the_cap_with_the_marker_and_the_worst_rows() -> None:
    verdict = _hostile_verdict(400)
    markdown = render_markdown(verdict, full_report="the HTML report in the run's artifacts")
    assert len(markdown.encode("utf-16-le")) // 2 <= MAX_COMMENT_CHARS
    assert markdown.startswith(marker("smoke") + "\n")
    assert "Cut to stay under GitHub's 65,536-character limit" in markdown
    assert "The full report: the HTML report in the run" in markdown
    assert "table row(s)" in markdown and "more endpoint(s)" in markdown
    first_row = next(line for line in markdown.splitlines() if line.startswith("| GET "))
    assert "🔴 regressed" in first_row  # the worst endpoint is never the one cut


def test_a_small_cap_drops_whole_sections_least_important_first() -> None:
    history_first = golden_verdicts()["regressed"]
    full = render_markdown(history_first)
    assert "History of p50" in full and "How this was decided" in full
    without_history = render_markdown(history_first, limit=len(full) - 1)
    assert "History of p50" not in without_history and "How this was decided" in without_history
    assert "the history charts" in without_history
    verdict = golden_verdicts()["ab-regressed"]
    tight = render_markdown(verdict, limit=1100)
    assert len(tight.encode("utf-16-le")) // 2 <= 1100
    assert tight.startswith(marker("smoke")) and "How this was decided" not in tight
    assert "| GET /e2 | 🔴 regressed |" in tight
    for limit in (400, 120, 60):  # down to less than the marker and the notice: never over, never stuck
        tiny = render_markdown(verdict, limit=limit)
        assert len(tiny.encode("utf-16-le")) // 2 <= max(limit, len(marker("smoke")) + 2)
        assert tiny.startswith(marker("smoke"))


def test_mermaid_titles_cannot_close_their_string_or_code_block() -> None:
    verdict = golden_verdicts()["regressed"]
    trend = verdict.history[0].model_copy(update={"endpoint": 'GET /x"]\n```\n@everyone'})
    markdown = render_markdown(verdict.model_copy(update={"history": [trend]}))
    title = next(line for line in markdown.splitlines() if line.strip().startswith("title "))
    assert title.strip().startswith('title "GET /x') and title.count('"') == 2 and "`" not in title
    assert "\n@everyone" not in markdown and markdown.count("```mermaid") == markdown.count("\n```\n")


def test_side_info_is_rendered_from_the_verdict_only() -> None:
    verdict = golden_verdicts()["regressed"]
    other = verdict.model_copy(update={"base": SideInfo(label="pinned baseline", commit="d" * 40, runs=4,
                                                        accepted_by="Ada <ada@example.org>", reason="faster cache")})
    markdown = render_markdown(other)
    assert "pinned baseline `dddddddddd`" in markdown and "accepted by Ada &lt;ada@&#x200B;example.org&gt;" in markdown


def test_the_top_of_the_comment_counts_endpoints_and_names_both_commits() -> None:
    verdict = golden_verdicts()["regressed"]
    base = verdict.base.model_copy(update={"commit": "a" * 40})
    head = verdict.head.model_copy(update={"commit": "b" * 40})
    lines = render_markdown(verdict.model_copy(update={"base": base, "head": head})).splitlines()
    top = "\n".join(lines[:8])
    assert "**1 regressed · 1 inconclusive · 1 unchanged**" in top
    assert "base `aaaaaaa` → head `bbbbbbb`" in top


def test_changed_endpoints_come_first_and_unchanged_ones_are_folded() -> None:
    markdown = render_markdown(golden_verdicts()["regressed"])
    fold = markdown.index("<details><summary>1 unchanged endpoint(s)</summary>")
    assert markdown.index("| GET /e1 | 🔴 regressed") < markdown.index("| GET /e2 | 🟡 inconclusive") < fold
    assert fold < markdown.index("| GET /e0 | ✅ unchanged") < markdown.index("</details>", fold)


def test_the_comment_links_to_the_run_and_the_report_when_given() -> None:
    run = "https://github.com/octo/shop/actions/runs/42"
    markdown = render_markdown(golden_verdicts()["regressed"],
                               links=CommentLinks.for_run(run, with_report=True))
    assert f"[workflow run]({run})" in markdown and f"[full report]({run}#artifacts)" in markdown
    assert "workflow run" not in render_markdown(golden_verdicts()["regressed"])


@pytest.mark.parametrize("url", ["http://github.com/o/r/actions/runs/1", "javascript:alert(1)",
                                 "https://x.test/a) [click](https://evil.test", "https://x.test/<img>",
                                 "https://x.test/ @everyone", "https://x.test/" + "a" * 500, ""])
def test_a_link_that_is_not_a_plain_https_url_is_refused(url: str) -> None:
    with pytest.raises(UsageError, match="https URL"):
        CommentLinks(run=url)
    with pytest.raises(UsageError, match="https URL"):
        CommentLinks(report=url)


def test_an_invalid_verdict_says_each_reason_once_and_never_none() -> None:
    verdict = golden_verdicts()["invalid"]
    markdown = render_markdown(verdict)
    reason = escape_markdown(verdict.reasons[0])
    assert markdown.count(reason) == 1
    assert "None" not in markdown and "run\\_time unset vs 15 s" in markdown


def test_budget_figures_carry_their_units() -> None:
    markdown = render_markdown(golden_verdicts()["budget-and-check-failed"])
    assert re.search(r"\| ✗ \| GET /e1 \| p95 \| [0-9.]+ ms > 20 ms \| config \|", markdown)
    assert "run\\_time 15 s, spawn\\_rate 5 users/s, users 5" in markdown
