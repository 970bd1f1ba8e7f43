"""What code a run measured: the commit, branch and dirty flag of a git work tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from perfgate.errors import GitError
from perfgate.models import GitInfo


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` did not answer within 30s in {cwd}") from None
    return done.stdout.strip() if done.returncode == 0 else None


def read_git_info(cwd: Path) -> GitInfo:
    """HEAD's commit and branch, and whether tracked files changed; all empty outside git."""
    commit = _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD")
    if commit is None:
        return GitInfo(commit=None, branch=None, dirty=False)
    branch = _git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD")
    # Untracked files do not count: build output and the store itself must not mark a tree dirty.
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit=commit, branch=branch or None, dirty=bool(status))
