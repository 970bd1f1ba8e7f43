"""Fault rows of the gate itself, for bench_faults.py: a broken head, four runs saving to one store at once.

Each row is a function returning ``(fault, expected, observed, ok)``; real processes on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from perfgate.demo.walkthrough import make_demo_repo  # noqa: E402
from perfgate.measure.service import free_port, stop_process_group  # noqa: E402

from fakes.fake_github import FakeGitHub  # noqa: E402

Row = tuple[str, str, str, bool]


def _perfgate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "perfgate", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def broken_head() -> Row:
    """`perfgate ab` where the head answers 500 to 75 % of requests, then the check through PyGithub."""
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-faults-") as tmp:
        tmp_path = Path(tmp)
        repo = tmp_path / "shop"
        make_demo_repo(repo)
        _git(repo, "checkout", "-q", "-b", "broken", "main")
        service = repo / "service.py"
        service.write_text('import os\nos.environ["PERFGATE_DEMO_FAILURE_PCT"] = "75"\n'
                           + service.read_text(encoding="utf-8"), encoding="utf-8")
        _git(repo, "commit", "-qam", "Break the service")
        verdict_path = tmp_path / "verdict.json"
        started = time.monotonic()
        done = _perfgate("ab", "--base", "main", "-t", "5s", "--warmup", "1s", "--db", str(tmp_path / "ab.db"),
                         "--format", "json", "-o", str(verdict_path), cwd=repo)
        seconds = time.monotonic() - started
        word = json.loads(done.stdout)["verdict"] if done.stdout.strip().startswith("{") else "?"
        head = _git(repo, "rev-parse", "HEAD")
        with FakeGitHub().start() as fake:
            fake.add_pull(7, head)
            event = tmp_path / "event.json"
            event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": head}}}))
            _perfgate("github", "--verdict", str(verdict_path), "--check", "check-run", cwd=repo,
                      env={"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/shop",
                           "GITHUB_EVENT_PATH": str(event), "PERFGATE_GITHUB_PACING": "0"})
            conclusions = [c["conclusion"] for c in fake.check_runs]
    ok = done.returncode == 1 and word == "broken" and conclusions == ["failure"]
    return ("head fails 75 % of requests (ab)", "BROKEN, exit 1, check failure",
            f"{word.upper()}, exit {done.returncode}, check {'/'.join(conclusions) or 'none'}, {seconds:.0f} s", ok)


def four_runs_one_store() -> Row:
    """Four `perfgate run`s against one demo service, saving to one store at the same moment."""
    port = free_port()
    service = subprocess.Popen([sys.executable, "-m", "perfgate.demo", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    return ("four runs save at once", "4 of 4 stored", "demo service did not start", False)
                time.sleep(0.1)
        with tempfile.TemporaryDirectory(prefix="perfgate-bench-faults-") as tmp:
            db = Path(tmp) / "one.db"
            env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_"))}
            runs = [subprocess.Popen([sys.executable, "-m", "perfgate", "run", "-f",
                                      str(REPO_ROOT / "locustfiles" / "demo.py"), "-H", f"http://127.0.0.1:{port}",
                                      "-u", "5", "-t", "4s", "--warmup", "1s", "--db", str(db)],
                                     cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
                    for _ in range(4)]
            codes = [r.wait(timeout=300) for r in runs]
            with sqlite3.connect(db) as conn:
                stored = conn.execute("select count(*) from runs").fetchone()[0]
                whole = conn.execute("pragma integrity_check").fetchone()[0]
    finally:
        stop_process_group(service)
    ok = stored == 4 and whole == "ok" and all(c in (0, 3) for c in codes)
    return ("four `perfgate run`s save to one store at once", "4 of 4 stored, integrity ok",
            f"{stored} of 4 stored, exit codes {codes}, integrity {whole}", ok)


FAULTS = [broken_head, four_runs_one_store]
