"""Faults that must not look like a regression, and signals that must leave nothing behind: one row each.

Rows of ``bench_faults.py`` (run that script: ``uv run python tests/benchmarks/bench_faults.py``).

Each entry of :data:`FAULTS` is a function that provokes one fault with the real ``perfgate`` command
(a subprocess, real files, the real demo service and Locust on 127.0.0.1, real git worktrees) and returns
``(fault, expected, observed, ok)``. Crash inputs are expected to give exit code 2 or 4 and exactly one
line on stderr without a traceback; stop signals during a load run, an A/B or a setup command are
expected to give exit code 128 + the signal within 5 s, with no process of the service, Locust or the
setup command left, the port free and no worktree left. Every load run is bounded (30 s) and stopped
after a few seconds. Temporary folders are made with the prefix ``perfgate-`` and removed.

"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

from test_signals import STUBBORN_SERVICE  # noqa: E402

from perfgate.config import CompareConfig  # noqa: E402
from perfgate.decide.compare import compare  # noqa: E402
from perfgate.demo.walkthrough import make_demo_repo  # noqa: E402
from perfgate.store import Store  # noqa: E402

from fakes.synthetic import make_run, synthetic_side  # noqa: E402

LOCUSTFILE = REPO_ROOT / "locustfiles" / "demo.py"
DEMO_SERVE = f"{shlex.quote(sys.executable)} -m perfgate.demo --port {{port}}"
DEMO_READY = "http://127.0.0.1:{port}/health"
CLEAN_UP_S = 5.0

Row = tuple[str, str, str, bool]


def _env(temp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PERFGATE_DEBUG")
           and not k.startswith(("GITHUB_", "RUNNER_"))}
    (temp / "tmp").mkdir(exist_ok=True)
    return {**env, "TMPDIR": str(temp / "tmp"), **extra}


def _perfgate(temp: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perfgate", *args], cwd=cwd or temp, env=_env(temp, **env),
                          capture_output=True, text=True, timeout=120)


def _crash_row(fault: str, done: subprocess.CompletedProcess[str], must_say: str) -> Row:
    lines = done.stderr.strip().splitlines()
    traceback = "Traceback" in done.stdout + done.stderr
    ok = done.returncode in (2, 4) and len(lines) == 1 and not traceback and must_say in done.stderr
    observed = f"exit {done.returncode}, {len(lines)} line(s){', a traceback' if traceback else ''}: " + \
        (lines[-1][:90] if lines else "(nothing)")
    return fault, f"exit 2 or 4, one line saying {must_say!r}", observed, ok


def _in_temp(function: Callable[[Path], Row]) -> Callable[[], Row]:
    def run() -> Row:
        with tempfile.TemporaryDirectory(prefix="perfgate-fault-") as folder:
            return function(Path(folder))
    run.__name__ = function.__name__
    run.__doc__ = function.__doc__
    return run


# -- crash inputs ------------------------------------------------------------------------------------------

def _pinned(temp: Path, text: str) -> None:
    (temp / "baselines").mkdir(exist_ok=True)
    (temp / "baselines" / "smoke.json").write_text(text)


@_in_temp
def naive_date_in_a_pinned_baseline(temp: Path) -> Row:
    _pinned(temp, json.dumps({"format": 1, "kind": "expected", "profile": "smoke", "reason": "r",
                              "accepted_at": "2026-01-02T03:04:05", "expires": "2027-01-01T00:00:00",
                              "expected": {"GET /items": {"p95": 100}}}))
    return _crash_row("naive accepted_at in baselines/smoke.json", _perfgate(temp, "baseline", "show"), "timezone")


@_in_temp
def nan_in_a_pinned_baseline(temp: Path) -> Row:
    _pinned(temp, '{"format": 1, "kind": "expected", "profile": "smoke", "reason": "r", '
                  '"accepted_at": "2026-01-02T03:04:05Z", "expected": {"GET /items": {"p95": NaN}}}')
    return _crash_row('"p95": NaN in baselines/smoke.json', _perfgate(temp, "baseline", "show"), "NaN is not a number")


@_in_temp
def run_id_beyond_int64(temp: Path) -> Row:
    Store(temp / "r.db").close()  # `show` only reads: the store must exist
    return _crash_row("show 99999999999999999999",
                      _perfgate(temp, "show", "99999999999999999999", "--db", str(temp / "r.db")), "no run")


@_in_temp
def expiry_beyond_any_date(temp: Path) -> Row:
    with Store(temp / "r.db") as store:
        store.save(make_run())
    return _crash_row("baseline accept --expires 1e400d",
                      _perfgate(temp, "baseline", "accept", "--run", "1", "--reason", "r", "--expires", "1e400d",
                                "--db", str(temp / "r.db")), "--expires")


@_in_temp
def tool_is_a_string(temp: Path) -> Row:
    (temp / "pyproject.toml").write_text("tool = 'perfgate'\n")
    return _crash_row("tool = 'perfgate' in pyproject.toml", _perfgate(temp, "runs", "--db", str(temp / "r.db")),
                      "must be a table")


@_in_temp
def run_time_inf(temp: Path) -> Row:
    (temp / "perfgate.toml").write_text("locustfile = 'lf.py'\n[profiles.smoke]\nrun_time = inf\n")
    return _crash_row("run_time = inf in perfgate.toml", _perfgate(temp, "run", "-H", "http://127.0.0.1:9"),
                      "profiles.smoke.run_time")


@_in_temp
def run_time_1e400(temp: Path) -> Row:
    (temp / "perfgate.toml").write_text("locustfile = 'lf.py'\n[profiles.smoke]\nrun_time = 1e400\n")
    return _crash_row("run_time = 1e400 in perfgate.toml", _perfgate(temp, "run", "-H", "http://127.0.0.1:9"),
                      "profiles.smoke.run_time")


@_in_temp
def spawn_rate_nan_on_the_command_line(temp: Path) -> Row:
    (temp / "lf.py").write_text("")
    return _crash_row("run -r nan", _perfgate(temp, "run", "-f", "lf.py", "-H", "http://127.0.0.1:9", "-r", "nan"),
                      "--spawn-rate")


def _forged_verdict(temp: Path, pattern: str, replacement: str) -> Path:
    rng = np.random.default_rng(3)
    verdict = compare(synthetic_side(rng, runs=4, endpoints=2, label="merge-base"),
                      synthetic_side(rng, runs=4, endpoints=2), CompareConfig())
    path = temp / "verdict.json"
    path.write_text(re.sub(pattern, replacement, verdict.to_json(), count=1))
    return path


def _post(temp: Path, command: str, verdict: Path) -> subprocess.CompletedProcess[str]:
    return _perfgate(temp, command, "--verdict", str(verdict), "--repo", "acme/shop", "--pr", "7",
                     GITHUB_API_URL="http://127.0.0.1:9", GITHUB_TOKEN="t0ken")


@_in_temp
def verdict_with_nan_to_comment(temp: Path) -> Row:
    verdict = _forged_verdict(temp, r'"p_value": [0-9.e-]+', '"p_value": NaN')
    return _crash_row("comment: verdict with NaN", _post(temp, "comment", verdict), "finite")


@_in_temp
def verdict_with_infinity_to_github(temp: Path) -> Row:
    verdict = _forged_verdict(temp, r'"change": [0-9.e-]+', '"change": Infinity')
    return _crash_row("github: verdict with Infinity", _post(temp, "github", verdict), "finite")


@_in_temp
def verdict_with_a_naive_date_to_comment(temp: Path) -> Row:
    verdict = _forged_verdict(temp, r'("created_at": "[^"]+?)(Z|[+-]\d\d:\d\d)"', r'\1"')
    return _crash_row("comment: verdict with a naive created_at", _post(temp, "comment", verdict), "timezone")


@_in_temp
def garbage_in_a_store_column(temp: Path) -> Row:
    with Store(temp / "r.db") as store:
        store.save(make_run())
    with sqlite3.connect(temp / "r.db") as conn:
        conn.execute("update runs set started_at = 'the day before yesterday'")
    return _crash_row("garbage in runs.started_at, then show 1", _perfgate(temp, "show", "1", "--db",
                                                                           str(temp / "r.db")), "perfgate:")


@_in_temp
def injected_internal_error(temp: Path) -> Row:
    program = ("import perfgate.cli as cli\nimport perfgate.cli.common as cli_common\n"
               "def replaced(*a, **k):\n    raise RuntimeError('injected')\n"
               "cli_common.load_config = replaced\ncli.main()\n")
    done = subprocess.run([sys.executable, "-c", program, "runs"], cwd=temp, env=_env(temp), capture_output=True,
                          text=True, timeout=120)
    return _crash_row("an exception inside a command", done, "internal error: RuntimeError: injected")


# -- signals ---------------------------------------------------------------------------------------------



def _start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(
    parent: subprocess.Popen, ready: Callable[[dict[int, str]], bool], timeout_s: float = 90
) -> dict[int, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and parent.poll() is None:
        try:
            lines = {p.pid: " ".join(p.cmdline()) for p in psutil.Process(parent.pid).children(recursive=True)}
        except psutil.Error:
            lines = {}
        if ready(lines):
            return lines
        time.sleep(0.2)
    raise RuntimeError("the processes to signal never ran")


def _under_load(marker: str) -> Callable[[dict[int, str]], bool]:
    return lambda lines: any(marker in line and re.search(r"--port \d+", line) for line in lines.values()) and \
        any("locust" in line for line in lines.values())


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def _signal_row(fault: str, parent: subprocess.Popen, wait: Callable[[dict[int, str]], bool],
                signals: tuple[signal.Signals, ...], expected_code: int, temp: Path,
                repo: Path | None = None, code_from: Path | None = None) -> Row:
    try:
        lines = _wait_for(parent, wait)
        time.sleep(1.5)
        pids = [p.pid for p in psutil.Process(parent.pid).children(recursive=True)] or list(lines)
        ports = [int(m.group(1)) for line in lines.values() if (m := re.search(r"--port (\d+)", line))]
        started = time.monotonic()
        for number, sig in enumerate(signals):
            if number:
                time.sleep(0.3)
            parent.send_signal(sig)
        _, stderr = parent.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=0.5)
    left = [p for p in pids if _running(p)]
    listening = [p for p in ports if _listening(p)]
    worktrees = 0
    if repo is not None:
        listed = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True)
        worktrees = listed.stdout.count("worktree ") - 1
    temp_left = list((temp / "tmp").iterdir())
    code = parent.returncode
    if code_from is not None:  # the action's step: perfgate's code is what it records
        match = re.search(r"gate-exit-code=(\d+)", code_from.read_text())
        code = int(match.group(1)) if match else -1
    ok = (code == expected_code and elapsed < CLEAN_UP_S and not left and not listening and not worktrees
          and not temp_left and "Traceback" not in stderr)
    observed = (f"exit {code} after {elapsed:.1f}s; {len(left)} process(es), {len(listening)} port(s), "
                f"{worktrees} worktree(s), {len(temp_left)} temp file(s) left")
    expected = f"exit {expected_code} within {CLEAN_UP_S:g}s, nothing left"
    return fault, expected, observed, ok


def _run_serve(temp: Path, serve: str = DEMO_SERVE, ready: str = DEMO_READY) -> subprocess.Popen:
    return _start([sys.executable, "-m", "perfgate", "run", "-f", str(LOCUSTFILE), "-t", "30s", "--serve", serve,
                   "--ready-url", ready, "--db", str(temp / "r.db")], temp, _env(temp))


@_in_temp
def sigterm_during_run_serve(temp: Path) -> Row:
    return _signal_row("SIGTERM during run --serve", _run_serve(temp), _under_load("perfgate.demo"),
                       (signal.SIGTERM,), 143, temp)


@_in_temp
def sighup_during_run_serve(temp: Path) -> Row:
    return _signal_row("SIGHUP during run --serve", _run_serve(temp), _under_load("perfgate.demo"),
                       (signal.SIGHUP,), 129, temp)


@_in_temp
def sigint_then_sigterm_with_a_service_ignoring_sigterm(temp: Path) -> Row:
    (temp / "stubborn_service.py").write_text(STUBBORN_SERVICE)
    cli = _run_serve(temp, f"exec {shlex.quote(sys.executable)} stubborn_service.py --port {{port}}",
                     "http://127.0.0.1:{port}/health")
    return _signal_row("SIGINT, SIGTERM 0.3 s later; service ignores SIGTERM", cli, _under_load("stubborn_service"),
                       (signal.SIGINT, signal.SIGTERM), 130, temp)


@_in_temp
def sigterm_during_ab(temp: Path) -> Row:
    repo = temp / "shop"
    make_demo_repo(repo)
    cli = _start([sys.executable, "-m", "perfgate", "ab", "--base", "main", "-t", "30s", "--db", str(temp / "ab.db")],
                 repo, _env(temp))
    return _signal_row("SIGTERM during ab", cli, _under_load("service.py"), (signal.SIGTERM,), 143, temp, repo)


@_in_temp
def sigterm_during_an_ab_setup_command(temp: Path) -> Row:
    repo = temp / "shop"
    make_demo_repo(repo)
    cli = _start([sys.executable, "-m", "perfgate", "ab", "--base", "main", "-t", "30s", "--setup", "sleep 60",
                  "--db", str(temp / "ab.db")], repo, _env(temp))
    return _signal_row("SIGTERM during an ab --setup command", cli,
                       lambda lines: any("sleep" in line for line in lines.values()), (signal.SIGTERM,), 143, temp,
                       repo)


@_in_temp
def sigterm_to_the_actions_gate_step(temp: Path) -> Row:
    import yaml

    step = next(s for s in yaml.load((REPO_ROOT / "action.yml").read_text(), Loader=yaml.BaseLoader)["runs"]["steps"]
                if s.get("id") == "gate")
    output = temp / "github_output"
    output.touch()
    env = _env(temp, PERFGATE_BIN=str(Path(sys.executable).parent / "perfgate"), MODE="record", RUNS="3",
               LOCUSTFILE=str(LOCUSTFILE), RUN_TIME="30s", SERVE=DEMO_SERVE, READY_URL=DEMO_READY,
               DB=str(temp / "r.db"), GITHUB_OUTPUT=str(output), PROFILE="", CONFIG="", SETUP="", BASE_REF="",
               PERFGATE_PYTHON="")
    bash = _start(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], temp, env)
    return _signal_row("SIGTERM to the action's gate step (bash)", bash, _under_load("perfgate.demo"),
                       (signal.SIGTERM,), 143, temp, code_from=output)


FAULTS: list[Callable[[], Row]] = [
    naive_date_in_a_pinned_baseline, nan_in_a_pinned_baseline, run_id_beyond_int64, expiry_beyond_any_date,
    tool_is_a_string, run_time_inf, run_time_1e400, spawn_rate_nan_on_the_command_line,
    verdict_with_nan_to_comment, verdict_with_infinity_to_github, verdict_with_a_naive_date_to_comment,
    garbage_in_a_store_column, injected_internal_error,
    sigterm_during_run_serve, sighup_during_run_serve, sigint_then_sigterm_with_a_service_ignoring_sigterm,
    sigterm_during_ab, sigterm_during_an_ab_setup_command, sigterm_to_the_actions_gate_step,
]
"""One function per fault, each returning ``(fault, expected, observed, ok)``."""

