"""Baselines: which runs a head is compared with, and baselines accepted as reviewed files.

Selection, unless told otherwise: the head is the current commit's runs of the
profile (runs of a dirty tree when the tree is dirty now); the baseline is the
runs at the merge-base of HEAD with the main branch, or the nearest first-parent
ancestor with valid runs of the same profile and environment. A baseline pinned
in ``baselines/<profile>.json`` wins when it is newer than those runs, or when
asked for. A pinned file of kind ``expected`` (imported from a table) is not a
baseline but absolute budgets.

Pinned files are JSON with sorted keys, so that accepting a baseline is a
reviewable change in a pull request like any other.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, ValidationError

from perfgate.boundary import BoundaryModel
from perfgate.config import Budget, LoadedConfig, parse_duration
from perfgate.decide.compare import NO_BASELINE_NOTE
from perfgate.decide.sides import RunValues, Side, side_from_runs
from perfgate.decide.verdict import BaselineChange, CommitSha, SideInfo
from perfgate.environment import environment_key
from perfgate.errors import BaselineError, ConfigError, RunNotFoundError
from perfgate.git import (
    changed_files,
    first_parent_ancestors,
    in_repository,
    merge_base,
    read_git_info,
    resolve_commit,
    resolve_main_branch,
    user_identity,
)
from perfgate.output import write_text_atomic
from perfgate.records import EndpointStats, EnvironmentFingerprint, RunRecord
from perfgate.store import Store

FILE_FORMAT = 1


class PinnedRun(BoundaryModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: int | None
    started_at: AwareDatetime
    endpoints: dict[str, EndpointStats]


class Expectation(BoundaryModel):
    """Expected values of one endpoint, imported from a table: checked as absolute budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p50: float | None = Field(default=None, gt=0)
    p95: float | None = Field(default=None, gt=0)
    p99: float | None = Field(default=None, gt=0)
    rps: float | None = Field(default=None, gt=0)


class PinnedBaseline(BoundaryModel):
    """``baselines/<profile>.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FILE_FORMAT
    kind: Literal["accepted", "expected"]
    profile: str
    commit: CommitSha | None = None
    accepted_by: str | None = None
    accepted_at: AwareDatetime
    reason: str
    expires: AwareDatetime | None = None
    environment: EnvironmentFingerprint | None = None
    load_parameters: dict | None = None
    runs: list[PinnedRun] = Field(default_factory=list)
    """Per-run statistics of the accepted runs: the run-level spread the decision needs."""
    expected: dict[str, Expectation] = Field(default_factory=dict)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or datetime.now(UTC))


def baseline_path(loaded: LoadedConfig, profile: str) -> Path:
    return loaded.baselines_dir / f"{profile}.json"


class NonFiniteNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON file: Python's parser accepts them, JSON does not."""


def _refuse_constant(name: str) -> float:
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 overflows to infinity
        raise NonFiniteNumber(text)
    return value


def read_pinned(path: Path) -> PinnedBaseline | None:
    """The pinned baseline at ``path``, ``None`` if there is none; a damaged file is an error."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except NonFiniteNumber as exc:
        raise BaselineError(f"{path}: {exc} is not a number a baseline can hold (NaN and infinities would turn "
                            "a regression into an undecided test); fix the file or write it again with "
                            "`perfgate baseline accept`") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: invalid JSON ({exc}); fix the file or write it again with "
                            "`perfgate baseline accept`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read ({exc})") from None
    try:
        pinned = PinnedBaseline.model_validate(data)
    except ValidationError as exc:
        item = exc.errors()[0]
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        raise BaselineError(f"{path}: {where}: {item['msg']}; fix the file or write it again with "
                            "`perfgate baseline accept`") from None
    if pinned.format != FILE_FORMAT:
        raise BaselineError(f"{path}: format {pinned.format} is not known to this perfgate; upgrade perfgate")
    return pinned


def write_pinned(path: Path, pinned: PinnedBaseline) -> None:
    """Stable key order and a final newline; written atomically."""
    write_text_atomic(path, json.dumps(pinned.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")


def list_pinned(loaded: LoadedConfig) -> list[tuple[Path, PinnedBaseline]]:
    folder = loaded.baselines_dir
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        pinned = read_pinned(path)
        if pinned is not None:
            found.append((path, pinned))
    return found


# -- selection ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What to compare, and what else the head is judged against."""

    head: Side
    base: Side | None
    expected_budgets: list[Budget] = field(default_factory=list)
    expected_source: str = ""
    notes: list[str] = field(default_factory=list)


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "no commit"


