"""Capacity A/B in one job (``perfgate ab --capacity``): base and head each served from a fresh tree and searched
on this machine, one after the other, then judged as ``compare --capacity`` judges stored searches.

The base is searched first, then the head: each search takes minutes, so they cannot share moments as the latency
duet does; both come from the same machine in the same job, which is what makes them comparable at all. Both
searches are stored (the head's under the current tree, dirty when it is), so the base's serves later comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from perfgate.ab.trees import Notify, fresh_trees, head_snapshot
from perfgate.baselines.selection import short
from perfgate.capacity.judge import CapacityVerdict, judge_capacity
from perfgate.capacity.steps import CapacityRequest, run_capacity
from perfgate.errors import UsageError
from perfgate.git import commit_of, main_line, repository_root
from perfgate.records import CapacityRecord, CapacityStep
from perfgate.store import Store

SideStep = Callable[[str, CapacityStep], None]


def ab_capacity(request: CapacityRequest, store: Store, notify: Notify, *, base_ref: str | None, main_branch: str,
                setup: str | None, margin: float, alpha: float,
                on_step: SideStep | None = None) -> tuple[CapacityVerdict, CapacityRecord, CapacityRecord]:
    """Search the base's and the head's capacity in fresh trees, store both, and judge the head against the base."""
    if request.serve is None:
        raise UsageError("ab --capacity serves both versions itself: give --serve (or [serve] in the config)")
    cwd = Path.cwd().resolve()
    repo = repository_root(cwd)
    if repo is None:
        raise UsageError(f"{cwd} is not inside a git repository with commits; ab --capacity compares two commits")
    store.check_writable()
    if base_ref is not None:
        base_commit = commit_of(repo, base_ref, "--base")
    else:
        line = main_line(repo, main_branch)
        if line.merge_base is None:
            raise UsageError(f"no base commit to compare with: {line.reason}")
        base_commit = line.merge_base
    snapshot = head_snapshot(repo, store, notify)
    where = cwd.relative_to(repo)
    records: dict[str, CapacityRecord] = {}
    with fresh_trees(repo, where, {"base": base_commit, "head": snapshot.commit}, setup, notify) as trees:
        # The head's search is recorded under the user's tree: its real commit, dirty when it is.
        for label, recorded_in in (("base", trees["base"]), ("head", repo)):
            notify(f"capacity of the {label} ({short(base_commit if label == 'base' else snapshot.head)})")
            side = replace(request, repo_dir=recorded_in, serve_cwd=trees[label] / where)
            records[label] = run_capacity(side, store, on_step=_for_side(on_step, label))
    verdict = judge_capacity([records["base"]], [records["head"]], base_label=f"base {short(base_commit)}",
                             head_label=f"head {short(snapshot.head)}", margin=margin, alpha=alpha)
    return verdict, records["base"], records["head"]


def _for_side(on_step: SideStep | None, label: str) -> Callable[[CapacityStep], None] | None:
    if on_step is None:
        return None
    return lambda step: on_step(label, step)
