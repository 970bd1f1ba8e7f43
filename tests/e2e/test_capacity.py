"""Capacity against a service whose capacity is known (a limit of requests at once over a fixed service time), from
a real git repository: `ab --capacity` searches base and head, the capacities found and their intervals, the
stored searches, and `compare --capacity` of the slower head."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from perfgate.store import Store

from conftest import git

KNEE = Path(__file__).parent.parent / "fakes" / "knee_service.py"
LOCUSTFILE = '''from locust import HttpUser, constant, task


class Client(HttpUser):
    wait_time = constant(1)  # replaced by perfgate's schedule: the arrival rate, not the users, sets the pace

    @task
    def work(self):
        self.client.get("/work")
'''
CONFIG = '''[capacity]
slo = ["p95<60ms", "failures<1%"]
start_rate = 40
repeats = 2
resolution = "11%"
'''
LIMIT = 2


def _repo(root: Path) -> Path:
    repo = root / "knee"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "user.name", "Test")
    shutil.copy(KNEE, repo / "service.py")
    (repo / "locustfile.py").write_text(LOCUSTFILE)
    (repo / "perfgate.toml").write_text(CONFIG)
    (repo / "service_ms").write_text("25\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base: 25 ms a request")
    git(repo, "worktree", "add", "-q", "-b", "slower", str(root / "head"))
    (root / "head" / "service_ms").write_text("32.5\n")  # 30 % longer
    git(root / "head", "commit", "-qam", "head: 32.5 ms a request")
    return repo


def test_ab_capacity_finds_both_knees_within_15_percent_and_regresses_the_slower_head(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    head_tree = tmp_path / "head"
    db = tmp_path / "capacity.db"
    serve = f"{sys.executable} service.py --port {{port}} --limit {LIMIT} --service-ms $(cat service_ms)"
    (tmp_path / "tmp").mkdir()
    done = subprocess.run([sys.executable, "-m", "perfgate", "ab", "--capacity", "-f", "locustfile.py",
                           "--serve", serve, "--ready-url", "http://127.0.0.1:{port}/health", "-t", "3s",
                           "--warmup", "1s", "--db", str(db), "--format", "json"],
                          cwd=head_tree, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    assert verdict["outcome"] == "regressed" and verdict["ci_high"] < -0.10, verdict  # 61.5 against 80/s: −23 %
    assert verdict["base"]["label"] == f"base {git(repo, 'rev-parse', 'main')[:10]}"
    assert "capacity of the base" in done.stderr and "head climb: 40/s offered" in done.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # both worktrees are gone

    # Both searches are stored: the base under main's commit, the head under the head tree's.
    with Store(db, create=False) as store:
        found = {"base": store.capacity_records(commit=git(repo, "rev-parse", "main")),
                 "head": store.capacity_records(commit=git(head_tree, "rev-parse", "HEAD"))}
    for side, ms in (("base", 25.0), ("head", 32.5)):
        (record,) = found[side]
        truth = LIMIT / (ms / 1000)
        assert record.valid and not record.git.dirty, record.reasons
        assert record.capacity is not None and abs(record.capacity / truth - 1) <= 0.15, (side, record.capacity)
        assert record.low <= truth <= record.high, (side, record.low, record.high, truth)
        assert record.first_broken is not None and record.first_broken.startswith("p95<60ms: GET /work p95 ")
        # Every step has its rates, latencies and the service's CPU; the climb broke the objective once.
        assert all(s.service_cpu is not None and s.p95 is not None for s in record.steps)
        climb = [s for s in record.steps if s.repeat == 0 and s.valid]
        assert [bool(s.broken) for s in climb] == [False] * (len(climb) - 1) + [True], climb

    # compare --capacity judges the stored searches the same way, the baseline found at the merge-base.
    judged = subprocess.run([sys.executable, "-m", "perfgate", "compare", "--capacity", "--db", str(db),
                             "--format", "json"], cwd=head_tree, capture_output=True, text=True, timeout=120)
    assert judged.returncode == 1, judged.stdout + judged.stderr
    again = json.loads(judged.stdout)
    assert again["outcome"] == "regressed" and again["base"]["label"].startswith("merge-base")
    assert again["change"] == verdict["change"]
    text = subprocess.run([sys.executable, "-m", "perfgate", "compare", "--capacity", "--db", str(db)],
                          cwd=head_tree, capture_output=True, text=True, timeout=120)
    assert text.returncode == 1 and text.stdout.startswith("REGRESSED: capacity -"), text.stdout
    bad = subprocess.run([sys.executable, "-m", "perfgate", "ab", "--capacity", "-u", "5"], cwd=head_tree,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "-u do(es) not apply with --capacity" in bad.stderr, bad.stderr
