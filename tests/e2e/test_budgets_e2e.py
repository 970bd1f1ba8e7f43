"""Budgets judged on real load: `perfgate run` on the demo service, `compare` without a baseline, `ab` without
a base."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import LOCUSTFILES, git, run_cli

LOAD = ("-f", str(LOCUSTFILES / "demo.py"), "-u", "5", "-r", "5", "-t", "4s", "--warmup", "1s")


def test_run_fails_on_a_budget_and_passes_with_check_marks(git_repo: Path, demo_service) -> None:
    db = str(git_repo.parent / "runs.db")
    (git_repo / "perfgate.toml").write_text(textwrap.dedent("""
        [[budgets]]
        endpoint = "GET /items*"
        p95 = "10s"
        failure_rate = "5%"
    """))
    git(git_repo, "add", "perfgate.toml")
    git(git_repo, "commit", "-q", "-m", "budgets")
    failing = run_cli("run", *LOAD, "-H", demo_service.host, "--db", db,
                      "--budget", "GET /items*: p95<0.001ms", "--budget", "GET /nothing*: p95<1s", cwd=git_repo)
    assert failing.code == 1, failing.stderr
    lines = failing.stdout.splitlines()
    assert any(line.startswith("✗ GET /items p95 ") and "ms > 0.001 ms (--budget)" in line for line in lines)
    assert any(line.startswith("✗ GET /nothing* p95 no data") and "matches no endpoint" in line for line in lines)
    assert any(line.startswith("✓ GET /items p95 ") for line in lines)  # the config's, judged alongside

    passing = run_cli("run", *LOAD, "-H", demo_service.host, "--db", db, "--format", "json", cwd=git_repo)
    assert passing.code == 0, passing.stderr
    data = json.loads(passing.stdout)
    assert data["valid"] and {b["metric"] for b in data["budgets"]} == {"p95", "failure_rate"}
    assert all(b["passed"] and b["source"] == "config" for b in data["budgets"])
    text = run_cli("run", *LOAD, "-H", demo_service.host, "--db", db, cwd=git_repo)
    assert text.code == 0, text.stderr
    assert "✓ GET /items p95 " in text.stdout and "ms ≤ 10000 ms" in text.stdout
    assert "✓ GET /items failure_rate " in text.stdout and "% ≤ 5.00 %" in text.stdout

    # compare without a baseline judges the budgets alone: 0 when they hold, 1 when one fails.
    alone = run_cli("compare", "--db", db, cwd=git_repo)
    assert alone.code == 0, alone.stdout + alone.stderr
    assert "no baseline: only the budgets are judged" in alone.stdout and "✓ GET /items p95" in alone.stdout
    failed = run_cli("compare", "--db", db, "--budget", "GET /items: p50<0.001ms", "--format", "markdown",
                     cwd=git_repo)
    assert failed.code == 1, failed.stdout + failed.stderr
    assert "**Budgets exceeded** (1 of " in failed.stdout and "| ✓ | GET /items | p95 |" in failed.stdout


def test_compare_without_baseline_nor_budgets_still_asks_for_a_baseline(git_repo: Path, demo_service) -> None:
    db = str(git_repo.parent / "runs.db")
    assert run_cli("run", *LOAD, "-H", demo_service.host, "--db", db, cwd=git_repo).code == 0
    result = run_cli("compare", "--db", db, cwd=git_repo)
    assert result.code == 2 and "no baseline for profile" in result.stderr


def test_ab_without_a_base_judges_the_budgets_alone(tmp_path: Path) -> None:
    from perfgate.demo.walkthrough import make_demo_repo

    repo = tmp_path / "shop"
    make_demo_repo(repo, slowdown_pct=0)
    git(repo, "checkout", "-q", "--orphan", "fresh-start")
    git(repo, "commit", "-q", "-m", "a history of its own: no merge-base with main")
    db = str(tmp_path / "ab.db")
    temp = tmp_path / "tmp"
    temp.mkdir()
    args = ("ab", "-t", "4s", "--warmup", "1s", "--looks", "2", "--db", db)
    failing = run_cli(*args, "--budget", "GET /items: p95<0.001ms", cwd=repo, env={"TMPDIR": str(temp)},
                      timeout=600)
    assert failing.code == 1, failing.stderr
    assert "no baseline: only the budgets are judged" in failing.stdout
    assert "✗ GET /items p95 " in failing.stdout and "ms > 0.001 ms (--budget)" in failing.stdout
    passing = run_cli(*args, "--budget", "GET /items: p95<10s", "--format", "json", cwd=repo,
                      env={"TMPDIR": str(temp)}, timeout=600)
    assert passing.code == 0, passing.stderr
    verdict = json.loads(passing.stdout)
    assert verdict["base"] is None and verdict["head"]["runs"] == 2
    assert [b["passed"] for b in verdict["budgets"]] == [True]
    assert list(temp.iterdir()) == []  # the head's worktree is gone
