"""The run store: one SQLite file, written through sqlite-utils.

A run and its endpoints are written in one transaction, so a crash or a kill leaves either the whole run or
nothing. The schema carries a version in the ``perfgate_meta`` table; :data:`MIGRATIONS` moves an older file
forward, and a file from a newer perfgate is refused rather than damaged.

Several processes may write one store at once (parallel CI jobs, an A/B beside a ``perfgate run``). The file is
in WAL mode, so readers never wait for a writer, and every write opens with ``BEGIN IMMEDIATE``: it takes the
write lock before reading anything, so a concurrent writer waits for the lock (up to the busy timeout) instead
of failing at once on a stale read snapshot, as a deferred transaction does. The wait is a Python loop of short
SQLite waits, so a signal still stops perfgate promptly while it waits.

Stored rows are treated as outside input: a row that does not make a valid run (bad JSON, wrong types, a date
without time zone, a non-finite number) is one :class:`~perfgate.errors.StoreError` naming the run, never a
traceback.

Over 450 lines: the schema, its migrations and every statement that reads or writes it are one owner of the
file's layout; split, a column added in one half would be read wrong by the other.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import ValidationError
from sqlite_utils import Database

from perfgate.boundary import strict_json
from perfgate.config import ResolvedProfile
from perfgate.environment import Topology, environment_key
from perfgate.errors import RunNotFoundError, StoreBusyError, StoreDiskError, StoreError, StoreNotFoundError
from perfgate.records import (
    Block,
    CapacityRecord,
    CheckResult,
    EndpointResult,
    EndpointStats,
    EnvironmentFingerprint,
    GitInfo,
    MasterUsage,
    RunPurpose,
    RunRecord,
    SecondBucket,
    ServiceMetrics,
    ServiceUsage,
)
from perfgate.samples import LatencyHistogram, SampleDecodeError

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 60.0
"""How long a write waits for another process's write lock: a finished run is worth a minute's wait."""

_POLL_S = 0.25
"""One SQLite-level wait for a lock; between two, perfgate checks its deadline and its signals."""

SCHEMA_VERSION = 8


def _create_v1(db: Database) -> None:
    db.table("runs").create({
        "id": int, "started_at": str, "commit_sha": str, "branch": str, "dirty": int,
        "profile": str, "parameters": str, "environment": str, "env_key": str,
        "duration_s": float, "total_requests": int, "total_failures": int, "achieved_rps": float,
        "locust_request_count": int, "recorded_request_count": int, "warmup_excluded": int,
        "valid": int, "invalid_reasons": str, "checks": str, "service": str,
        "pair_id": str, "trial_id": str,
    }, pk="id", not_null={"started_at", "profile", "parameters", "environment", "valid"})
    db.table("endpoints").create({
        "id": int, "run_id": int, "method": str, "name": str, "count": int, "failures": int,
        "failures_by_type": str, "rps": float, "min": float, "p50": float, "p90": float,
        "p95": float, "p99": float, "max": float, "mean": float, "histogram": bytes, "series": str,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], not_null={"run_id", "method", "name"})
    db.table("runs").create_index(["commit_sha"])
    db.table("runs").create_index(["branch", "profile"])
    db.table("endpoints").create_index(["run_id"])


def _add_purpose_v2(db: Database) -> None:
    db.table("runs").add_column("purpose", str, not_null_default="run")


def _add_warmup_v3(db: Database) -> None:
    db.table("runs").add_column("warmup_end_s", float)
    db.table("runs").add_column("warnings", str)


def _add_blocks_v4(db: Database) -> None:
    db.table("endpoints").add_column("blocks", str)


def _add_topology_v5(db: Database) -> None:
    db.table("runs").add_column("topology", str)


def _add_master_v6(db: Database) -> None:
    db.table("runs").add_column("master", str)


def _add_metrics_v7(db: Database) -> None:
    db.table("runs").add_column("metrics", str)


def _add_capacity_v8(db: Database) -> None:
    db.table("capacity").create({
        "id": int, "started_at": str, "commit_sha": str, "branch": str, "dirty": int, "profile": str,
        "env_key": str, "record": str,
    }, pk="id", not_null={"started_at", "profile", "record"})
    db.table("capacity").create_index(["commit_sha", "profile"])


MIGRATIONS: dict[int, Callable[[Database], None]] = {1: _create_v1, 2: _add_purpose_v2, 3: _add_warmup_v3,
                                                     4: _add_blocks_v4, 5: _add_topology_v5, 6: _add_master_v6,
                                                     7: _add_metrics_v7, 8: _add_capacity_v8}
"""Version N's step, applied to a file at version N - 1 (0 is an empty file)."""


