"""`perfgate ab --mode duet` end to end: real git repositories with two commits of the demo service, both
versions served at once on 127.0.0.1 from real worktrees, one real Locust run driving both, a real store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psutil
import pytest

from perfgate.demo.walkthrough import make_demo_repo

from conftest import ab_env as _env
from conftest import assert_ab_cleaned_up, break_demo_head, git, run_cli

pytestmark = pytest.mark.slow

SLOW_ENDPOINT = "GET /items"
DUET = ("--mode", "duet", "--warmup", "2s", "--no-confirm")
"""40 users on each side; 8-s runs (6 s measured) give about 1,000 requests a side, 80 on the rarest endpoint,
in 12 blocks of 0.5 s."""




def _assert_cleaned_up(repo: Path, tmp_path: Path) -> None:
    """No worktree, no temporary file, and no process left running in a folder of this test."""
    assert_ab_cleaned_up(repo, tmp_path)
    left = []
    for process in psutil.process_iter(["pid", "cwd"]):
        cwd = process.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(tmp_path) and process.pid != psutil.Process().pid:
            left.append((process.pid, cwd))
    assert left == []


def _runs(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select id, commit_sha, pair_id, purpose, valid from runs order by id")]


def _p50(verdict: dict, endpoint: str) -> dict:
    tests = next(e for e in verdict["endpoints"] if e["endpoint"] == endpoint)["tests"]
    return next(t for t in tests if t["metric"] == "p50")


@pytest.mark.quiet
def test_duet_finds_a_25_percent_slowdown_on_that_endpoint_only(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    # The knob slows the simulated service time; GET /items measures about 1.4 times it under this load, so a
    # knob of 35 % is about +25 % in p50 (the verdict's own estimate is checked below). At +15 % (a knob of 21 %)
    # the test failed in three of seven fresh-clone suite runs: 8-s runs on the shared VM could see 16 % at best
    # after four runs there; how small a change the duet sees is the benchmarks' question, not this test's.
    make_demo_repo(repo, slowdown_pct=35)
    db = tmp_path / "ab.db"
    # Looks at 2 and 4 runs, as a user would plan them: when two runs leave it INCONCLUSIVE, the A/B measures on.
    result = run_cli("ab", "--base", "main", *DUET, "-t", "8s", "--looks", "2,4", "--db", str(db), "--format",
                     "json", cwd=repo, env=_env(tmp_path), timeout=600)
    verdict = json.loads(result.stdout) if result.stdout.strip() else {}
    p50 = _p50(verdict, SLOW_ENDPOINT) if verdict else {}
    assert result.code == 1, f"{verdict.get('headline')}; {SLOW_ENDPOINT} p50: {p50}; {result.stderr}"
    regressed = [e["endpoint"] for e in verdict["endpoints"] if e["verdict"] == "regressed"]
    assert verdict["verdict"] == "regressed" and regressed == [SLOW_ENDPOINT], verdict["headline"]
    assert p50["method"] == "duet" and 0.15 < p50["change"] < 0.4, p50
    pairs = verdict["sequential"]["pairs"]
    assert verdict["sequential"]["mode"] == "duet" and pairs in (2, 4)

    runs = _runs(db)
    main_sha, head_sha = git(repo, "rev-parse", "main"), git(repo, "rev-parse", "HEAD")
    assert [r["purpose"] for r in runs] == ["duet"] * 2 * pairs
    for pair_id in {r["pair_id"] for r in runs}:
        assert sorted(r["commit_sha"] for r in runs if r["pair_id"] == pair_id) == sorted([main_sha, head_sha])
    # The sides swap: base first in the first run, head first in the second.
    assert [r["commit_sha"] for r in runs][::2][:2] == [main_sha, head_sha]
    with sqlite3.connect(db) as conn:
        blocks = [json.loads(b) for (b,) in conn.execute("select blocks from endpoints")]
    assert all(b["s"] > 0 and len(b["blocks"]) >= 8 for b in blocks)
    _assert_cleaned_up(repo, tmp_path)


@pytest.mark.quiet
def test_duet_a_a_is_not_regressed(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo, slowdown_pct=0)
    # One same-moment run: it carries its own replicates, its blocks.
    result = run_cli("ab", "--base", "main", *DUET, "-t", "8s", "--looks", "1", "--db", str(tmp_path / "ab.db"),
                     "--format", "json", cwd=repo, env=_env(tmp_path), timeout=600)
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] in ("unchanged", "inconclusive"), verdict["headline"]
    assert result.code in (0, 3), result.stderr
    p50 = _p50(verdict, SLOW_ENDPOINT)
    # Within the p50 margin: a position bias or a side bound to the wrong service would move it by far more.
    # Alone on the machine: beside the suite's other tests one 8-s run moved it by 5.2 and 5.9 % (two of six
    # fresh-clone runs).
    assert p50["method"] == "duet" and abs(p50["change"]) < 0.05, p50
    _assert_cleaned_up(repo, tmp_path)


def test_duet_head_that_errors_is_broken(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    break_demo_head(repo)
    result = run_cli("ab", "--base", "main", *DUET, "-t", "4s", "--db", str(tmp_path / "ab.db"), "--format", "json",
                     cwd=repo, env=_env(tmp_path), timeout=600)
    assert result.code == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "broken" and "error storm" in verdict["headline"], verdict["headline"]
    assert verdict["sequential"]["stopped"] == "broken" and verdict["sequential"]["looks_taken"] == [1]
    _assert_cleaned_up(repo, tmp_path)
