"""Bad input: one clear line, a distinct non-zero exit code, no traceback, nothing stored."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from perfgate.errors import ExitCode
from perfgate.measure.service import free_port

from conftest import DEMO_READY, LOCUSTFILES, run_cli

SHORT = ("-t", "3s", "--warmup", "1s")


def assert_one_clear_line(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("perfgate: error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def stored_runs(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
        return conn.execute("select count(*) from runs").fetchone()[0] if "runs" in tables else 0


def test_missing_locustfile(tmp_path: Path, demo_service) -> None:
    db = tmp_path / "r.db"
    result = run_cli("run", "-f", "nope.py", "-H", demo_service.host, *SHORT, "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "locustfile not found", "nope.py")
    assert stored_runs(db) == 0


def test_locustfile_with_syntax_error(tmp_path: Path, demo_service) -> None:
    (tmp_path / "broken.py").write_text("from locust import HttpUser\n\nclass U(HttpUser)\n    pass\n")
    db = tmp_path / "r.db"
    result = run_cli("run", "-f", "broken.py", "-H", demo_service.host, *SHORT, "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "broken.py:3", "fix the locustfile")
    assert stored_runs(db) == 0


def test_unreachable_host(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    port = free_port()  # nobody listens there
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", f"http://127.0.0.1:{port}", *SHORT,
                     "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.TOOL
    assert_one_clear_line(result.stderr, f"cannot connect to http://127.0.0.1:{port}", "--serve")
    assert stored_runs(db) == 0


def test_service_that_never_becomes_ready(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    serve = f"{sys.executable} -c \"import time; print('booting, but never listening', flush=True); time.sleep(60)\""
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "--serve", serve, "--ready-url", DEMO_READY,
                     "--ready-timeout", "2", *SHORT, "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.TOOL
    assert_one_clear_line(result.stderr, "was not ready", "within 2s")
    assert "booting, but never listening" in result.stderr  # the tail of the service's log
    assert stored_runs(db) == 0


def test_service_that_exits_at_start(tmp_path: Path) -> None:
    serve = f"{sys.executable} -c \"import sys; print('bad port config'); sys.exit(3)\""
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "--serve", serve, "--ready-url", DEMO_READY,
                     *SHORT, "--db", str(tmp_path / "r.db"), cwd=tmp_path)
    assert result.code == ExitCode.TOOL
    assert_one_clear_line(result.stderr, "exited with code 3")
    assert "bad port config" in result.stderr


def test_malformed_config_file(tmp_path: Path) -> None:
    (tmp_path / "perfgate.toml").write_text("[profiles.smoke\nusers = 3\n")
    result = run_cli("run", cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "perfgate.toml", "invalid TOML", "line 1")


def test_wrong_config_field_names_the_field_and_file(tmp_path: Path) -> None:
    (tmp_path / "perfgate.toml").write_text('[profiles.smoke]\nusers = 0\n')
    result = run_cli("run", cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "perfgate.toml", "profiles.smoke.users", "greater than or equal to 1")


def test_unknown_profile(tmp_path: Path, demo_service) -> None:
    result = run_cli("run", "--profile", "blazing", "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host,
                     cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "unknown profile 'blazing'", "smoke")


def test_database_file_that_is_not_sqlite(tmp_path: Path, demo_service) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 50)
    before = db.read_bytes()
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host, *SHORT,
                     "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "not a perfgate SQLite store", "--db")
    assert db.read_bytes() == before


def test_sqlite_file_of_another_program_is_left_alone(tmp_path: Path, demo_service) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table users (name text)")
    result = run_cli("runs", "--db", str(db), cwd=tmp_path)
    assert result.code == ExitCode.USAGE
    assert_one_clear_line(result.stderr, "not a perfgate store")
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["users"]


def _without_permission_override() -> list[str]:
    """As root, drop the capability that ignores folder permissions, so read-only means read-only."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made here")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_read_only_database_folder(tmp_path: Path, demo_service) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    try:
        done = subprocess.run(
            [*_without_permission_override(), sys.executable, "-m", "perfgate", "run",
             "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host, *SHORT, "--db", str(folder / "runs.db")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert_one_clear_line(done.stderr, "cannot", "runs.db")
    assert not (folder / "runs.db").exists()


HIDE_FASTAPI = '''
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("fastapi", "uvicorn"):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Hide())
sys.argv = ["perfgate", "demo"]
from perfgate.cli import main
main()
'''


def test_demo_without_its_extra_says_how_to_install_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", HIDE_FASTAPI], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "perfgate[demo]" in done.stderr and "Traceback" not in done.stderr
