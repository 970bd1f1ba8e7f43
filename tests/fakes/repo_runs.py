"""Synthetic runs stored against real commits of a real git repository (made by the ``git_repo`` fixture)."""

from __future__ import annotations

from pathlib import Path

from perfgate.store import Store

from conftest import git
from fakes.synthetic import make_run


def commit(repo: Path, message: str) -> str:
    """Commit a change of ``service.txt`` and return the new commit."""
    (repo / "service.txt").write_text(message + "\n")
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD")


def save_runs(db: Path, sha: str, n: int = 3, *, seed: int = 0, **kwargs) -> list[int]:
    """Store ``n`` synthetic runs of ``sha``; their ids."""
    with Store(db) as store:
        return [store.save(make_run(commit=sha, seed=seed + i, **kwargs)).id for i in range(n)]


def main_with_runs(repo: Path, db: Path, scales: list[float]) -> list[str]:
    """One new commit per scale on the current branch, each with three runs at that latency scale; the commits."""
    commits = []
    with Store(db) as store:
        for i, scale in enumerate(scales):
            (repo / "service.txt").write_text(f"v{i}\n")
            git(repo, "commit", "-q", "-am", f"change {i}")
            sha = git(repo, "rev-parse", "HEAD")
            commits.append(sha)
            for seed in range(3):
                store.save(make_run(commit=sha, seed=100 * i + seed, scale=scale))
    return commits