def _commit_of(repo: Path, ref: str, what: str) -> str:
    commit = resolve_commit(repo, ref)
    if commit is None:
        raise ConfigError(f"{what} {ref!r} names no commit in {repo}")
    return commit


def _clean_runs(store: Store, commit: str, profile: str, env: str | None = None) -> list[RunRecord]:
    """Runs of a committed tree (optionally: valid ones on one environment); never confirmation runs."""
    return [r for r in store.runs(commit=commit, profile=profile) if not r.git.dirty and r.purpose != "confirm"
            and (env is None or (r.valid and environment_key(r.environment) == env))]


def _runs_by_id(store: Store, run_ids: list[int]) -> list[RunRecord]:
    runs = [store.get(i) for i in run_ids]
    profiles = {r.profile.name for r in runs}
    if len(profiles) > 1:
        raise ConfigError(f"runs {', '.join(map(str, run_ids))} mix profiles {', '.join(sorted(profiles))}; "
                          "pick runs of one profile")
    return runs


def pinned_side(path: Path, pinned: PinnedBaseline) -> Side:
    runs = [RunValues(run_id=r.run_id, pair_id=None, valid=True, invalid_reasons=[], endpoints=r.endpoints)
            for r in pinned.runs]
    info = SideInfo(label="pinned baseline", commit=pinned.commit, run_ids=[r.run_id for r in pinned.runs if r.run_id],
                    runs=len(runs), newest_run_at=pinned.accepted_at, environment=pinned.environment,
                    baseline_file=str(path), accepted_by=pinned.accepted_by, reason=pinned.reason)
    return Side(info=info, profile=pinned.profile, load_parameters=pinned.load_parameters or {},
                environment=pinned.environment, runs=runs)


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
        git = read_git_info(repo, ignore)
        commit, dirty, where = git.commit, git.dirty, "HEAD" + (" (uncommitted changes)" if git.dirty else "")
    else:
        commit, dirty, where = _commit_of(repo, head_ref, "--head"), False, head_ref
    if commit is None:
        raise ConfigError(f"{repo} is not a git repository with commits: pass --head-run ID and --base-run ID")
    stored = store.runs(commit=commit, profile=profile)
    runs = [r for r in stored if r.git.dirty == dirty]
    if left_out := len(stored) - len(runs):
        kind = "a committed tree" if dirty else "a tree with uncommitted changes"
        notes.append(f"{left_out} run(s) of {_short(commit)} made on {kind} were left out of the head: "
                     "they measured other code than " + ("this tree" if dirty else "the commit"))
    if not runs:
        other = (" or compare the commit's runs with --head HEAD" if dirty and left_out else "")
        raise RunNotFoundError(f"no runs of profile {profile!r} at {where} {_short(commit)} in {store.path}; "
                               f"record some with `perfgate run --profile {profile}` (3 or more decide best)"
                               f"{other}")
    return runs, commit


