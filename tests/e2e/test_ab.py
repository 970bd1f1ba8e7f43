"""`perfgate ab` end to end: real git repositories with two commits of the demo service, real worktrees,
real Locust runs against each version served fresh on 127.0.0.1, a real SQLite store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfgate.demo.walkthrough import make_demo_repo

from conftest import ab_env as _env
from conftest import assert_ab_cleaned_up as _assert_cleaned_up
from conftest import git, run_cli

pytestmark = pytest.mark.slow

SLOW_ENDPOINT = "GET /items"
SHORT = ("-t", "5s", "--warmup", "1s")
"""Each run: 4 s measured of the demo profile (40 users, all up within the first second): about 800 requests,
60 on the rarest endpoint. The A/A of `ab` on real load is in test_ab_state.py, on a service with state."""






def _runs(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select id, commit_sha, pair_id, purpose, valid from runs order by id")]


@pytest.mark.quiet
def test_regression_on_one_endpoint_is_found_there_only(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    # GET /items: p50 38.7 → 97.9 ms (+153 %) in one 40-user run of the demo profile, so that the first look at
    # three pairs always sees it; the smallest change each look can see is calibrate's business, not this test's.
    make_demo_repo(repo, slowdown_pct=200)
    db = tmp_path / "ab.db"
    # Confirmation pairs are judged on synthetic runs (tests/ab/, tests/baselines/): here, no confirmation.
    # The alternate mode on purpose (the duet, the default, has its own tests in test_ab_duet.py).
    result = run_cli("ab", "--base", "main", "--mode", "alternate", *SHORT, "--looks", "3", "--no-confirm",
                     "--db", str(db), "--format", "json", cwd=repo, env=_env(tmp_path), timeout=900)
    assert result.code == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "regressed"
    regressed = [e["endpoint"] for e in verdict["endpoints"] if e["verdict"] == "regressed"]
    assert regressed == [SLOW_ENDPOINT], verdict["headline"]
    items = next(e for e in verdict["endpoints"] if e["endpoint"] == SLOW_ENDPOINT)
    p50 = next(t for t in items["tests"] if t["metric"] == "p50")
    assert p50["method"] == "paired" and 0.7 < p50["change"] < 2.5, p50
    seq = verdict["sequential"]
    assert seq["stopped"] == "regressed" and seq["pairs"] == 3 and seq["alpha_spent"] == [0.05]

    runs = _runs(db)
    main_sha, head_sha = git(repo, "rev-parse", "main"), git(repo, "rev-parse", "HEAD")
    measured = [r for r in runs if r["purpose"] == "ab"]
    assert len(measured) == 2 * seq["pairs"]
    for pair_id in {r["pair_id"] for r in measured}:
        assert sorted(r["commit_sha"] for r in measured if r["pair_id"] == pair_id) == sorted([main_sha, head_sha])
    assert [r for r in runs if r["purpose"] != "ab"] == []
    # Balanced order: base first in odd pairs, head first in even ones.
    first_of_pair = [next(r for r in measured if r["pair_id"] == p)["commit_sha"]
                     for p in dict.fromkeys(r["pair_id"] for r in measured)]
    assert first_of_pair[:2] == [main_sha, head_sha]
    _assert_cleaned_up(repo, tmp_path)


def test_failing_setup_command_is_a_tool_error(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    result = run_cli("ab", "--base", "main", "--setup", "echo building; exit 7", "--db", str(tmp_path / "ab.db"),
                     cwd=repo, env=_env(tmp_path))
    assert result.code == 4
    assert "setup command failed with exit code 7 for the base" in result.stderr and "exit code 7" in result.stderr
    assert "building" in result.stderr and "Traceback" not in result.stderr
    _assert_cleaned_up(repo, tmp_path)


def test_base_that_will_not_serve_is_a_tool_error(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    git(repo, "checkout", "-q", "main")
    (repo / "service.py").write_text("raise SystemExit('the base cannot start: missing settings')\n")
    git(repo, "commit", "-q", "-am", "broken service")
    git(repo, "checkout", "-q", "-b", "fixed", "slower")
    result = run_cli("ab", "--base", "main", *SHORT, "--ready-timeout", "10", "--db", str(tmp_path / "ab.db"),
                     cwd=repo, env=_env(tmp_path))
    assert result.code == 4, result.stderr
    assert "missing settings" in result.stderr and "Traceback" not in result.stderr
    _assert_cleaned_up(repo, tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (("--base", "no-such-ref"), "names no commit"),
    (("--looks", "6,3"), "increasing"),
    (("--serve", "python -m http.server 8000"), "no {port} placeholder"),
])
def test_bad_ab_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    result = run_cli("ab", *args, "--db", str(tmp_path / "ab.db"), cwd=repo, env=_env(tmp_path))
    assert result.code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    _assert_cleaned_up(repo, tmp_path)


def test_ctrl_c_stops_the_services_and_removes_the_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    env = {**os.environ, **_env(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "perfgate", "ab", "--base", "main", "-t", "20s",
                                "--db", str(tmp_path / "ab.db")], cwd=repo, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 2:  # the service and Locust are up
            time.sleep(0.5)
            children = _descendants(process.pid)
        assert len(children) >= 2
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert all(not _alive(pid) for pid in children)
    _assert_cleaned_up(repo, tmp_path)


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
