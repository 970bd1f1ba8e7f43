"""Load runs end by themselves, and so do their processes: interrupts, kills, hangs; shapes and selections."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from perfgate.config import ResolvedProfile
from perfgate.errors import LoadRunError
from perfgate.measure import locust as runner
from perfgate.measure import service

from conftest import LOCUSTFILES, run_cli

pytestmark = pytest.mark.slow


def _start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    """perfgate in its own session, its temporary files in ``cwd/tmp``: a perfgate killed outright cannot remove
    its own, and the test's folder takes them away."""
    (cwd / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(cwd / "tmp")}
    return subprocess.Popen([sys.executable, "-m", "perfgate", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)


def _wait_for_locust(parent: subprocess.Popen, cwd: Path, timeout_s: float = 30) -> list[psutil.Process]:
    """The processes the CLI started, once Locust has sent requests (its progress file counts them)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for progress in (cwd / "tmp").glob("perfgate-*/progress.json"):
            try:
                requests = json.loads(progress.read_text()).get("requests", 0)
            except (OSError, ValueError):
                continue  # being rewritten
            if requests > 0:
                return psutil.Process(parent.pid).children(recursive=True)
        time.sleep(0.1)
    raise AssertionError("Locust never sent a request")


def _runs_in(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        return conn.execute("select count(*) from runs").fetchone()[0]


def test_ctrl_c_stops_locust_and_stores_nothing(tmp_path: Path, demo_service) -> None:
    db = tmp_path / "r.db"
    cli = _start_cli("run", "-f", str(LOCUSTFILES / "demo.py"), "-H", demo_service.host, "-t", "60s",
                     "--db", str(db), cwd=tmp_path)
    children = _wait_for_locust(cli, tmp_path)
    cli.send_signal(signal.SIGINT)
    _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 130
    assert "perfgate: error: interrupted; nothing was stored" in stderr and "Traceback" not in stderr
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    assert _runs_in(db) == 0


def test_killed_perfgate_leaves_the_store_intact(tmp_path: Path, demo_service) -> None:
    db = tmp_path / "r.db"
    assert run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host, "-t", "3s", "--warmup",
                   "1s", "--db", str(db), cwd=tmp_path).code == 0
    cli = _start_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host, "-t", "60s",
                     "--db", str(db), cwd=tmp_path)
    children = _wait_for_locust(cli, tmp_path)
    cli.kill()
    cli.wait(timeout=10)
    for child in children:  # an orphaned Locust would stop by itself; do not wait a minute for it
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    assert _runs_in(db) == 1


HANGING_LOCUSTFILE = '''
import os, time
from locust import HttpUser, constant, events, task

with open(os.environ["HANG_PIDFILE"], "w") as pidfile:
    pidfile.write(str(os.getpid()))

class Pinger(HttpUser):
    wait_time = constant(0.2)

    @task
    def ping(self):
        self.client.get("/ping")

@events.quitting.add_listener
def never_finish(environment, **kwargs):
    while True:
        time.sleep(1)
'''


def test_hung_locust_is_killed_by_process_group(tmp_path: Path, demo_service, monkeypatch) -> None:
    locustfile = tmp_path / "hang.py"
    locustfile.write_text(HANGING_LOCUSTFILE)
    monkeypatch.setenv("HANG_PIDFILE", str(tmp_path / "pid"))
    monkeypatch.setattr(runner, "STARTUP_ALLOWANCE_S", 8.0)
    monkeypatch.setattr(runner, "BACKSTOP_S", 2.0)
    monkeypatch.setattr(runner, "SHUTDOWN_ALLOWANCE_S", 2.0)
    monkeypatch.setattr(service, "STOP_GRACE_S", 3.0)
    profile = ResolvedProfile(name="smoke", locustfile=str(locustfile), host=demo_service.host, users=2,
                              spawn_rate=2, run_time=2, warmup=0)
    started = time.monotonic()
    with pytest.raises(LoadRunError, match="did not finish within .* and was stopped"):
        runner.run_locust(profile, tmp_path / "work")
    assert time.monotonic() - started < 40
    pid = int((tmp_path / "pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_locust_crash_at_import_is_reported_with_its_log(tmp_path: Path, demo_service) -> None:
    locustfile = tmp_path / "crash.py"
    locustfile.write_text("import no_such_module_here\n")
    result = run_cli("run", "-f", str(locustfile), "-H", demo_service.host, "-t", "3s", "--warmup", "1s",
                     "--db", str(tmp_path / "r.db"), cwd=tmp_path)
    # perfgate loads the locustfile with Locust's own loader before the load (for its classes and shapes), so a
    # locustfile that cannot be imported is the user's to fix: one line, exit 2, before any load.
    assert result.code == 2, result.stderr
    assert "Locust cannot load" in result.stderr and "No module named 'no_such_module_here'" in result.stderr
    assert "Traceback" not in result.stderr


TWO_CLASSES = '''
from locust import HttpUser, constant_throughput, tag, task

class Reader(HttpUser):
    wait_time = constant_throughput(10)

    @tag("read")
    @task
    def health(self):
        self.client.get("/health")

    @tag("admin")
    @task
    def ping(self):
        self.client.get("/ping")

class Writer(HttpUser):
    wait_time = constant_throughput(10)

    @task
    def create(self):
        self.client.post("/items", json={"name": "x", "price": 1})
'''


def test_user_classes_tags_and_step_shape_from_config(tmp_path: Path, demo_service) -> None:
    (tmp_path / "two.py").write_text(textwrap.dedent(TWO_CLASSES))
    (tmp_path / "perfgate.toml").write_text(textwrap.dedent(f'''
        locustfile = "two.py"
        host = "{demo_service.host}"
        [profiles.stairs]
        extends = "smoke"
        users = 6
        run_time = "7s"
        warmup = 0
        user_classes = {{ Reader = 1 }}
        tags = ["read"]
        step = {{ step_users = 2, step_time = "2.5s" }}
    '''))
    result = run_cli("run", "--profile", "stairs", "--db", str(tmp_path / "r.db"), "--format", "json",
                     cwd=tmp_path, env={"CI": "true"})
    assert result.code == 0, result.stderr
    run = json.loads(result.stdout)
    (health,) = run["endpoints"]  # only Reader ran, and only its "read" task
    assert health["stats"]["name"] == "/health"
    # Steps of 2, 4 and 6 users at 10 requests/s each: the last seconds carry about three times the first.
    series = {b["t"]: b["requests"] for b in health["series"]}
    first, last = series[0] + series[1], series[5] + series[6]
    assert 2.0 < last / first < 4.5, series
    # In CI the progress display is plain lines.
    assert "perfgate:" in result.stderr and "users" in result.stderr
