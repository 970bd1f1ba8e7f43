"""Fault injection on real processes and files: one table row per fault, expectation beside observation.

Run with ``uv run python tests/benchmarks/bench_faults.py`` (``--only NAME`` for some
rows). Each row is a function in :data:`FAULTS` that returns a :class:`Row`; a new
fault is one more function appended there. The script never stops at a failed row:
it prints them all, then exits 1 if any failed. Everything it creates lives in one
``perfgate-bench-faults-*`` folder (and ``perfgate-unsaved-*`` folders of spilled
runs), removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfgate.errors import ExitCode, RunNotStoredError  # noqa: E402
from perfgate.measure.record import store_run  # noqa: E402
from perfgate.records import RunRecord  # noqa: E402
from perfgate.store import DEFAULT_BUSY_TIMEOUT_S, Store  # noqa: E402

from fakes.store_processes import LOCK_HOLDER, SAVE_LOOP, SAVE_ONE, WRITER, python_process, stop  # noqa: E402
from fakes.synthetic import make_run  # noqa: E402


@dataclass(frozen=True)
class Row:
    fault: str
    expectation: str
    observed: str
    passed: bool | None
    """``None``: not measured here (the observation says why)."""


Fault = Callable[[Path], Row]





def _same(stored: RunRecord, original: RunRecord) -> bool:
    return stored.model_copy(update={"id": None}) == original.model_copy(update={"id": None}) and all(
        a.histogram.quantiles([0.5, 0.95, 0.99]) == b.histogram.quantiles([0.5, 0.95, 0.99])
        for a, b in zip(stored.endpoints, original.endpoints, strict=True))


def _import_and_check(spilled: Path, db: Path, original: RunRecord) -> bool:
    """``perfgate import`` as a user runs it; then the stored run must equal the original."""
    done = subprocess.run([sys.executable, "-m", "perfgate", "import", str(spilled), "--db", str(db)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return False
    with Store(db) as store:
        return any(_same(r, original) for r in store.runs())


def _remove_spill(path: Path | None) -> None:
    if path is not None and path.parent.name.startswith("perfgate-unsaved-"):
        shutil.rmtree(path.parent, ignore_errors=True)


def lock_held_40s(workdir: Path) -> Row:
    db = workdir / "lock.db"
    Store(db).close()
    run = make_run(seed=40)
    holder = python_process(LOCK_HOLDER, str(db), "40")
    spilled: Path | None = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with Store(db) as store:
            try:
                saved = store_run(store, run)
                with Store(db) as check:
                    whole = _same(check.get(saved.id), run)
                waited = time.monotonic() - started
                observed = f"stored after {waited:.1f} s of waiting; {'equal' if whole else 'DIFFERS'}"
            except RunNotStoredError as exc:
                spilled = exc.spill_path
                waited = time.monotonic() - started
                holder.communicate(timeout=60)
                whole = spilled is not None and _import_and_check(spilled, db, run)
                observed = (f"spilled after {waited:.1f} s, exit {int(exc.exit_code)}; re-imported: "
                            f"{'equal' if whole else 'LOST'}")
    finally:
        stop(holder)
        _remove_spill(spilled)
    return Row("write lock held 40 s during a save",
               f"stored after the wait (busy timeout {DEFAULT_BUSY_TIMEOUT_S:g} s), or spilled and re-imported",
               observed, whole)


def api_4x25(workdir: Path) -> Row:
    db = workdir / "api.db"
    Store(db).close()
    go = workdir / "go"
    writers = [python_process(WRITER, str(db), str(w), "25", str(go)) for w in range(4)]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        started = time.monotonic()
        go.touch()
        for writer in writers:
            writer.communicate(timeout=600)
        elapsed = time.monotonic() - started
    finally:
        for writer in writers:
            stop(writer)
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select count(*) from runs").fetchone()[0]
        endpoints = conn.execute("select count(*) from endpoints").fetchone()[0]
    failed = sum(w.returncode != 0 for w in writers)
    return Row("4 processes x 25 saves through the API at once", "100 of 100 stored",
               f"{runs} of 100 stored ({endpoints} endpoints), {failed} writer(s) failed, {elapsed:.1f} s",
               runs == 100 and endpoints == 200 and failed == 0)


def disk_full(workdir: Path) -> Row:
    fault, expectation = "disk full on a 4 MB filesystem during a save", "spilled, exit 4, re-imported whole"
    mount = workdir / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        return Row(fault, expectation, "not measured: no mount command (see the read-only row)", None)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "perfgate-bench", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return Row(fault, expectation, f"not measured: mount refused ({done.stderr.strip()}); see the read-only row",
                   None)
    spilled: Path | None = None
    try:
        db = mount / "runs.db"
        run = make_run(seed=11)
        with Store(db) as store:
            store.save(make_run(commit="b" * 40, seed=10))
            store.check_writable()  # the probe before a run passes: the disk fills during the run
            with (mount / "filler").open("wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                except OSError:
                    pass
            try:
                store_run(store, run)
                return Row(fault, expectation, "stored although the disk was full", False)
            except RunNotStoredError as exc:
                spilled = exc.spill_path
                code = int(exc.exit_code)
                where = "a temporary folder" if spilled and spilled.parent.name.startswith("perfgate-") else "beside"
        (mount / "filler").unlink()
        whole = spilled is not None and _import_and_check(spilled, db, run)
        return Row(fault, expectation, f"spilled to {where}, exit {code}; re-imported: {'equal' if whole else 'LOST'}",
                   whole and code == ExitCode.TOOL)
    finally:
        _remove_spill(spilled)
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)




def read_only_store(workdir: Path) -> Row:
    """A write-protected store file; as root, without the capability that overrides permissions."""
    fault, expectation = "read-only store file during a save", "spilled, exit 4, re-imported whole"
    db = workdir / "ro.db"
    Store(db).save(make_run(commit="b" * 40, seed=1))
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return Row(fault, expectation, "not measured: root without setpriv cannot be refused a write", None)
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
    db.chmod(0o444)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO_ROOT)])}
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", SAVE_ONE, str(db)], env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        db.chmod(0o644)
    spilled = Path(done.stdout.strip()) if done.stdout.strip() else None
    whole = spilled is not None and _import_and_check(spilled, db, make_run(seed=7))
    return Row(fault, expectation, f"exit {done.returncode}; spilled: {'yes' if spilled else 'NO'}; "
               f"re-imported: {'equal' if whole else 'LOST'}", whole and done.returncode == ExitCode.TOOL)


def kill_9_mid_save(workdir: Path) -> Row:
    db = workdir / "kill.db"
    Store(db).close()
    for delay in (0.0, 0.007, 0.013, 0.021, 0.029):
        saver = python_process(SAVE_LOOP, str(db), start_new_session=True)
        try:
            assert saver.stdout is not None
            for _ in range(5):
                saver.stdout.readline()
            time.sleep(delay)
            os.kill(saver.pid, signal.SIGKILL)
        finally:
            stop(saver)
    with sqlite3.connect(db) as conn:
        integrity = conn.execute("pragma integrity_check").fetchone()[0]
        per_run = conn.execute("select r.profile, count(e.id) from runs r left join endpoints e "
                               "on e.run_id = r.id group by r.id").fetchall()
    broken = sum(profile != f"k{count}" for profile, count in per_run)
    return Row("kill -9 in the middle of a save loop (5 kills)", "integrity_check ok; every run whole or absent",
               f"integrity {integrity}; {len(per_run)} runs, {broken} half-written", integrity == "ok" and not broken)


def _row_of(function: Callable[[], tuple[str, str, str, bool]]) -> Fault:
    """A row function of the gate's or the signal modules (they keep their own folders) as a Fault."""
    def fault(_workdir: Path) -> Row:
        return Row(*function())
    fault.__name__ = function.__name__
    return fault