def select(store: Store, loaded: LoadedConfig, profile: str, repo: Path, *, head_ref: str | None = None,
           head_run_ids: list[int] | None = None, base_ref: str | None = None,
           base_run_ids: list[int] | None = None, pinned: bool | None = None,
           has_command_line_budgets: bool = False) -> Selection:
    """Choose head and baseline. ``pinned``: True forces the pinned file, False ignores it, None decides.

    Without a baseline found, the budgets (the config's, or those given on the command line:
    ``has_command_line_budgets``) are judged alone.
    """
    notes: list[str] = []
    if head_run_ids:
        head_runs = _runs_by_id(store, head_run_ids)
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
    selection = {"head": head, "expected_budgets": expected, "expected_source": str(path), "notes": notes}

    if base_run_ids:
        base_runs = _runs_by_id(store, base_run_ids)
        return Selection(base=side_from_runs("runs", base_runs), **selection)
    if pinned is True:
        if pinned_file is None:
            raise BaselineError(f"no usable pinned baseline at {path}; accept one with "
                                f"`perfgate baseline accept --profile {profile} --reason ...`")
        return Selection(base=pinned_side(path, pinned_file), **selection)
    if base_ref is not None:
        commit = _commit_of(repo, base_ref, "--base")
        base_runs = _clean_runs(store, commit, profile)
        if not base_runs:
            raise RunNotFoundError(f"no runs of profile {profile!r} at --base {base_ref} ({_short(commit)}); "
                                   f"record some there: `git checkout {base_ref} && perfgate run --profile {profile}`")
        return Selection(base=side_from_runs(f"--base {base_ref}", base_runs), **selection)

    base_runs, label, searched = _default_base_runs(store, loaded, repo, profile, env, head_commit, head_runs)
    if pinned_file is not None and (not base_runs or pinned_file.accepted_at > max(r.started_at for r in base_runs)):
        return Selection(base=pinned_side(path, pinned_file), **selection)
    if base_runs:
        return Selection(base=side_from_runs(label, base_runs), **selection)
    if expected:
        notes.append("no baseline runs: only the imported expectations are checked")
        return Selection(base=None, **selection)
    if loaded.config.budgets or has_command_line_budgets:
        notes.append(NO_BASELINE_NOTE)
        return Selection(base=None, **selection)
    raise RunNotFoundError(
        f"no baseline for profile {profile!r}: {searched}, and no {path}. Record one on the main branch "
        f"(`git checkout {loaded.config.main_branch} && perfgate run --profile {profile}`), pass --base-run ID, "
        "or accept a baseline with `perfgate baseline accept`")


def _default_base_runs(store: Store, loaded: LoadedConfig, repo: Path, profile: str, env: str,
                       head_commit: str | None, head_runs: list[RunRecord]) -> tuple[list[RunRecord], str, str]:
    """Runs at the merge-base with the main branch, or the nearest ancestor that has comparable runs."""
    main = loaded.config.main_branch
    if not in_repository(repo) or head_commit is None:
        return [], "", "not in a git repository"
    main_commit = resolve_main_branch(repo, main)
    if main_commit is None:
        return [], "", (f"no branch {main!r} (set main_branch in perfgate.toml or pass --base REF)")
    start = merge_base(repo, head_commit, main_commit)
    if start is None:
        return [], "", f"HEAD has no merge-base with {main!r}"
    head_clean = not head_runs[0].git.dirty
    for distance, commit in enumerate(first_parent_ancestors(repo, start)):
        if commit == head_commit and head_clean:
            continue  # a commit is not its own baseline (unless the head is uncommitted work on it)
        runs = _clean_runs(store, commit, profile, env)
        if runs:
            label = "merge-base" if commit == start else f"ancestor {distance} of the merge-base"
            return runs, label, ""
    return [], "", f"no comparable runs at the merge-base {_short(start)} with {main!r} or its ancestors"


# -- accepting and importing ---------------------------------------------------------------------------

def accept(store: Store, loaded: LoadedConfig, repo: Path, *, profile: str, reason: str,
           run_ids: list[int] | None = None, commit_ref: str | None = None, expires: str | None = None) -> Path:
    """Write ``baselines/<profile>.json`` from the chosen runs; returns its path."""
    if not reason.strip():
        raise ConfigError("--reason must say why this baseline is accepted")
    if run_ids:
        runs = _runs_by_id(store, run_ids)
    else:
        commit = _commit_of(repo, commit_ref or "HEAD", "--commit")
        runs = _clean_runs(store, commit, profile)
        if not runs:
            raise RunNotFoundError(f"no runs of profile {profile!r} of a clean tree at {_short(commit)}; commit "
                                   f"your change and record runs with `perfgate run --profile {profile}`")
    invalid = [r.id for r in runs if not r.valid]
    if invalid:
        raise ConfigError(f"runs {', '.join(map(str, invalid))} are invalid and cannot become a baseline")
    envs = {environment_key(r.environment) for r in runs}
    params = {json.dumps(r.profile.load_parameters(), sort_keys=True) for r in runs}
    if len(envs) > 1 or len(params) > 1:
        raise ConfigError("the runs differ in environment or load parameters; accept runs of one setting")
    now = datetime.now(UTC).replace(microsecond=0)
    expiry = now + _lifetime(expires) if expires else None
    first = runs[0]
    pinned = PinnedBaseline(
        kind="accepted", profile=first.profile.name, commit=first.git.commit, accepted_by=user_identity(repo),
        accepted_at=now, reason=reason.strip(), expires=expiry, environment=first.environment,
        load_parameters=first.profile.load_parameters(),
        runs=[PinnedRun(run_id=r.id, started_at=r.started_at, endpoints={e.stats.key: e.stats for e in r.endpoints})
              for r in sorted(runs, key=lambda r: r.id or 0)],
    )
    path = baseline_path(loaded, first.profile.name)
    write_pinned(path, pinned)
    return path


