"""Store faults on real SQLite files and real processes: nothing finished is lost, nothing damaged passes.

Concurrent writers wait for the lock; a run the store cannot take (lock beyond the
busy timeout, read-only store, full disk) is kept in a spill file that
`perfgate import` stores unchanged; a kill mid-save leaves whole runs; commands
that only read create no store; a damaged row is one clear line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from perfgate.errors import ExitCode, RunNotStoredError, SpillFileError, StoreError, StoreNotFoundError
from perfgate.measure.record import store_run
from perfgate.records import RunPurpose
from perfgate.spill import read_spill, write_spill
from perfgate.store import SCHEMA_VERSION, Store

from conftest import LOCUSTFILES, REPO_ROOT, run_cli
from fakes.store_checks import count_rows, same_run
from fakes.store_processes import LOCK_HOLDER, SAVE_LOOP, SAVE_ONE, WRITER, python_process, stop
from fakes.synthetic import make_run

TESTS = Path(__file__).resolve().parents[1]




@contextmanager
def lock_held(db: Path, seconds: float) -> Iterator[None]:
    """Another process holds the store's write lock (BEGIN IMMEDIATE) for ``seconds``."""
    holder = python_process(LOCK_HOLDER, str(db), str(seconds))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked", holder.stderr
        yield
    finally:
        stop(holder)


def test_a_save_waits_for_a_write_lock_held_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    run = make_run()
    with lock_held(db, 3.0), Store(db) as store:
        started = time.monotonic()
        saved = store_run(store, run)
        waited = time.monotonic() - started
    assert waited > 2.0  # it waited for the lock instead of failing at once
    with Store(db) as store:
        same_run(store.get(saved.id), run)
    assert not (tmp_path / "unsaved").exists()


def test_a_lock_beyond_the_busy_timeout_spills_the_run_and_import_stores_it_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).save(make_run(commit="b" * 40))
    run = make_run(seed=5)
    with lock_held(db, 3.0), Store(db, busy_timeout_s=0.5) as store, pytest.raises(RunNotStoredError) as caught:
        store_run(store, run)
    error = caught.value
    path = error.spill_path
    assert path is not None and path.parent == tmp_path / "unsaved" and path.is_file()
    assert error.exit_code == ExitCode.TOOL
    assert str(path) in str(error) and "perfgate import" in str(error) and "locked" in str(error)
    assert "\n" not in str(error)
    assert count_rows(db) == 1

    imported = run_cli("import", str(path), "--db", str(db), cwd=tmp_path)
    assert imported.code == 0, imported.stderr
    assert f"stored {path} as run 2" in imported.stdout
    again = run_cli("import", str(path), "--db", str(db), cwd=tmp_path)
    assert again.code == 0 and "skipped" in again.stdout and "already stored as run 2" in again.stdout
    assert count_rows(db) == 2 and path.is_file()  # kept: deleting is the user's call
    with Store(db) as store:
        same_run(store.get(2), run)


def test_four_processes_saving_25_runs_each_store_all_100(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    go = tmp_path / "go"
    writers = [python_process(WRITER, str(db), str(worker), "25", str(go)) for worker in range(4)]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        go.touch()
        results = [writer.communicate(timeout=240) for writer in writers]
    finally:
        for writer in writers:
            stop(writer)
    assert [w.returncode for w in writers] == [0, 0, 0, 0], [err for _, err in results]
    assert count_rows(db) == 100
    assert count_rows(db, "select count(distinct commit_sha) from runs") == 100
    assert count_rows(db, "select count(*) from endpoints") == 200


OPENER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from perfgate.store import Store
    db, go = Path(sys.argv[1]), Path(sys.argv[2])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    with Store(db) as store:
        store.check_writable()
""")


def test_two_processes_creating_a_fresh_store_at_once_both_succeed(tmp_path: Path) -> None:
    for round_ in range(3):
        db = tmp_path / f"fresh{round_}" / "s.db"
        go = tmp_path / f"go{round_}"
        openers = [python_process(OPENER, str(db), str(go)) for _ in range(2)]
        try:
            for opener in openers:
                assert opener.stdout is not None and opener.stdout.readline().strip() == "ready"
            go.touch()
            errors = [opener.communicate(timeout=60)[1] for opener in openers]
        finally:
            for opener in openers:
                stop(opener)
        assert [o.returncode for o in openers] == [0, 0], errors
        assert count_rows(db, "select value from perfgate_meta where key = 'schema_version'") == str(SCHEMA_VERSION)
        with Store(db) as store:
            assert store.save(make_run()).id == 1


def _without_permission_override() -> list[str]:
    """As root, drop the capabilities that ignore file permissions, so a read-only file is read-only."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made here")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]




