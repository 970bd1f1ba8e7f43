"""Which runs a head is compared with.

Unless told otherwise: the head is the current commit's runs of the profile (runs of a dirty tree when the
tree is dirty now); the baseline is the runs at the merge-base of HEAD with the main branch, or the nearest
first-parent ancestor with valid runs of the same profile and environment. A baseline pinned in
``baselines/<profile>.json`` wins when it is newer than those runs, or when asked for. A pinned file of kind
``expected`` (imported from a table) is not a baseline but absolute budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from perfgate.baselines.pinned import PinnedBaseline, baseline_path, read_pinned
from perfgate.config import Budget, LoadedConfig
from perfgate.decide.compare import NO_BASELINE_NOTE
from perfgate.decide.sides import RunValues, Side, side_from_runs
from perfgate.decide.verdict import SideInfo
from perfgate.environment import environment_key
from perfgate.errors import NotFoundError, RunNotFoundError, UsageError
from perfgate.git import MainLine, commit_of, first_parent_ancestors, main_line, read_git_info
from perfgate.records import RunRecord
from perfgate.store import Store


@dataclass(frozen=True)
class Selection:
    """What to compare, and what else the head is judged against."""

    head: Side
    base: Side | None
    expected_budgets: list[Budget] = field(default_factory=list)
    expected_source: str = ""
    notes: list[str] = field(default_factory=list)
    head_runs: list[RunRecord] = field(default_factory=list)
    base_runs: list[RunRecord] = field(default_factory=list)
    """The stored runs of each side (none for a pinned baseline): what a report charts."""


def short(commit: str | None) -> str:
    return commit[:10] if commit else "no commit"


def runs_by_id(store: Store, run_ids: list[int]) -> list[RunRecord]:
    """The runs of these ids, all of one profile."""
    runs = [store.get(i) for i in run_ids]
    profiles = {r.profile.name for r in runs}
    if len(profiles) > 1:
        raise UsageError(f"runs {', '.join(map(str, run_ids))} mix profiles {', '.join(sorted(profiles))}; "
                         "pick runs of one profile")
    return runs


def pinned_side(path: Path, pinned: PinnedBaseline) -> Side:
    runs = [RunValues(run_id=r.run_id, pair_id=None, valid=True, invalid_reasons=[], endpoints=r.endpoints)
            for r in pinned.runs]
    info = SideInfo(label="pinned baseline", commit=pinned.commit, run_ids=[r.run_id for r in pinned.runs if r.run_id],
                    runs=len(runs), newest_run_at=pinned.accepted_at, environment=pinned.environment,
                    baseline_file=str(path), accepted_by=pinned.accepted_by, reason=pinned.reason)
    return Side(info=info, profile=pinned.profile, load_parameters=pinned.load_parameters or {},
                environment=pinned.environment, runs=runs,
                topologies=set() if pinned.topology is None else {pinned.topology})


def expected_budgets(pinned: PinnedBaseline, margins: dict[str, float]) -> list[Budget]:
    """Imported expectations as budgets: each value plus its practical margin."""
    budgets = []
    for endpoint, expected in sorted(pinned.expected.items()):
        limits = {m: getattr(expected, m) * (1 + margins[m]) for m in ("p50", "p95", "p99")
                  if getattr(expected, m) is not None}
        if expected.rps is not None:
            limits["rps"] = expected.rps * (1 - margins["throughput"])
        budgets.append(Budget(endpoint=endpoint, **limits))
    return budgets


def _head_runs(store: Store, repo: Path, profile: str, head_ref: str | None,
               notes: list[str], ignore: tuple[Path, ...] = ()) -> tuple[list[RunRecord], str]:
    if head_ref is None:
        tree = read_git_info(repo, ignore)
        commit, dirty, where = tree.commit, tree.dirty, "HEAD" + (" (uncommitted changes)" if tree.dirty else "")
    else:
        commit, dirty, where = commit_of(repo, head_ref, "--head"), False, head_ref
    if commit is None:
        raise UsageError(f"{repo} is not a git repository with commits: pass --head-run ID and --base-run ID")
    stored = store.runs(commit=commit, profile=profile)
    runs = [r for r in stored if r.git.dirty == dirty]
    if left_out := len(stored) - len(runs):
        kind = "a committed tree" if dirty else "a tree with uncommitted changes"
        notes.append(f"{left_out} run(s) of {short(commit)} made on {kind} were left out of the head: "
                     "they measured other code than " + ("this tree" if dirty else "the commit"))
    if not runs:
        other = (" or compare the commit's runs with --head HEAD" if dirty and left_out else "")
        raise RunNotFoundError(f"no runs of profile {profile!r} at {where} {short(commit)} in {store.path}; "
                               f"record some with `perfgate run --profile {profile}` (3 or more decide best)"
                               f"{other}")
    return runs, commit


def select(store: Store, loaded: LoadedConfig, profile: str, repo: Path, *, head_ref: str | None = None,
           head_run_ids: list[int] | None = None, base_ref: str | None = None,
           base_run_ids: list[int] | None = None, pinned: bool | None = None,
           has_command_line_budgets: bool = False, main: MainLine | None = None) -> Selection:
    """Choose head and baseline. ``pinned``: True forces the pinned file, False ignores it, None decides.

    Without a baseline found, the budgets (the config's, or those given on the command line:
    ``has_command_line_budgets``) are judged alone. ``main``: where the head stands against the main branch,
    when the caller has asked git already.
    """
    notes: list[str] = []
    if head_run_ids:
        head_runs = runs_by_id(store, head_run_ids)
        head_commit = head_runs[0].git.commit
        head_label = "runs"
    else:
        head_runs, head_commit = _head_runs(store, repo, profile, head_ref, notes, loaded.own_paths())
        head_label = "head"
    profile = head_runs[0].profile.name
    head = side_from_runs(head_label, head_runs)
    env = environment_key(head_runs[0].environment)

    path = baseline_path(loaded, profile)
    pinned_file = read_pinned(path) if pinned is not False else None
    expected: list[Budget] = []
    if pinned_file is not None and pinned_file.kind == "expected":
        expected = expected_budgets(pinned_file, loaded.config.compare.default_margins())
        pinned_file = None
    if pinned_file is not None and pinned_file.expired():
        notes.append(f"{path} expired on {pinned_file.expires:%Y-%m-%d} and was not used")
        pinned_file = None
    alone = Selection(head=head, base=None, expected_budgets=expected, expected_source=str(path), notes=notes,
                      head_runs=head_runs)

    if base_run_ids:
        base_runs = runs_by_id(store, base_run_ids)
        return replace(alone, base=side_from_runs("runs", base_runs), base_runs=base_runs)
    if pinned is True:
        if pinned_file is None:
            raise NotFoundError(f"no usable pinned baseline at {path}; accept one with "
                                f"`perfgate baseline accept --profile {profile} --reason ...`")
        return replace(alone, base=pinned_side(path, pinned_file))
    if base_ref is not None:
        commit = commit_of(repo, base_ref, "--base")
        base_runs = store.comparable_runs(commit, profile)
        if not base_runs:
            raise RunNotFoundError(f"no runs of profile {profile!r} at --base {base_ref} ({short(commit)}); "
                                   f"record some there: `git checkout {base_ref} && perfgate run --profile {profile}`")
        return replace(alone, base=side_from_runs(f"--base {base_ref}", base_runs), base_runs=base_runs)

    if main is None or head_ref is not None or head_run_ids:
        main = main_line(repo, loaded.config.main_branch, head_commit)
    base_runs, label, searched = _default_base_runs(store, repo, main, profile, env, head_commit, head_runs)
    if pinned_file is not None and (not base_runs or pinned_file.accepted_at > max(r.started_at for r in base_runs)):
        return replace(alone, base=pinned_side(path, pinned_file))
    if base_runs:
        return replace(alone, base=side_from_runs(label, base_runs), base_runs=base_runs)
    if expected:
        notes.append("no baseline runs: only the imported expectations are checked")
        return alone
    if loaded.config.budgets or has_command_line_budgets:
        notes.append(NO_BASELINE_NOTE)
        return alone
    raise RunNotFoundError(
        f"no baseline for profile {profile!r}: {searched}, and no {path}. Record one on the main branch "
        f"(`git checkout {loaded.config.main_branch} && perfgate run --profile {profile}`), pass --base-run ID, "
        "or accept a baseline with `perfgate baseline accept`")


def _default_base_runs(store: Store, repo: Path, main: MainLine, profile: str, env: str,
                       head_commit: str | None, head_runs: list[RunRecord]) -> tuple[list[RunRecord], str, str]:
    """Runs at the merge-base with the main branch, or the nearest ancestor that has comparable runs."""
    start = main.merge_base
    if start is None or head_commit is None:
        return [], "", main.reason or "the head has no commit"
    head_clean = not head_runs[0].git.dirty
    for distance, commit in enumerate(first_parent_ancestors(repo, start)):
        if commit == head_commit and head_clean:
            continue  # a commit is not its own baseline (unless the head is uncommitted work on it)
        runs = store.comparable_runs(commit, profile, environment=env)
        if runs:
            label = "merge-base" if commit == start else f"ancestor {distance} of the merge-base"
            return runs, label, ""
    return [], "", f"no comparable runs at the merge-base {short(start)} with {main.branch!r} or its ancestors"