MAX_LIFETIME_DAYS = 3660
"""A pinned baseline lives ten years at most: a longer lifetime is a typo, and far dates do not exist."""


def _lifetime(text: str) -> timedelta:
    """``90d``, or any duration perfgate understands (``12h``); positive, finite, ten years at most."""
    try:
        if text.strip().lower().endswith("d"):
            days = float(text.strip()[:-1])
        else:
            days = parse_duration(text) / 86400
    except ValueError:
        raise ConfigError(f"--expires: {text!r} is not a lifetime such as 90d or 12h") from None
    if not 0 < days <= MAX_LIFETIME_DAYS:  # also NaN and infinities ('inf', '1e400d')
        raise ConfigError(f"--expires: {text!r} is not a positive lifetime of ten years at most, "
                          "such as 90d or 12h")
    return timedelta(days=days)


def import_expected(loaded: LoadedConfig, repo: Path, *, profile: str, table: Path, reason: str) -> Path:
    """Write ``baselines/<profile>.json`` of kind ``expected`` from a JSON table of expected values.

    The table maps ``"METHOD name"`` to ``{"p50": ms, "p95": ms, "p99": ms, "rps": n}`` (any subset), or is
    a list of such objects with an ``"endpoint"`` key.
    """
    try:
        data = json.loads(table.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{table}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{table}: invalid JSON ({exc})") from None
    if isinstance(data, list):
        try:
            data = {row["endpoint"]: {k: v for k, v in row.items() if k != "endpoint"} for row in data}
        except (TypeError, KeyError):
            raise ConfigError(f"{table}: each row of a list needs an \"endpoint\" key") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{table}: expected an object of endpoints, e.g. "
                          '{"GET /items": {"p95": 120, "rps": 50}}')
    expected = {}
    for endpoint, values in data.items():
        try:
            expected[endpoint] = Expectation.model_validate({k.lower(): v for k, v in dict(values).items()})
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(f"{table}: {endpoint}: {_first_error(exc)}") from None
    pinned = PinnedBaseline(kind="expected", profile=profile, accepted_by=user_identity(repo),
                            accepted_at=datetime.now(UTC).replace(microsecond=0),
                            reason=reason or f"imported from {table.name}", expected=expected)
    path = baseline_path(loaded, profile)
    write_pinned(path, pinned)
    return path


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        item = exc.errors()[0]
        return f"{'.'.join(map(str, item['loc']))}: {item['msg']}"
    return str(exc)


def changed_baselines(loaded: LoadedConfig, repo: Path) -> list[BaselineChange]:
    """Pinned baselines this branch adds or changes against its merge-base with the main branch.

    A pull request that accepts a new baseline says so in its verdict, with who accepted it and why,
    so that reviewers approve the new baseline knowingly.
    """
    main = resolve_main_branch(repo, loaded.config.main_branch)
    head = read_git_info(repo).commit
    base = merge_base(repo, head, main) if main and head else None
    if base is None:
        return []
    changed = changed_files(repo, base, loaded.baselines_dir)
    result = []
    for path in changed:
        try:
            pinned = read_pinned(path)
        except BaselineError as exc:
            result.append(BaselineChange(file=_relative(path, repo), profile=path.stem, kind="unreadable",
                                         reason=str(exc)))
            continue
        if pinned is not None:
            result.append(BaselineChange(file=_relative(path, repo), profile=pinned.profile, kind=pinned.kind,
                                         accepted_by=pinned.accepted_by, accepted_at=pinned.accepted_at,
                                         reason=pinned.reason, commit=pinned.commit))
    return result


def _relative(path: Path, repo: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(path)