def test_a_read_only_store_spills_the_run_with_exit_4(tmp_path: Path) -> None:
    # A write-protected file (for real: the process runs without the capability that lets root ignore
    # permissions). SQLite opens it read-only, the reads work, the save is refused: the write the
    # probe before a run would catch, happening at save time instead, as when the store changes under a run.
    db = tmp_path / "s.db"
    Store(db).save(make_run(commit="b" * 40))
    db.chmod(0o444)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO_ROOT)])}
    try:
        done = subprocess.run([*_without_permission_override(), sys.executable, "-c", SAVE_ONE, str(db)],
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        db.chmod(0o644)
    assert done.returncode == ExitCode.TOOL, done.stderr
    assert "readonly" in done.stderr and "perfgate import" in done.stderr
    spilled = Path(done.stdout.strip())
    assert spilled.parent == tmp_path / "unsaved" and str(spilled) in done.stderr
    assert count_rows(db) == 1
    imported = run_cli("import", str(spilled), "--db", str(db), cwd=tmp_path)
    assert imported.code == 0, imported.stderr
    with Store(db) as store:
        same_run(store.get(2), make_run(seed=7))


def test_when_beside_the_store_fails_too_the_run_goes_to_a_temporary_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "unsaved").write_text("a file where the spill folder should be")
    run = make_run()
    path, failures = write_spill(run, tmp_path / "s.db", "testing")
    assert path is not None and path.parent.parent == tmp_path / "tmp"
    assert path.parent.name.startswith("perfgate-unsaved-")
    assert len(failures) == 1 and str(tmp_path / "unsaved") in failures[0]
    assert read_spill(path).run == run


def test_a_full_disk_before_a_run_is_exit_4_before_any_load(tmp_path: Path, small_disk: Path) -> None:
    db = small_disk / "runs.db"
    Store(db).close()
    with (small_disk / "filler").open("wb") as filler, pytest.raises(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    started = time.monotonic()
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", "http://127.0.0.1:9", "-t", "30s",
                     "--db", str(db), cwd=tmp_path, env={"TMPDIR": str(tmp_path)})
    assert result.code == ExitCode.TOOL, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("perfgate: error:") and "full" in line and str(db) in line
    assert time.monotonic() - started < 20  # refused by the probe, not after a 30 s load


# Saves runs of 1-6 endpoints; the profile name says how many, so a half-written run would show.


def test_kill_9_in_the_middle_of_saves_leaves_whole_runs_and_a_sound_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    for delay in (0.0, 0.013, 0.029):
        saver = python_process(SAVE_LOOP, str(db), start_new_session=True)
        try:
            assert saver.stdout is not None
            for _ in range(5):
                assert saver.stdout.readline().strip() == "saved", saver.stderr
            time.sleep(delay)
            os.kill(saver.pid, signal.SIGKILL)
        finally:
            stop(saver)
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        per_run = conn.execute("select r.profile, count(e.id) from runs r left join endpoints e "
                               "on e.run_id = r.id group by r.id").fetchall()
    assert len(per_run) >= 15
    assert all(profile == f"k{count}" for profile, count in per_run), per_run
    with Store(db) as store:
        assert len(store.runs()) == len(per_run)