import faults_gate  # noqa: E402 - rows of the gate: a broken head, four runs saving at once
import faults_signals  # noqa: E402 - crash inputs and stop signals

FAULTS: list[Fault] = [
    *map(_row_of, faults_gate.FAULTS),
    lock_held_40s, api_4x25, disk_full, read_only_store, kill_9_mid_save,
    *map(_row_of, faults_signals.FAULTS),
]
"""Every row of the table, in order; a new fault is a function taking a work folder and returning a Row."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="Run only this row's function (repeatable).")
    args = parser.parse_args()
    chosen = [f for f in FAULTS if not args.only or f.__name__ in args.only]
    rows = []
    for fault in chosen:
        workdir = Path(tempfile.mkdtemp(prefix="perfgate-bench-faults-"))
        started = time.monotonic()
        try:
            row = fault(workdir)
        except Exception as exc:  # a broken row is a failed row, and the others still run
            row = Row(fault.__name__, "", f"crashed: {type(exc).__name__}: {exc}", False)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        rows.append(row)
        print(f"  {row.fault}: {row.observed} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print("| fault | expectation | observed | result |")
    print("|---|---|---|---|")
    for row in rows:
        result = "skipped" if row.passed is None else "pass" if row.passed else "FAIL"
        print(f"| {row.fault} | {row.expectation} | {row.observed} | {result} |")
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
