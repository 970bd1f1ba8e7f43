"""History along a branch: per-commit medians of real stored runs on a real git repository, and change points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from perfgate.baselines.history import change_points
from perfgate.store import Store

from conftest import git, run_cli
from fakes.repo_runs import main_with_runs
from fakes.synthetic import make_run


def test_change_points_find_a_step_beyond_the_margin_and_nothing_in_noise() -> None:
    rng = np.random.default_rng(3)
    flat = list(20 * np.exp(rng.normal(0, 0.02, 14)))
    assert change_points(flat, 0.05) == []
    step = flat[:7] + [v * 1.25 for v in flat[7:]]
    assert change_points(step, 0.05) == [7]
    small = flat[:7] + [v * 1.03 for v in flat[7:]]
    assert change_points(small, 0.05) == []
    two = flat[:5] + [v * 1.3 for v in flat[5:10]] + [v * 0.9 for v in flat[10:]]
    assert change_points(two + [v * 0.9 for v in flat[:3]], 0.05) == [5, 10]


def test_history_shows_the_commit_where_the_level_shifted(git_repo: Path) -> None:
    db = git_repo / "runs.db"
    commits = main_with_runs(git_repo, db, [1.0] * 4 + [1.3] * 4)
    result = run_cli("history", "--db", str(db), "-e", "GET /items", "--format", "json", cwd=git_repo)
    assert result.code == 0, result.stderr
    (trend,) = json.loads(result.stdout)
    assert [p["commit"] for p in trend["points"]] == commits
    assert trend["change_points"] == [4] and trend["branch"] == "main"
    assert 1.2 < trend["points"][-1]["value"] / trend["points"][0]["value"] < 1.4
    text = run_cli("history", "--db", str(db), "-e", "GET /items", cwd=git_repo)
    shifted = [line for line in text.stdout.splitlines() if "level shift" in line]
    assert len(shifted) == 1 and commits[4][:10] in shifted[0]


def test_history_without_runs_is_one_clear_line(git_repo: Path) -> None:
    Store(git_repo / "none.db").close()  # an empty store (a missing one is another error)
    result = run_cli("history", "--db", str(git_repo / "none.db"), cwd=git_repo)
    assert result.code == 2 and "no history of profile 'smoke'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_charts_the_history_of_the_main_branch(git_repo: Path) -> None:
    db = git_repo / "runs.db"
    commits = main_with_runs(git_repo, db, [1.0, 1.0, 1.0])
    git(git_repo, "checkout", "-q", "-b", "feature")
    (git_repo / "service.txt").write_text("feature\n")
    git(git_repo, "commit", "-q", "-am", "feature")
    with Store(db) as store:
        for seed in range(3):
            store.save(make_run(commit=git(git_repo, "rev-parse", "HEAD"), seed=900 + seed))
    result = run_cli("compare", "--db", str(db), "--format", "markdown", cwd=git_repo)
    assert result.code == 0, result.stderr
    assert "History of p50 on main" in result.stdout and result.stdout.count("xychart-beta") == 2
    assert f'"{commits[0][:7]}"' in result.stdout


def test_history_joins_only_runs_with_the_newest_runs_load_parameters(git_repo: Path) -> None:
    from datetime import UTC, datetime, timedelta
    db = git_repo / "runs.db"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    commits = []
    with Store(db) as store:
        for i in range(5):
            (git_repo / "service.txt").write_text(f"v{i}\n")
            git(git_repo, "commit", "-q", "-am", f"change {i}")
            commits.append(sha := git(git_repo, "rev-parse", "HEAD"))
            # The first two commits ran 10 users (twice as slow); then the profile went back to 5.
            users, scale = (10, 2.0) if i < 2 else (5, 1.0)
            for seed in range(2):
                store.save(make_run(commit=sha, seed=10 * i + seed, scale=scale, users=users,
                                    started_at=start + timedelta(hours=i, minutes=seed)))
    result = run_cli("history", "--db", str(db), "-e", "GET /items", "--format", "json", cwd=git_repo)
    assert result.code == 0, result.stderr
    (trend,) = json.loads(result.stdout)
    assert [p["commit"] for p in trend["points"]] == commits[2:]
    assert trend["change_points"] == []
    assert "4 runs with other load parameters than the newest run's left out" in result.stderr