READ_ONLY_COMMANDS = [
    ("runs",), ("show", "1"), ("compare",), ("report", "-o", "r.html"), ("history",),
    ("baseline", "accept", "--reason", "x"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_commands_that_only_read_create_no_store_at_a_mistyped_db(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = tmp_path / "typo" / "perfgate.db"
    result = run_cli(*command, "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"perfgate: error: no store at {db}; record runs with `perfgate run` or pass --db"]
    assert not (tmp_path / "typo").exists()


def test_opening_for_reading_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no store at"):
        Store(tmp_path / "nope.db", create=False)
    (tmp_path / "empty.db").touch()
    with pytest.raises(StoreNotFoundError, match="empty"):
        Store(tmp_path / "empty.db", create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    assert (tmp_path / "empty.db").stat().st_size == 0


DAMAGE = {
    "bad JSON": "update runs set checks = '{not json'",
    "JSON NaN": "update runs set parameters = replace(parameters, '\"users\":5', '\"users\":NaN')",
    "text for a number": "update runs set duration_s = 'ten'",
    "naive started_at": "update runs set started_at = '2026-01-02T03:04:05'",
    "number for a date": "update runs set started_at = 42",
    "infinite rate": "update runs set achieved_rps = 1e999",
    "not a flag": "update runs set valid = 'maybe'",
    "null environment": "update runs set environment = 'null'",
    "endpoint p50 text": "update endpoints set p50 = 'fast' where id = 2",
    "endpoint infinite max": "update endpoints set max = -1e999 where id = 1",
    "series garbage": "update endpoints set series = '[{\"t\": \"soon\"}]' where id = 1",
    "samples not a blob": "update endpoints set histogram = 12 where id = 1",
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_row_is_one_store_error_naming_the_run(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "s.db"
    with Store(db) as store:
        store.save(make_run())
    with sqlite3.connect(db) as conn:
        assert conn.execute(damage).rowcount == 1
    with Store(db) as store:
        with pytest.raises(StoreError) as caught:
            store.get(1)
        with pytest.raises(StoreError):
            store.runs()
    message = str(caught.value)
    assert "run 1" in message and "\n" not in message and "delete" in message


def test_a_damaged_row_from_the_cli_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store(db) as store:
        store.save(make_run())
    with sqlite3.connect(db) as conn:
        conn.execute("update runs set started_at = '2026-01-02T03:04:05'")
    for command in (("show", "1"), ("runs",)):
        result = run_cli(*command, "--db", str(db), cwd=tmp_path)
        assert result.code == ExitCode.USAGE and "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("perfgate: error:") and "run 1 is damaged" in line and "time zone" in line


def test_a_run_id_beyond_sqlite_is_simply_not_found(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    result = run_cli("show", "99999999999999999999", "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE and "no run 99999999999999999999" in result.stderr
    assert "Traceback" not in result.stderr


def _spill_json(tmp_path: Path) -> tuple[Path, dict]:
    path, _ = write_spill(make_run(), tmp_path / "s.db", "testing")
    assert path is not None
    return path, json.loads(path.read_text())


SPILL_DAMAGE = {
    "not JSON": lambda d: "{broken",
    "other format": lambda d: {**d, "format": "something-else"},
    "newer version": lambda d: {**d, "version": 2},
    "extra field": lambda d: {**d, "surprise": 1},
    "naive written_at": lambda d: {**d, "written_at": "2026-01-02T03:04:05"},
    "naive started_at": lambda d: {**d, "run": {**d["run"], "started_at": "2026-01-02T03:04:05"}},
    "huge integer": lambda d: {**d, "run": {**d["run"], "total_requests": 10**30}},
    "endpoints inside the run": lambda d: {**d, "run": {**d["run"], "endpoints": [{"x": 1}]}},
    "bad base64": lambda d: {**d, "endpoints": [{**d["endpoints"][0], "histogram": "!!!"}]},
    "not a histogram": lambda d: {**d, "endpoints": [{**d["endpoints"][0], "histogram": "AAAA"}]},
    "wrong type": lambda d: {**d, "run": {**d["run"], "duration_s": "long"}},
}


@pytest.mark.parametrize("damage", SPILL_DAMAGE.values(), ids=SPILL_DAMAGE.keys())
def test_a_damaged_spill_file_is_refused_in_one_line(tmp_path: Path, damage) -> None:
    path, data = _spill_json(tmp_path)
    changed = damage(data)
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(SpillFileError) as caught:
        read_spill(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1e400"])
def test_a_spill_file_with_a_non_finite_number_is_refused(tmp_path: Path, text: str) -> None:
    path, _ = _spill_json(tmp_path)
    raw = path.read_text()
    assert '"duration_s": 10.0' in raw
    path.write_text(raw.replace('"duration_s": 10.0', f'"duration_s": {text}'))
    with pytest.raises(SpillFileError, match="non-finite|out of range"):
        read_spill(path)


def test_an_oversized_spill_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    path, _ = _spill_json(tmp_path)
    monkeypatch.setattr("perfgate.spill.MAX_SPILL_BYTES", 100)
    with pytest.raises(SpillFileError, match="more than the 100"):
        read_spill(path)


def test_import_checks_every_file_before_storing_any(tmp_path: Path) -> None:
    good, _ = _spill_json(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    db = tmp_path / "fresh" / "s.db"
    result = run_cli("import", str(good), str(bad), "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert str(bad) in line and "not a usable unsaved-run file" in line
    assert not db.exists()


def test_a_spilled_run_stops_an_ab_with_exit_4_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    from perfgate.ab import pairs as ab
    from perfgate.ab.session import run_ab
    from perfgate.config import CompareConfig, ResolvedProfile, ServeConfig

    db = tmp_path / "s.db"
    calls: list[str] = []

    def record_with_a_lock_at_the_third_run(request, store):  # record_run, without Locust
        calls.append(request.pair_id)
        run = make_run(commit=f"{len(calls):040x}", seed=len(calls)).model_copy(
            update={"pair_id": request.pair_id, "trial_id": request.trial_id, "purpose": RunPurpose(request.purpose)})
        if len(calls) < 3:
            return store_run(store, run)
        with lock_held(db, 2.0):
            return store_run(store, run)

    monkeypatch.setattr(ab, "record_run", record_with_a_lock_at_the_third_run)
    profile = ResolvedProfile(name="smoke", locustfile="/x/lf.py", host="http://127.0.0.1:{port}", users=5,
                              spawn_rate=5, run_time=12, warmup=2)
    plan = ab.AbPlan(profile=profile, serve=ServeConfig(command="serve {port}"),
                     base=ab.Version("base", tmp_path, tmp_path), head=ab.Version("head", tmp_path, tmp_path),
                     compare=CompareConfig(), looks=[3, 6], max_time_s=3600)
    with Store(db, busy_timeout_s=0.3) as store, pytest.raises(RunNotStoredError) as caught:
        run_ab(plan, store)
    message = str(caught.value)
    assert len(calls) == 3 and caught.value.exit_code == ExitCode.TOOL
    assert message.startswith("stopped at the ") and "pair" in message and "perfgate import" in message
    assert caught.value.spill_path is not None and str(caught.value.spill_path) in message
    assert read_spill(caught.value.spill_path).run.pair_id == calls[2]
    assert count_rows(db) == 2
