"""A disk that fills up during a real `perfgate run` (the demo service, real Locust): the run is spilled, not lost."""

from __future__ import annotations

from pathlib import Path

from perfgate.errors import ExitCode
from perfgate.spill import read_spill
from perfgate.store import Store

from conftest import DEMO_READY, DEMO_SERVE, LOCUSTFILES, run_cli
from fakes.store_checks import count_rows, same_run


def test_a_full_disk_during_perfgate_run_spills_the_run_and_exits_4(tmp_path: Path, small_disk: Path) -> None:
    db = small_disk / "runs.db"
    Store(db).close()
    filler = small_disk / "filler"
    # The service's start command fills the disk: after perfgate checked the store, before the load.
    serve = f"head -c 100000000 /dev/zero > {filler} 2>/dev/null; exec {DEMO_SERVE}"
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-t", "3s", "--warmup", "1s",
                     "--serve", serve, "--ready-url", DEMO_READY, "--db", str(db), cwd=tmp_path,
                     env={"TMPDIR": str(temp)})
    assert result.code == ExitCode.TOOL, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("perfgate: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "full" in errors[0] and "perfgate import" in errors[0]
    # Beside the store is the same full disk: the run is in a new temporary folder.
    (spilled,) = temp.glob("perfgate-unsaved-*/run-*.json")
    assert str(spilled) in errors[0]
    assert count_rows(db) == 0

    filler.unlink()
    imported = run_cli("import", str(spilled), "--db", str(db), cwd=tmp_path)
    assert imported.code == 0, imported.stderr
    with Store(db) as store:
        (stored,) = store.runs()
    same_run(stored, read_spill(spilled).run)
    assert stored.total_requests > 0 and stored.endpoints
