"""Accepting a baseline (``perfgate baseline accept``) and importing expectations (``perfgate baseline import``):
both write ``baselines/<profile>.json``, to be reviewed and merged like code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from perfgate.baselines.pinned import Expectation, PinnedBaseline, PinnedRun, baseline_path, write_pinned
from perfgate.baselines.selection import runs_by_id, short
from perfgate.config import LoadedConfig, parse_duration
from perfgate.environment import environment_key
from perfgate.errors import RunNotFoundError, UsageError
from perfgate.git import commit_of, user_identity
from perfgate.store import Store


def accept(store: Store, loaded: LoadedConfig, repo: Path, *, profile: str, reason: str,
           run_ids: list[int] | None = None, commit_ref: str | None = None, expires: str | None = None) -> Path:
    """Write ``baselines/<profile>.json`` from the chosen runs; returns its path."""
    if not reason.strip():
        raise UsageError("--reason must say why this baseline is accepted")
    if run_ids:
        runs = runs_by_id(store, run_ids)
    else:
        commit = commit_of(repo, commit_ref or "HEAD", "--commit")
        runs = store.comparable_runs(commit, profile)
        if not runs:
            raise RunNotFoundError(f"no runs of profile {profile!r} of a clean tree at {short(commit)}; commit "
                                   f"your change and record runs with `perfgate run --profile {profile}`")
    invalid = [r.id for r in runs if not r.valid]
    if invalid:
        raise UsageError(f"runs {', '.join(map(str, invalid))} are invalid and cannot become a baseline")
    envs = {environment_key(r.environment) for r in runs}
    params = {json.dumps(r.profile.load_parameters(), sort_keys=True) for r in runs}
    if len(envs) > 1 or len(params) > 1 or len({r.topology for r in runs}) > 1:
        raise UsageError("the runs differ in environment, load parameters or load topology; accept runs of one "
                         "setting")
    now = datetime.now(UTC).replace(microsecond=0)
    expiry = now + _lifetime(expires) if expires else None
    first = runs[0]
    pinned = PinnedBaseline(
        kind="accepted", profile=first.profile.name, commit=first.git.commit, accepted_by=user_identity(repo),
        accepted_at=now, reason=reason.strip(), expires=expiry, environment=first.environment,
        load_parameters=first.profile.load_parameters(), topology=first.topology,
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
        raise UsageError(f"--expires: {text!r} is not a lifetime such as 90d or 12h") from None
    if not 0 < days <= MAX_LIFETIME_DAYS:  # also NaN and infinities ('inf', '1e400d')
        raise UsageError(f"--expires: {text!r} is not a positive lifetime of ten years at most, "
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
        raise UsageError(f"{table}: file not found") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{table}: invalid JSON ({exc})") from None
    if isinstance(data, list):
        try:
            data = {row["endpoint"]: {k: v for k, v in row.items() if k != "endpoint"} for row in data}
        except (TypeError, KeyError):
            raise UsageError(f"{table}: each row of a list needs an \"endpoint\" key") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{table}: expected an object of endpoints, e.g. "
                          '{"GET /items": {"p95": 120, "rps": 50}}')
    expected = {}
    for endpoint, values in data.items():
        try:
            expected[endpoint] = Expectation.model_validate({k.lower(): v for k, v in dict(values).items()})
        except (ValidationError, TypeError, ValueError) as exc:
            raise UsageError(f"{table}: {endpoint}: {_first_error(exc)}") from None
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
