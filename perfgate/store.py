"""The run store: one SQLite file, written through sqlite-utils.

A run and its endpoints are written in one transaction, so a crash or a kill
leaves either the whole run or nothing. The schema carries a version in the
``perfgate_meta`` table; :data:`MIGRATIONS` moves an older file forward, and a
file from a newer perfgate is refused rather than damaged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from perfgate.config import ResolvedProfile
from perfgate.errors import RunNotFoundError, StoreBusyError, StoreError
from perfgate.models import (
    CheckResult,
    EndpointResult,
    EndpointStats,
    EnvironmentFingerprint,
    GitInfo,
    RunRecord,
    SecondBucket,
    ServiceUsage,
)
from perfgate.samples import LatencyHistogram, SampleDecodeError

SCHEMA_VERSION = 2


def _create_v1(db: Database) -> None:
    db["runs"].create({
        "id": int, "started_at": str, "commit_sha": str, "branch": str, "dirty": int,
        "profile": str, "parameters": str, "environment": str, "env_key": str,
        "duration_s": float, "total_requests": int, "total_failures": int, "achieved_rps": float,
        "locust_request_count": int, "recorded_request_count": int, "warmup_excluded": int,
        "valid": int, "invalid_reasons": str, "checks": str, "service": str,
        "pair_id": str, "trial_id": str,
    }, pk="id", not_null={"started_at", "profile", "parameters", "environment", "valid"})
    db["endpoints"].create({
        "id": int, "run_id": int, "method": str, "name": str, "count": int, "failures": int,
        "failures_by_type": str, "rps": float, "min": float, "p50": float, "p90": float,
        "p95": float, "p99": float, "max": float, "mean": float, "histogram": bytes, "series": str,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], not_null={"run_id", "method", "name"})
    db["runs"].create_index(["commit_sha"])
    db["runs"].create_index(["branch", "profile"])
    db["endpoints"].create_index(["run_id"])


def _add_purpose_v2(db: Database) -> None:
    db["runs"].add_column("purpose", str, not_null_default="run")


MIGRATIONS: dict[int, Callable[[Database], None]] = {1: _create_v1, 2: _add_purpose_v2}
"""Version N's step, applied to a file at version N - 1 (0 is an empty file)."""


def environment_key(environment: EnvironmentFingerprint) -> str:
    """What must match for two runs' environments to be comparable."""
    return "|".join((environment.cpu_model, str(environment.cores), environment.os,
                     environment.python, environment.locust))