class Store:
    """Runs by commit, in a SQLite file.

    ``create=False`` opens an existing store only: the commands that just read use
    it, so a mistyped ``--db`` is an error instead of a new empty store.
    """

    def __init__(self, path: Path, *, create: bool = True,
                 busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        if not create and not path.is_file():
            raise StoreNotFoundError(f"no store at {path}; record runs with `perfgate run` or pass --db")
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            # mode=rw never creates the file; SQLite still falls back to read-only for a write-protected one.
            self.db = self._open(f"mode={'rwc' if create else 'rw'}", create)
        except sqlite3.DatabaseError as exc:
            if create or not _is_read_only(exc):
                raise _store_error(path, exc) from None
            # A WAL file in a folder this process cannot write: SQLite can only read it as immutable.
            try:
                self.db = self._open("mode=ro&immutable=1", create)
            except sqlite3.DatabaseError as again:
                raise _store_error(path, again) from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store ({exc.strerror or exc}); "
                             "pass --db with a writable path") from None

    def _open(self, mode: str, create: bool) -> Database:
        uri = f"file:{quote(str(self.path.absolute()))}?{mode}"
        db = Database(sqlite3.connect(uri, uri=True, timeout=min(self.busy_timeout_s, _POLL_S),
                                      isolation_level=None))
        try:
            self.db = db
            if not create and self._patiently(self._version) == 0:
                raise StoreNotFoundError(f"no store at {self.path} (the file is empty); record runs with "
                                         "`perfgate run` or pass --db")
            self._patiently(self._use_wal)
            self._migrate(create)
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _patiently(self, action: Callable[[], T]) -> T:
        """Run ``action``, again while the store is locked by another process, until the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction that holds the write lock from its first statement (``BEGIN IMMEDIATE``)."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write(self, action: Callable[[], T]) -> T:
        """``action`` in one immediate transaction, waiting for the write lock up to the busy timeout."""
        def attempt() -> T:
            with self._writing():
                return action()
        return self._patiently(attempt)

    def _use_wal(self) -> None:
        mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() == "wal":
            return
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if not _is_read_only(exc):  # a read-only file stays readable in its own mode
                raise

    def _version(self) -> int:
        # One statement, so one snapshot: another process may create the whole schema between two reads.
        tables = {row[0] for row in self.db.execute("select name from sqlite_master where type = 'table'")}
        if "perfgate_meta" not in tables:
            if tables:
                raise StoreError(f"{self.path}: this SQLite file is not a perfgate store; pass --db with another path")
            return 0
        row = self.db.execute("select value from perfgate_meta where key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row else 0
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: damaged schema version {row[0]!r}; pass --db with another path") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer perfgate (schema {version}, this one knows "
                             f"{SCHEMA_VERSION}); upgrade perfgate")
        return version

    def _migrate(self, create: bool) -> None:
        version = self._patiently(self._version)
        if version == SCHEMA_VERSION:
            return  # the common case writes nothing: a read-only store stays readable

        def migrate() -> None:
            # Read again under the write lock: another process may have migrated the file meanwhile.
            current = self._version()
            if current == SCHEMA_VERSION:
                return
            for step in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](self.db)
            self.db.table("perfgate_meta").insert({"key": "schema_version", "value": str(SCHEMA_VERSION)},
                                            pk="key", replace=True)
        self._write(migrate)

    def check_writable(self) -> None:
        """Fail now, before a long load run, if the run could not be saved afterwards."""
        def probe() -> None:
            self.db.execute("create table if not exists perfgate_write_probe (x)")
            self.db.execute("drop table perfgate_write_probe")
        try:
            self._write(probe)
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None

    def save(self, run: RunRecord) -> RunRecord:
        """Store a run and its endpoints in one transaction; returns the run with its id.

        Waits for another writer's lock up to the busy timeout; raises :class:`StoreError`
        when the run could not be written (nothing of it is then in the store).
        """
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
            "pair_id": run.pair_id, "trial_id": run.trial_id, "purpose": str(run.purpose),
            "warmup_end_s": run.warmup_end_s, "warnings": json.dumps(run.warnings),
            "topology": run.topology.model_dump_json() if run.topology.workers else None,
            "master": run.master.model_dump_json() if run.master else None,
            "metrics": run.metrics.model_dump_json() if run.metrics else None,
        }
        endpoint_rows = [
            {**e.stats.model_dump(exclude={"failures_by_type"}),
             "failures_by_type": json.dumps(e.stats.failures_by_type),
             "histogram": e.histogram.to_bytes(),
             "series": json.dumps([b.model_dump() for b in e.series], separators=(",", ":")),
             "blocks": None if e.block_s is None else json.dumps(
                 {"s": e.block_s, "blocks": [b.model_dump() for b in e.blocks]}, separators=(",", ":"))}
            for e in run.endpoints
        ]

        def insert() -> int:
            run_id = self.db.table("runs").insert(row).last_pk
            if run_id is None:  # sqlite-utils sets it after every insert into a table with a primary key
                raise sqlite3.DatabaseError("the run's row got no id")
            self.db.table("endpoints").insert_all({**e, "run_id": run_id} for e in endpoint_rows)
            return int(run_id)
        try:
            run_id = self._write(insert)
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None
        return run.model_copy(update={"id": run_id})

    def save_capacity(self, record: CapacityRecord) -> CapacityRecord:
        """Store a capacity search (its steps inside it) in one transaction; returns it with its id."""
        row = {"started_at": record.started_at.isoformat(), "commit_sha": record.git.commit,
               "branch": record.git.branch, "dirty": int(record.git.dirty), "profile": record.profile.name,
               "env_key": environment_key(record.environment),
               "record": record.model_dump_json(exclude={"id"})}

        def insert() -> int:
            record_id = self.db.table("capacity").insert(row).last_pk
            if record_id is None:
                raise sqlite3.DatabaseError("the capacity search's row got no id")
            return int(record_id)
        try:
            record_id = self._write(insert)
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None
        return record.model_copy(update={"id": record_id})

    def capacity_records(self, *, commit: str | None = None, profile: str | None = None,
                         limit: int | None = None) -> list[CapacityRecord]:
        """Capacity searches matching every filter given, newest first (a commit may be a SHA prefix)."""
        where, params = _filters(commit=commit, profile=profile)
        try:
            rows = self._patiently(lambda: list(self.db.table("capacity").rows_where(
                where, params, order_by="id desc", limit=limit)))
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None
        records = []
        for row in rows:
            try:
                record = CapacityRecord.model_validate({**_json(row["record"]), "id": row["id"]})
                if record.started_at.tzinfo is None:
                    raise ValueError("started_at has no time zone")
                _require_finite(record.model_dump())
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                raise StoreError(f"{self.path}: capacity search {row.get('id')} is damaged ({_reason(exc)}); "
                                 "delete it from the store or pass --db with another store") from None
            records.append(record)
        return records

    def find_same(self, run: RunRecord) -> int | None:
        """The id of a stored run with the same start time, commit and profile as ``run``, if any."""
        try:
            row = self._patiently(lambda: self.db.execute(
                "select id from runs where started_at = ? and commit_sha is ? and profile = ? order by id limit 1",
                [run.started_at.isoformat(), run.git.commit, run.profile.name]).fetchone())
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None
        return int(row[0]) if row else None

    def runs(self, *, commit: str | None = None, branch: str | None = None, profile: str | None = None,
             limit: int | None = None, endpoints: bool = True) -> list[RunRecord]:
        """Runs matching every filter given, newest first (a commit may be a SHA prefix).

        ``endpoints=False`` leaves each run's endpoints empty and reads no samples: for listings.
        """
        where, params = _filters(commit=commit, branch=branch, profile=profile)
        try:
            rows = self._patiently(lambda: list(self.db.table("runs").rows_where(where, params, order_by="id desc",
                                                                            limit=limit)))
            return [self._run(row, endpoints) for row in rows]
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None

    def comparable_runs(self, commit: str, profile: str, *, environment: str | None = None) -> list[RunRecord]:
        """The runs a baseline or a history may use: of a committed tree (not a dirty one), never the
        re-measurements of a confirmation nor a side of a same-moment run; with ``environment``
        (an :func:`environment_key`), only valid runs on that environment. Newest first."""
        return [
            r
            for r in self.runs(commit=commit, profile=profile)
            if not r.git.dirty
            and r.purpose not in (RunPurpose.CONFIRM, RunPurpose.DUET)
            and (environment is None or (r.valid and environment_key(r.environment) == environment))
        ]

    def get(self, run_id: int) -> RunRecord:
        if not -(2**63) <= run_id < 2**63:  # beyond SQLite's integers: no such run, not a crash
            raise RunNotFoundError(f"no run {run_id} in {self.path}: run ids are whole numbers as listed by "
                                   "`perfgate runs`")
        not_found = RunNotFoundError(f"no run {run_id} in {self.path}; list runs with `perfgate runs`")
        try:
            rows = self._patiently(lambda: list(self.db.table("runs").rows_where("id = ?", [run_id])))
            if not rows:
                raise not_found
            return self._run(rows[0])
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from None

    def _run(self, row: dict[str, Any], with_endpoints: bool = True) -> RunRecord:
        run_id = row.get("id")
        endpoints = []
        if with_endpoints:
            endpoint_rows = self._patiently(lambda: list(self.db.table("endpoints").rows_where(
                "run_id = ?", [run_id], order_by="id")))
            endpoints = [self._endpoint(run_id, e) for e in endpoint_rows]
        try:
            started_at = datetime.fromisoformat(_text(row["started_at"]))
            if started_at.tzinfo is None:
                raise ValueError(f"started_at {row['started_at']!r} has no time zone")
            run = RunRecord(
                id=run_id, started_at=started_at, duration_s=row["duration_s"],
                profile=ResolvedProfile.model_validate(_json(row["parameters"])),
                git=GitInfo(commit=row["commit_sha"], branch=row["branch"], dirty=row["dirty"]),
                environment=EnvironmentFingerprint.model_validate(_json(row["environment"])),
                endpoints=endpoints,
                checks=[CheckResult.model_validate(c) for c in _json(row["checks"], [])],
                total_requests=row["total_requests"], total_failures=row["total_failures"],
                achieved_rps=row["achieved_rps"], locust_request_count=row["locust_request_count"],
                recorded_request_count=row["recorded_request_count"], warmup_excluded=row["warmup_excluded"],
                valid=row["valid"], invalid_reasons=_json(row["invalid_reasons"], []),
                service=ServiceUsage.model_validate(_json(row["service"])) if row["service"] else None,
                pair_id=row["pair_id"], trial_id=row["trial_id"], purpose=row["purpose"],
                warmup_end_s=row.get("warmup_end_s"), warnings=_json(row.get("warnings"), []),
                topology=Topology.model_validate(_json(row["topology"])) if row.get("topology") else Topology(),
                master=MasterUsage.model_validate(_json(row["master"])) if row.get("master") else None,
                metrics=ServiceMetrics.model_validate(_json(row["metrics"])) if row.get("metrics") else None,
            )
            _require_finite(run.model_dump(exclude={"endpoints"}))
        except (ValueError, TypeError, KeyError, OverflowError) as exc:  # ValidationError is a ValueError
            raise StoreError(f"{self.path}: run {run_id} is damaged ({_reason(exc)}); delete it from the store "
                             "or pass --db with another store") from None
        return run

    def _endpoint(self, run_id: object, row: dict[str, Any]) -> EndpointResult:
        where = f"{self.path}: run {run_id} endpoint {row.get('method')} {row.get('name')}"
        try:
            histogram = LatencyHistogram.from_bytes(row["histogram"])
        except (SampleDecodeError, TypeError) as exc:
            raise StoreError(f"{where}: damaged samples ({exc}); delete the run from the store "
                             "or pass --db with another store") from None
        try:
            stats = EndpointStats.model_validate(
                {**{k: row[k] for k in EndpointStats.model_fields if k != "failures_by_type"},
                 "failures_by_type": _json(row["failures_by_type"], {})})
            series = [SecondBucket.model_validate(b) for b in _json(row["series"], [])]
            blocks = _json(row.get("blocks"), {})
            result = EndpointResult(stats=stats, histogram=histogram, series=series, block_s=blocks.get("s"),
                                    blocks=[Block.model_validate(b) for b in blocks.get("blocks", ())])
            _require_finite(result.model_dump())
        except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as exc:
            raise StoreError(f"{where} is damaged ({_reason(exc)}); delete the run from the store "
                             "or pass --db with another store") from None
        return result


def _filters(*, commit: str | None = None, branch: str | None = None,
             profile: str | None = None) -> tuple[str | None, list[str]]:
    """The ``where`` clause and its parameters of a listing: a commit SHA prefix, a branch, a profile."""
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
    return " and ".join(clauses) or None, params


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _json(value: object, empty: Any = None) -> Any:
    """A JSON column, strictly: no NaN or Infinity, no number too large for a float."""
    if value is None or value == "":
        return empty
    return strict_json(_text(value))


def _require_finite(value: object, where: str = "") -> None:
    """Raise ``ValueError`` naming the first non-finite float in a dumped model."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'a value'} is {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _require_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _require_finite(item, f"{where}[{index}]")


def _reason(exc: Exception) -> str:
    """One line out of an exception (pydantic's first error, with its field)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return f"{field}: {first['msg']}" if field else first["msg"]
    if isinstance(exc, KeyError):
        return f"missing column {exc}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _is_read_only(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc)
    return "readonly" in text or "unable to open" in text


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreBusyError(f"{path}: the store stayed locked by another process beyond the busy timeout; "
                              "wait for it to finish and retry")
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path}: not a perfgate SQLite store ({text}); pass --db with another path")
    if "full" in text or "disk I/O" in text:
        try:
            full = shutil.disk_usage(path.absolute().parent).free < 256 * 1024
        except OSError:
            full = False
        if "full" in text or full:  # SQLite reports a full disk as an I/O error when the lock file cannot grow
            return StoreDiskError(f"{path}: the disk is full ({text}); free some space or pass --db on another disk")
        return StoreDiskError(f"{path}: the disk refused a read or write ({text}); check the disk or pass --db "
                              "on another one")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(f"{path}: cannot write the store ({text}); make the folder writable or pass --db")
    return StoreError(f"{path}: store error ({text})")
