"""Budgets on day one: given with `--budget`, rendered, and judged on stored runs.

The same budgets judged on real load (`perfgate run`, `compare` and `ab` without a baseline) are in
tests/e2e/test_budgets_e2e.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig, parse_budget
from perfgate.decide.budgets import run_budgets
from perfgate.decide.compare import compare
from perfgate.errors import ConfigError
from perfgate.reports.markdown import budget_comparison, render_markdown

from conftest import LOCUSTFILES, git, run_cli
from fakes.synthetic import make_run, synthetic_side

LOAD = ("-f", str(LOCUSTFILES / "demo.py"), "-u", "5", "-r", "5", "-t", "4s", "--warmup", "1s")


# -- the command-line form ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("GET /items*: p95<100ms, failure_rate<1%", Budget(endpoint="GET /items*", p95=100, failure_rate=0.01)),
    ("GET /items*: p95<=100ms", Budget(endpoint="GET /items*", p95=100)),
    ("p(95)<0.2s", Budget(p95=200)),
    ("p50<20, p99<2s", Budget(p50=20, p99=2000)),
    ("rps>20", Budget(rps=20)),
    ("POST /orders: rps>=2.5, failure_rate<0.05", Budget(endpoint="POST /orders", rps=2.5, failure_rate=0.05)),
    ("  *: P95 < 150ms ,  ", Budget(endpoint="*", p95=150)),
])
def test_budget_flag_parses_into_the_config_model(text: str, expected: Budget) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(("text", "wrong"), [
    ("GET /items: p95 100ms", "'p95 100ms' is not a limit"),
    ("GET /items: p95>100ms", "'p95>100ms' points the wrong way"),
    ("GET /items: rps<10", "'rps<10' points the wrong way"),
    ("GET /items: p90<100ms", "unknown metric 'p90'"),
    ("GET /items: p95<fast", "p95 'fast'"),
    ("GET /items: p95<-5ms", "p95 '-5ms': must be greater than 0"),
    ("GET /items: p95<nan", "p95 'nan'"),
    ("GET /items: failure_rate<lots", "failure_rate 'lots'"),
    ("GET /items: rps>many", "rps 'many'"),
    ("GET /items: p95<1ms, p95<2ms", "p95 is limited twice"),
    ("GET /items:", "no limit given"),
    (": p95<100ms", "the endpoint pattern before ':' is empty"),
    ("", "no limit given"),
])
def test_a_bad_budget_flag_names_the_flag_and_the_wrong_part(text: str, wrong: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_budget(text)
    message = str(caught.value)
    assert message.startswith(f"--budget {text!r}: ") and wrong in message
    assert "\n" not in message and "Value error" not in message


def test_a_bad_budget_flag_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("run", *LOAD, "-H", "http://127.0.0.1:9", "--budget", "GET /items: p95>100ms",
                     "--db", str(tmp_path / "r.db"), cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0 and "--budget 'GET /items: p95>100ms'" in result.stderr
    assert "Traceback" not in result.stderr


# -- rendering ------------------------------------------------------------------------------------------

def test_every_budget_has_its_value_and_unit() -> None:
    results = run_budgets(make_run(), [Budget(endpoint="GET /items", p95=1000, failure_rate=0.001, rps=10)])
    assert [(b.metric, b.passed) for b in results] == [("p95", True), ("failure_rate", False), ("rps", True)]
    p95, failures, rps = (budget_comparison(b) for b in results)
    assert p95.endswith(" ms ≤ 1000 ms")
    assert failures == "0.99 % > 0.10 %"
    assert rps == "50.5 req/s ≥ 10.0 req/s"


def test_markdown_shows_passing_budgets_too_failed_first() -> None:
    head = synthetic_side(np.random.default_rng(1), runs=3, endpoints=2)
    failing = compare(None, head, CompareConfig(), budgets=[Budget(endpoint="GET /e*", p50=1000)],
                      command_line_budgets=[Budget(endpoint="GET /e1", p50=1)])
    text = render_markdown(failing)
    assert "**Budgets exceeded** (1 of 3)" in text
    rows = [line for line in text.splitlines() if line.startswith(("| ✓", "| ✗"))]
    assert len(rows) == 3 and rows[0].startswith("| ✗ | GET /e1 | p50 |") and "> 1 ms | --budget |" in rows[0]
    assert all(" ms ≤ 1000 ms | config |" in row for row in rows[1:])

    passing = compare(None, head, CompareConfig(), budgets=[Budget(endpoint="GET /e*", p50=1000)])
    text = render_markdown(passing)
    assert "<details><summary>Budgets: all 2 hold</summary>" in text and "Budgets exceeded" not in text
    assert text.count("| ✓ |") == 2
    assert "no baseline; 2 of 2 budget(s) hold" in passing.headline


# -- the HTML report, refusals, exit codes -----------------------------------------------------------

def test_html_report_lists_every_budget_with_its_value() -> None:
    from perfgate.reports.html import render_html

    head = synthetic_side(np.random.default_rng(2), runs=3, endpoints=2)
    verdict = compare(None, head, CompareConfig(), budgets=[Budget(endpoint="GET /e*", p50=1000)],
                      command_line_budgets=[Budget(endpoint="GET /e0<b>", p50=1)])
    html = render_html(verdict=verdict, base=[], head=[])
    table = html[html.index('<table id="budgets">'):]
    table = table[:table.index("</table>")]
    assert table.count("✓ pass") == 2 and table.count("✗ fail") == 1
    assert table.index("✗ fail") < table.index("✓ pass")
    assert "GET /e0&lt;b&gt;" in table and "no data (limit ≤ 1 ms)" in table and " ms ≤ 1000 ms" in table


def test_ab_without_a_base_nor_budgets_still_asks_for_one(tmp_path: Path) -> None:
    from perfgate.demo.walkthrough import make_demo_repo

    repo = tmp_path / "shop"
    make_demo_repo(repo, slowdown_pct=0)
    git(repo, "checkout", "-q", "--orphan", "fresh-start")
    git(repo, "commit", "-q", "-m", "a history of its own")
    result = run_cli("ab", "--db", str(tmp_path / "ab.db"), cwd=repo)
    assert result.code == 2 and "no merge-base with 'main'" in result.stderr


def test_markdown_lists_every_failed_budget_but_caps_the_passing_ones() -> None:
    from perfgate.reports.markdown import PASSING_BUDGET_ROWS

    head = synthetic_side(np.random.default_rng(3), runs=3, endpoints=40)
    verdict = compare(None, head, CompareConfig(), budgets=[Budget(p50=1000), Budget(endpoint="GET /e3", p50=1)])
    text = render_markdown(verdict)
    assert text.count("| ✗ |") == 1 and text.count("| ✓ |") == PASSING_BUDGET_ROWS
    assert f"… and {40 - PASSING_BUDGET_ROWS} more budget(s) that hold" in text


def test_a_failed_budget_fails_a_run_even_an_invalid_one() -> None:
    from perfgate.decide.budgets import run_exit_code as exit_code
    from perfgate.errors import ExitCode

    valid = make_run()
    invalid = valid.model_copy(update={"valid": False, "invalid_reasons": ["too few requests"]})
    holds, fails = (run_budgets(valid, [Budget(p95=limit)]) for limit in (10_000, 0.001))
    assert exit_code(valid, holds) is ExitCode.OK and exit_code(valid, fails) is ExitCode.REGRESSION
    assert exit_code(invalid, holds) is ExitCode.UNDECIDED and exit_code(invalid, fails) is ExitCode.REGRESSION