class Store:
    """Runs by commit, in a SQLite file created on first use."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = Database(sqlite3.connect(str(path), timeout=busy_timeout_s))
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise _store_error(path, exc) from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store ({exc.strerror or exc}); "
                             "pass --db with a writable path") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _version(self) -> int:
        if not self.db["perfgate_meta"].exists():
            if self.db.table_names():
                raise StoreError(f"{self.path}: this SQLite file is not a perfgate store; pass --db with another path")
            return 0
        row = self.db.execute("select value from perfgate_meta where key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self.db.atomic():
            version = self._version()
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by a newer perfgate (schema {version}, this one knows "
                                 f"{SCHEMA_VERSION}); upgrade perfgate")
            if version == SCHEMA_VERSION:
                return
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](self.db)
            self.db["perfgate_meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)},
                                            pk="key", replace=True)

    def check_writable(self) -> None:
        """Fail now, before a long load run, if the run could not be saved afterwards."""
        try:
            with self.db.atomic():
                self.db.execute("create table if not exists perfgate_write_probe (x)")
                self.db.execute("drop table perfgate_write_probe")
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None

    def save(self, run: RunRecord) -> RunRecord:
        """Store a run and its endpoints in one transaction; returns the run with its id."""
        row = {
            "started_at": run.started_at.isoformat(), "commit_sha": run.git.commit, "branch": run.git.branch,
            "dirty": int(run.git.dirty), "profile": run.profile.name,
            "parameters": run.profile.model_dump_json(), "environment": run.environment.model_dump_json(),
            "env_key": environment_key(run.environment), "duration_s": run.duration_s,
            "total_requests": run.total_requests, "total_failures": run.total_failures,
            "achieved_rps": run.achieved_rps, "locust_request_count": run.locust_request_count,
            "recorded_request_count": run.recorded_request_count, "warmup_excluded": run.warmup_excluded,
            "valid": int(run.valid), "invalid_reasons": json.dumps(run.invalid_reasons),
            "checks": json.dumps([c.model_dump() for c in run.checks]),
            "service": run.service.model_dump_json() if run.service else None,
            "pair_id": run.pair_id, "trial_id": run.trial_id, "purpose": run.purpose,
        }
        try:
            with self.db.atomic():
                run_id = self.db["runs"].insert(row).last_pk
                self.db["endpoints"].insert_all(
                    {**e.stats.model_dump(exclude={"failures_by_type"}),
                     "failures_by_type": json.dumps(e.stats.failures_by_type), "run_id": run_id,
                     "histogram": e.histogram.to_bytes(),
                     "series": json.dumps([b.model_dump() for b in e.series], separators=(",", ":"))}
                    for e in run.endpoints
                )
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None
        return run.model_copy(update={"id": run_id})

    def runs(self, *, commit: str | None = None, branch: str | None = None, profile: str | None = None,
             limit: int | None = None, endpoints: bool = True) -> list[RunRecord]:
        """Runs matching every filter given, newest first (a commit may be a SHA prefix).

        ``endpoints=False`` leaves each run's endpoints empty and reads no samples: for listings.
        """
        clauses, params = [], []
        if commit:
            clauses.append("commit_sha like ?")
            params.append(commit + "%")
        if branch:
            clauses.append("branch = ?")
            params.append(branch)
        if profile:
            clauses.append("profile = ?")
            params.append(profile)
        where = " and ".join(clauses) or None
        try:
            rows = list(self.db["runs"].rows_where(where, params, order_by="id desc", limit=limit))
            return [self._run(row, endpoints) for row in rows]
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None

    def get(self, run_id: int) -> RunRecord:
        if not -(2**63) <= run_id < 2**63:  # beyond SQLite's integers: no such run, not a crash
            raise RunNotFoundError(f"no run {run_id} in {self.path}: run ids are whole numbers as listed by "
                                   "`perfgate runs`")
        try:
            rows = list(self.db["runs"].rows_where("id = ?", [run_id]))
            if not rows:
                raise RunNotFoundError(f"no run {run_id} in {self.path}; list runs with `perfgate runs`")
            return self._run(rows[0])
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None

    def _run(self, row: dict[str, Any], with_endpoints: bool = True) -> RunRecord:
        endpoints = [self._endpoint(e) for e in self.db["endpoints"].rows_where("run_id = ?", [row["id"]],
                                                                                 order_by="id")] if with_endpoints else []
        return RunRecord(
            id=row["id"], started_at=datetime.fromisoformat(row["started_at"]), duration_s=row["duration_s"],
            profile=ResolvedProfile.model_validate_json(row["parameters"]),
            git=GitInfo(commit=row["commit_sha"], branch=row["branch"], dirty=bool(row["dirty"])),
            environment=EnvironmentFingerprint.model_validate_json(row["environment"]),
            endpoints=endpoints,
            checks=[CheckResult.model_validate(c) for c in json.loads(row["checks"] or "[]")],
            total_requests=row["total_requests"], total_failures=row["total_failures"],
            achieved_rps=row["achieved_rps"], locust_request_count=row["locust_request_count"],
            recorded_request_count=row["recorded_request_count"], warmup_excluded=row["warmup_excluded"],
            valid=bool(row["valid"]), invalid_reasons=json.loads(row["invalid_reasons"] or "[]"),
            service=ServiceUsage.model_validate_json(row["service"]) if row["service"] else None,
            pair_id=row["pair_id"], trial_id=row["trial_id"], purpose=row["purpose"],
        )

    def _endpoint(self, row: dict[str, Any]) -> EndpointResult:
        stats = EndpointStats.model_validate(
            {**{k: row[k] for k in EndpointStats.model_fields if k != "failures_by_type"},
             "failures_by_type": json.loads(row["failures_by_type"] or "{}")})
        try:
            histogram = LatencyHistogram.from_bytes(row["histogram"])
        except SampleDecodeError as exc:
            raise StoreError(f"{self.path}: run {row['run_id']} endpoint {stats.key}: damaged samples ({exc})") from None
        series = [SecondBucket.model_validate(b) for b in json.loads(row["series"] or "[]")]
        return EndpointResult(stats=stats, histogram=histogram, series=series)


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreBusyError(f"{path}: the store is locked by another process; wait for it to finish and retry")
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path}: not a perfgate SQLite store ({text}); pass --db with another path")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(f"{path}: cannot write the store ({text}); make the folder writable or pass --db")
    return StoreError(f"{path}: store error ({text})")
