"""SIGTERM and SIGHUP stop perfgate like Ctrl-C, and quickly: a cancelled CI job leaves nothing behind.

GitHub Actions cancels a job with SIGINT, then SIGTERM about 7.5 s later, then kills the process tree.
Each test starts the real ``perfgate`` with the real demo service and a real Locust, signals it while
the load runs, and checks within 5 s of the signal: the exit code (128 + the signal), no process of the
service or Locust left, the port free, no worktree left, nothing stored.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from perfgate.demo.walkthrough import make_demo_repo

from conftest import DEMO_READY, DEMO_SERVE, LOCUSTFILES, REPO_ROOT, git

pytestmark = pytest.mark.slow

CLEAN_UP_S = 5.0
"""From the signal to perfgate's exit with everything stopped and removed."""


def _env(tmp_path: Path) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PERFGATE_DEBUG")
           and not k.startswith(("GITHUB_", "RUNNER_"))}
    return {**env, "TMPDIR": str(temp)}


def _start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _under_load(
    parent: subprocess.Popen, service_marker: str, timeout_s: float = 90
) -> tuple[list[psutil.Process], int]:
    """Every process below ``parent`` once the service and Locust run (and a second of load), and the port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert parent.poll() is None, parent.communicate()
        try:
            found = psutil.Process(parent.pid).children(recursive=True)
            lines = {p.pid: " ".join(p.cmdline()) for p in found}
        except psutil.Error:
            time.sleep(0.2)
            continue
        ports = [int(m.group(1)) for line in lines.values()
                 if service_marker in line and (m := re.search(r"--port (\d+)", line))]
        if ports and any("locust" in line for line in lines.values()):
            port = ports[0]
            time.sleep(1.5)  # requests under way
            return psutil.Process(parent.pid).children(recursive=True), port
        time.sleep(0.2)
    raise AssertionError("the service and Locust never ran together")


def _stop(parent: subprocess.Popen, *signals: signal.Signals, gap_s: float = 0.3) -> tuple[float, str]:
    """Send the signals (``gap_s`` apart); seconds from the first to perfgate's exit, and its stderr."""
    started = time.monotonic()
    for number, sig in enumerate(signals):
        if number:
            time.sleep(gap_s)
        parent.send_signal(sig)
    try:
        _, stderr = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    return time.monotonic() - started, stderr


def _running(process: psutil.Process) -> bool:
    """Still running: a zombie has exited (its new parent may be slow to reap it, or never reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_nothing_left(processes: list[psutil.Process], port: int) -> None:
    psutil.wait_procs(processes, timeout=0.5)
    alive = [p.pid for p in processes if _running(p)]
    assert not alive, f"left running: {alive}"
    with pytest.raises(ConnectionRefusedError):  # nobody listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_during_run_serve_stops_everything_within_5_s(tmp_path: Path, sig: signal.Signals,
                                                               code: int) -> None:
    db = tmp_path / "r.db"
    cli = _start([sys.executable, "-m", "perfgate", "run", "-f", str(LOCUSTFILES / "demo.py"), "-t", "30s",
                  "--serve", DEMO_SERVE, "--ready-url", DEMO_READY, "--db", str(db)], tmp_path, _env(tmp_path))
    processes, port = _under_load(cli, "perfgate.demo")
    elapsed, stderr = _stop(cli, sig)
    assert cli.returncode == code, stderr
    assert elapsed < CLEAN_UP_S, f"{elapsed:.1f}s"
    last_line = stderr.strip().splitlines()[-1]
    assert last_line == f"perfgate: error: interrupted; nothing was stored (stopped by {sig.name})"
    assert "Traceback" not in stderr
    _assert_nothing_left(processes, port)
    assert _stored(db) == 0
    assert list((tmp_path / "tmp").iterdir()) == []


STUBBORN_SERVICE = textwrap.dedent("""
    import http.server, signal, sys
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL stops it
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        do_POST = do_GET
        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
