"""A profile's history on a branch: per commit, the median of its runs, and where the level shifted.

The commits are the branch's first-parent line, newest first in git and oldest first
here; a commit counts when it has valid, clean runs of the profile on the given
environment (confirmation runs never count). A change point is where the level
before and after differ by more than the practical margin, and by more than the
commit-to-commit noise explains (Welch's test on the log values, at 1 % after a
Bonferroni correction over the candidate splits), found by binary segmentation.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from perfgate.decide.stats import welch_p
from perfgate.decide.verdict import EndpointTrend, TrendPoint, Verdict
from perfgate.environment import environment_key
from perfgate.git import first_parent_ancestors, resolve_main_branch
from perfgate.records import RunRecord, median_over_runs
from perfgate.store import Store

METRICS = ("p50", "p95", "p99", "rps")
MIN_SEGMENT = 3
"""Commits on each side of a change point, at the least."""
CHANGE_LEVEL = 0.01


def change_points(values: Sequence[float], margin: float) -> list[int]:
    """Indexes where a new level starts (log scale for the test, ``margin`` relative)."""
    logs = [math.log(v) for v in values]
    found: list[int] = []

    def split(start: int, end: int) -> None:
        candidates = range(start + MIN_SEGMENT, end - MIN_SEGMENT + 1)
        best, best_p = None, 1.0
        for k in candidates:
            left, right = logs[start:k], logs[k:end]
            shift = statistics.fmean(right) - statistics.fmean(left)
            if abs(math.expm1(shift)) < margin:
                continue
            if statistics.pvariance(left) == 0 and statistics.pvariance(right) == 0:
                p = 0.0
            else:
                p = welch_p(right, left)
            if p < best_p:
                best, best_p = k, p
        if best is not None and best_p * max(len(candidates), 1) <= CHANGE_LEVEL:
            found.append(best)
            split(start, best)
            split(best, end)

    split(0, len(logs))
    return sorted(found)


def _value(run: RunRecord, endpoint: str, metric: str) -> float | None:
    result = run.endpoint(endpoint)
    if result is None or result.stats.count == 0:
        return None
    value = getattr(result.stats, metric)
    return value if value is not None and value > 0 else None


def branch_runs(store: Store, repo: Path, branch: str, profile: str, environment: str | None,
                limit: int = 30, *, tip: str | None = None) -> list[tuple[str, list[RunRecord]]]:
    """(commit, its runs) along the branch's first-parent line, oldest first, commits with runs only.

    ``tip``: the branch's commit, when the caller has asked git already.
    """
    tip = tip or resolve_main_branch(repo, branch)
    if tip is None:
        return []
    line = []
    for commit in first_parent_ancestors(repo, tip, limit=limit):
        runs = [r for r in store.comparable_runs(commit, profile, environment=environment) if r.valid]
        if runs:
            line.append((commit, runs))
    return line[::-1]


def same_parameters(line: list[tuple[str, list[RunRecord]]]) -> tuple[list[tuple[str, list[RunRecord]]], int]:
    """The line with only runs whose effective load parameters are the newest run's, and how many were left out.

    A run with other users, run time, spawn rate, warm-up or Locust arguments measures another load: joining it
    would draw a level shift that is the profile's edit, not the service's.
    """
    runs = [r for _, commit_runs in line for r in commit_runs]
    if not runs:
        return line, 0
    wanted = max(runs, key=lambda r: r.started_at).profile.load_parameters()
    kept = [(commit, same) for commit, commit_runs in line
            if (same := [r for r in commit_runs if r.profile.load_parameters() == wanted])]
    return kept, len(runs) - sum(len(commit_runs) for _, commit_runs in kept)


def branch_history(store: Store, repo: Path, branch: str, profile: str, *, metric: str, endpoints: Sequence[str],
                   commits: int, margin: float) -> tuple[list[EndpointTrend], int]:
    """``perfgate history``: the trends of the endpoints matching ``endpoints`` (globs; none: all) over the last
    ``commits`` commits of the branch, on the newest run's environment and load parameters, and how many runs
    were left out for other load parameters."""
    line = branch_runs(store, repo, branch, profile, None, limit=commits)
    if line:  # one environment: the newest run's, as a comparison would use
        newest = max((r for _, runs in line for r in runs), key=lambda r: r.started_at)
        wanted = environment_key(newest.environment)
        line = [
            (c, kept) for c, runs in line if (kept := [r for r in runs if environment_key(r.environment) == wanted])
        ]
    line, left_out = same_parameters(line)
    keys = sorted({e.stats.key for _, runs in line for r in runs for e in r.endpoints})
    if endpoints:
        keys = [k for k in keys if any(fnmatch.fnmatchcase(k, pattern) for pattern in endpoints)]
    return trends(line, branch, metric=metric, endpoints=keys, margin=margin), left_out


def trends(line: list[tuple[str, list[RunRecord]]], branch: str, *, metric: str = "p50",
           endpoints: Sequence[str] | None = None, margin: float = 0.05) -> list[EndpointTrend]:
    """Per endpoint, the median of each commit's runs, with change points."""
    keys = endpoints if endpoints is not None else sorted({e.stats.key for _, runs in line for r in runs
                                                          for e in r.endpoints})
    result = []
    for key in keys:
        points = []
        for commit, runs in line:
            values = [v for r in runs if (v := _value(r, key, metric)) is not None]
            typical = median_over_runs(values)
            if typical is not None:
                points.append(TrendPoint(commit=commit, at=max(r.started_at for r in runs),
                                         value=typical, runs=len(values)))
        if len(points) >= 2:
            result.append(EndpointTrend(endpoint=key, metric=metric, branch=branch, points=points,
                                        change_points=change_points([p.value for p in points], margin)))
    return result


MAX_CHARTED = 8
"""Endpoints whose trend the PR verdict charts (worst first)."""


def with_history(verdict: Verdict, store: Store, repo: Path, branch: str, *, tip: str | None = None) -> Verdict:
    """The verdict with the p50 trend of its worst endpoints on the branch, when the store has one."""
    environment = verdict.head.environment
    line = branch_runs(store, repo, branch, verdict.profile,
                       environment_key(environment) if environment is not None else None, tip=tip)
    line, _left_out = same_parameters(line)
    if len(line) < 2:
        return verdict
    endpoints = [e.endpoint for e in verdict.endpoints if e.judged][:MAX_CHARTED]
    return verdict.model_copy(update={"history": trends(line, branch, endpoints=endpoints,
                                                        margin=verdict.settings.margins.get("p50", 0.05))})
