"""The SQLite store: round trip, schema versions, atomic writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import ResolvedProfile
from perfgate.errors import RunNotFoundError, StoreError
from perfgate.models import (
    CheckResult,
    EndpointResult,
    EndpointStats,
    EnvironmentFingerprint,
    GitInfo,
    ResourceSample,
    RunRecord,
    SecondBucket,
    ServiceUsage,
)
from perfgate.samples import LatencyHistogram
from perfgate.store import MIGRATIONS, SCHEMA_VERSION, Store


def make_run(commit: str = "a" * 40, branch: str = "main", profile: str = "smoke", seed: int = 0) -> RunRecord:
    rng = np.random.default_rng(seed)
    endpoints = []
    for name in ("/items", "/orders"):
        values = rng.lognormal(np.log(20), 0.4, 500)
        endpoints.append(EndpointResult(
            stats=EndpointStats(method="GET", name=name, count=505, failures=5, failures_by_type={"HTTP 500": 5},
                                rps=50.5, min=float(values.min()), p50=float(np.quantile(values, 0.5)),
                                p90=float(np.quantile(values, 0.9)), p95=float(np.quantile(values, 0.95)),
                                p99=float(np.quantile(values, 0.99)), max=float(values.max()),
                                mean=float(values.mean())),
            histogram=LatencyHistogram.from_values(values),
            series=[SecondBucket(t=0, requests=50, failures=1, p50=19.5, p95=30.1)],
        ))
    return RunRecord(
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), duration_s=10.0,
        profile=ResolvedProfile(name=profile, locustfile="/x/lf.py", host="http://127.0.0.1:1", users=5,
                                spawn_rate=5, run_time=12, warmup=2),
        git=GitInfo(commit=commit, branch=branch, dirty=False),
        environment=EnvironmentFingerprint(cpu_model="cpu", cores=2, os="Linux", python="3.11", locust="2.47",
                                           perfgate="0.1"),
        endpoints=endpoints, checks=[CheckResult(name="no overselling", passed=True)],
        total_requests=1010, total_failures=10, achieved_rps=101.0, locust_request_count=1100,
        recorded_request_count=1100, warmup_excluded=90, valid=True,
        service=ServiceUsage(cpu_mean=10, cpu_max=20, rss_mean_mb=50, rss_max_mb=52, rss_growth_mb=1.5,
                             samples=[ResourceSample(t=1.0, cpu_percent=10, rss_mb=50)]),
    )


def test_round_trip(tmp_path: Path) -> None:
    original = make_run()
    with Store(tmp_path / "s.db") as store:
        saved = store.save(original)
        assert saved.id == 1
        loaded = store.get(1)
    assert loaded == saved
    assert loaded.endpoints[0].histogram == original.endpoints[0].histogram


def test_filters_and_order(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.save(make_run(commit="a" * 40))
        store.save(make_run(commit="b" * 40, branch="feature"))
        store.save(make_run(commit="a" * 40, profile="light"))
        assert [r.id for r in store.runs()] == [3, 2, 1]
        assert [r.id for r in store.runs(commit="aaaa")] == [3, 1]
        assert [r.id for r in store.runs(branch="feature")] == [2]
        assert [r.id for r in store.runs(commit="a", profile="smoke")] == [1]
        assert [r.id for r in store.runs(limit=1)] == [3]
        with pytest.raises(RunNotFoundError, match="no run 9"):
            store.get(9)


def test_schema_version_is_recorded_and_migrations_are_contiguous(tmp_path: Path) -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))
    Store(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("select value from perfgate_meta where key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),)
    with Store(tmp_path / "s.db") as store:  # reopening migrates nothing and keeps data
        store.save(make_run())
    with Store(tmp_path / "s.db") as store:
        assert len(store.runs()) == 1


def test_empty_sqlite_file_is_migrated_forward(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "s.db").close()
    with Store(tmp_path / "s.db") as store:
        assert store.save(make_run()).id == 1


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("update perfgate_meta set value = ? where key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    before = (tmp_path / "s.db").read_bytes()
    with pytest.raises(StoreError, match="newer perfgate"):
        Store(tmp_path / "s.db")
    assert (tmp_path / "s.db").read_bytes() == before


def test_failed_write_leaves_nothing_half_written(tmp_path: Path, monkeypatch) -> None:
    run = make_run()
    with Store(tmp_path / "s.db") as store:
        store.save(run)
        calls = []

        def fail_on_second(self) -> bytes:
            calls.append(1)
            if len(calls) == 2:
                raise OSError("disk full")
            return original_to_bytes(self)

        original_to_bytes = LatencyHistogram.to_bytes
        monkeypatch.setattr(LatencyHistogram, "to_bytes", fail_on_second)
        with pytest.raises(OSError, match="disk full"):
            store.save(run)
        monkeypatch.undo()
        assert [r.id for r in store.runs()] == [1]
        with sqlite3.connect(tmp_path / "s.db") as conn:
            assert conn.execute("select count(*) from endpoints").fetchone() == (2,)


def test_damaged_sample_blob_is_reported(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.save(make_run())
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("update endpoints set histogram = ? where id = 1", (b"garbage",))
    with Store(tmp_path / "s.db") as store, pytest.raises(StoreError, match="damaged samples"):
        store.get(1)


def test_locked_store_is_reported(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.save(make_run())
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("begin exclusive")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            Store(tmp_path / "s.db", busy_timeout_s=0.2).save(make_run())
    finally:
        holder.execute("rollback")
        holder.close()