""")


def test_a_cancelled_job_stops_a_service_that_ignores_sigterm_within_5_s(tmp_path: Path) -> None:
    """SIGINT, then SIGTERM during the clean-up (as GitHub does, only faster): the clean-up goes on to its end."""
    (tmp_path / "stubborn_service.py").write_text(STUBBORN_SERVICE)
    db = tmp_path / "r.db"
    cli = _start([sys.executable, "-m", "perfgate", "run", "-f", str(LOCUSTFILES / "demo.py"), "-t", "30s",
                  "--serve", f"exec {sys.executable} stubborn_service.py --port {{port}}",
                  "--ready-url", "http://127.0.0.1:{port}/health", "--db", str(db)], tmp_path, _env(tmp_path))
    processes, port = _under_load(cli, "stubborn_service.py")
    elapsed, stderr = _stop(cli, signal.SIGINT, signal.SIGTERM)
    assert cli.returncode == 130, stderr  # the first signal names the exit
    # The service had its grace after the first signal (1 s), so the SIGTERM 0.3 s later came during the clean-up.
    assert 0.9 < elapsed < CLEAN_UP_S, f"{elapsed:.1f}s"
    assert stderr.strip().splitlines()[-1] == "perfgate: error: interrupted; nothing was stored"
    assert "Traceback" not in stderr
    _assert_nothing_left(processes, port)
    assert _stored(db) == 0


def test_sigterm_during_ab_stops_both_versions_and_removes_the_worktree_within_5_s(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    db = tmp_path / "ab.db"
    cli = _start([sys.executable, "-m", "perfgate", "ab", "--base", "main", "-t", "30s", "--db", str(db)], repo,
                 _env(tmp_path))
    processes, port = _under_load(cli, "service.py")
    elapsed, stderr = _stop(cli, signal.SIGTERM)
    assert cli.returncode == 143, stderr
    assert elapsed < CLEAN_UP_S, f"{elapsed:.1f}s"
    assert "interrupted" in stderr and "(stopped by SIGTERM)" in stderr and "Traceback" not in stderr
    _assert_nothing_left(processes, port)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1, git(repo, "worktree", "list")
    assert list((tmp_path / "tmp").iterdir()) == []
    assert _stored(db) == 0


def test_the_actions_gate_step_forwards_a_cancellation_to_perfgate(tmp_path: Path) -> None:
    """The runner signals the step's bash, not perfgate: the step passes it on and records perfgate's code."""
    step = next(s for s in yaml.load((REPO_ROOT / "action.yml").read_text(), Loader=yaml.BaseLoader)["runs"]["steps"]
                if s.get("id") == "gate")
    output = tmp_path / "github_output"
    output.touch()
    # A runner sets every variable of the step's env: (an input not given is empty), so the test does too.
    env = {**_env(tmp_path), **{name: "" for name in step["env"]},
           "PERFGATE_BIN": str(Path(sys.executable).parent / "perfgate"), "MODE": "record",
           "RUNS": "3", "LOCUSTFILE": str(LOCUSTFILES / "demo.py"), "RUN_TIME": "30s", "SERVE": DEMO_SERVE,
           "READY_URL": DEMO_READY, "DB": str(tmp_path / "r.db"), "GITHUB_OUTPUT": str(output)}
    bash = _start(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], tmp_path, env)
    processes, port = _under_load(bash, "perfgate.demo")
    elapsed, stderr = _stop(bash, signal.SIGTERM)
    assert bash.returncode == 0, stderr  # the step records the code; the result step fails the job
    assert elapsed < CLEAN_UP_S, f"{elapsed:.1f}s"
    assert output.read_text() == "gate-exit-code=143\n"
    assert stderr.count("perfgate: error: interrupted") == 1  # the record loop did not start another run
    _assert_nothing_left(processes, port)
    assert _stored(tmp_path / "r.db") == 0


def test_sigterm_during_a_setup_command_stops_it_and_removes_the_worktree_within_5_s(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    cli = _start([sys.executable, "-m", "perfgate", "ab", "--base", "main", "-t", "30s", "--setup",
                  "echo preparing; sleep 60", "--db", str(tmp_path / "ab.db")], repo, _env(tmp_path))
    deadline = time.monotonic() + 60
    setup: list[psutil.Process] = []
    while not setup and time.monotonic() < deadline:
        time.sleep(0.2)
        setup = [p for p in psutil.Process(cli.pid).children(recursive=True) if "sleep" in " ".join(p.cmdline())]
    assert setup, "the setup command never ran"
    processes = psutil.Process(cli.pid).children(recursive=True)
    elapsed, stderr = _stop(cli, signal.SIGTERM)
    assert cli.returncode == 143, stderr
    assert elapsed < CLEAN_UP_S, f"{elapsed:.1f}s"
    assert "(stopped by SIGTERM)" in stderr and "Traceback" not in stderr
    assert not [p.pid for p in processes if _running(p)]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1, git(repo, "worktree", "list")
    assert list((tmp_path / "tmp").iterdir()) == []
