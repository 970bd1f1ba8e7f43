"""The SQLite store: round trip, schema versions, atomic writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from perfgate.errors import RunNotFoundError, StoreError
from perfgate.records import RunPurpose
from perfgate.samples import LatencyHistogram
from perfgate.store import MIGRATIONS, SCHEMA_VERSION, Store

from fakes.synthetic import make_run


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


def test_listing_reads_no_samples(tmp_path: Path, monkeypatch) -> None:
    with Store(tmp_path / "s.db") as store:
        store.save(make_run())
        monkeypatch.setattr(LatencyHistogram, "from_bytes", classmethod(lambda cls, blob: pytest.fail("decoded")))
        (listed,) = store.runs(endpoints=False)
        assert listed.endpoints == [] and listed.total_requests == 1010


@pytest.mark.parametrize("purpose", list(RunPurpose))
def test_a_runs_purpose_is_stored_as_its_plain_name(tmp_path: Path, purpose: RunPurpose) -> None:
    with Store(tmp_path / "s.db") as store:
        store.save(make_run().model_copy(update={"purpose": purpose}))
        assert store.get(1).purpose is purpose
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("select purpose, typeof(purpose) from runs").fetchone() == (purpose.value, "text")


def test_a_distributed_runs_topology_and_master_are_stored_and_read_back(tmp_path: Path) -> None:
    from perfgate.environment import Topology
    from perfgate.records import MasterUsage

    machine = {"cpu_model": "AMD EPYC", "cores": 2, "os": "Linux 6.1"}
    topology = Topology.of_workers([{**machine, "group": g} for g in ("a", "a", "b", "b")])
    assert topology.workers == 4 and topology.processes == (2, 2)
    master = MasterUsage.of_samples([3.0, 5.0, 13.0])
    with Store(tmp_path / "runs.db") as store:
        distributed = store.save(make_run().model_copy(update={"topology": topology, "master": master}))
        alone = store.save(make_run(seed=1))
        assert store.get(distributed.id).topology == topology
        assert store.get(distributed.id).master == master == MasterUsage(cpu_mean=7.0, cpu_max=13.0, samples=3)
        assert store.get(alone.id).topology == Topology() and store.get(alone.id).master is None
