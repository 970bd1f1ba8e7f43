"""`perfgate run` end to end: a real Locust subprocess, the real demo service, a real SQLite file and git repo."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from perfgate.store import Store

from conftest import DEMO_READY, DEMO_SERVE, LOCUSTFILES, git, run_cli

pytestmark = pytest.mark.slow

SHORT = ("-t", "4s", "--warmup", "1s")


def _json(stdout: str) -> dict:
    return json.loads(stdout)


def test_run_records_every_request_under_the_commit(git_repo: Path, demo_service) -> None:
    db = git_repo / "runs.db"
    result = run_cli("run", "-f", str(LOCUSTFILES / "demo.py"), "-H", demo_service.host, "-u", "5", "-r", "5",
                     *SHORT, "--db", str(db), "--format", "json", cwd=git_repo)
    assert result.code == 0, result.stderr
    run = _json(result.stdout)
    assert run["valid"], run["invalid_reasons"]
    # Every request Locust counted, perfgate recorded; the measured ones plus the warm-up make up the total.
    assert run["recorded_request_count"] == run["locust_request_count"] > 50
    assert run["total_requests"] + run["warmup_excluded"] == run["recorded_request_count"]
    assert run["warmup_excluded"] > 0
    endpoints = {(e["stats"]["method"], e["stats"]["name"]) for e in run["endpoints"]}
    assert {("GET", "/items"), ("GET", "/items/{id}"), ("POST", "/orders")} <= endpoints
    assert abs(run["duration_s"] - 3.0) < 0.5

    with Store(db) as store:
        (stored,) = store.runs()
    assert stored.git.commit == git(git_repo, "rev-parse", "HEAD")
    assert stored.git.branch == "main"
    assert stored.git.dirty is False
    assert stored.profile.name == "smoke" and stored.profile.users == 5
    assert stored.environment.cores >= 1 and stored.environment.locust
    by_key = {e.stats.key: e for e in stored.endpoints}
    items = by_key["GET /items"]
    # The stored samples hold every successful measured request, and agree with the exact statistics.
    assert items.histogram.count == items.stats.count - items.stats.failures
    assert items.histogram.quantile(0.95) == pytest.approx(items.stats.p95, rel=2e-3, abs=1e-3)
    assert sum(b.requests for b in items.series) == items.stats.count


def test_dirty_tree_and_branch_are_recorded(git_repo: Path, demo_service) -> None:
    git(git_repo, "checkout", "-q", "-b", "feature/x")
    (git_repo / "service.txt").write_text("v2\n")
    db = git_repo / "runs.db"
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host, *SHORT,
                     "--db", str(db), cwd=git_repo)
    assert result.code == 0, result.stderr
    with Store(db) as store:
        (stored,) = store.runs(branch="feature/x")
    assert stored.git.dirty is True
    assert stored.git.commit == git(git_repo, "rev-parse", "HEAD")


UNSEEN_LOCUSTFILE = '''
from locust import HttpUser, LoadTestShape, constant, task

class CatchingUser(HttpUser):
    wait_time = constant(0.02)

    @task(3)
    def health(self):
        with self.client.get("/health", catch_response=True) as response:
            if response.json().get("status") != "ok":
                response.failure("unhealthy")

    @task
    def missing(self):
        with self.client.get("/items/987654", name="/items/{id}", catch_response=True) as response:
            if response.status_code == 404:
                response.failure("item missing")

class TwoSteps(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        if run_time > 30:
            return None
        return (2, 10) if run_time < 2 else (4, 10)
'''


def test_unseen_locustfile_with_catch_response_and_custom_shape(tmp_path: Path, demo_service) -> None:
    locustfile = tmp_path / "unseen.py"
    locustfile.write_text(textwrap.dedent(UNSEEN_LOCUSTFILE))
    result = run_cli("run", "-f", str(locustfile), "-H", demo_service.host, *SHORT, "--db", str(tmp_path / "r.db"),
                     "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = _json(result.stdout)
    assert run["recorded_request_count"] == run["locust_request_count"] > 20
    stats = {e["stats"]["name"]: e["stats"] for e in run["endpoints"]}
    assert stats["/health"]["failures"] == 0
    missing = stats["/items/{id}"]
    assert missing["failures"] == missing["count"] > 0
    assert missing["failures_by_type"] == {"CatchResponseError: item missing": missing["count"]}
    # No git repository here: recorded as such, not an error.
    assert run["git"] == {"commit": None, "branch": None, "dirty": False}


def test_two_processes_lose_no_sample(tmp_path: Path, demo_service) -> None:
    result = run_cli("run", "-f", str(LOCUSTFILES / "demo.py"), "-H", demo_service.host, "--processes", "2",
                     "-u", "8", "-r", "8", "-t", "6s", "--warmup", "1s", "--db", str(tmp_path / "r.db"),
                     "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = _json(result.stdout)
    assert run["valid"], run["invalid_reasons"]
    assert run["recorded_request_count"] == run["locust_request_count"] > 100


def test_serve_starts_and_stops_the_service_and_samples_it(tmp_path: Path) -> None:
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "--serve", DEMO_SERVE, "--ready-url", DEMO_READY,
                     *SHORT, "--db", str(tmp_path / "r.db"), "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = _json(result.stdout)
    assert run["service"]["rss_max_mb"] > 10
    assert len(run["service"]["samples"]) >= 2
    assert run["profile"]["host"].startswith("http://127.0.0.1:")


def test_serve_without_a_ready_url_waits_for_the_port(tmp_path: Path) -> None:
    # The demo service takes a second or two to listen: without the wait, Locust's first requests would fail.
    result = run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "--serve", DEMO_SERVE, *SHORT,
                     "--db", str(tmp_path / "r.db"), "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = _json(result.stdout)
    assert run["valid"] and run["total_failures"] == 0, run["invalid_reasons"]


def test_race_locustfile_passes_its_correctness_check(tmp_path: Path, demo_service) -> None:
    result = run_cli("run", "-f", str(LOCUSTFILES / "race.py"), "-H", demo_service.host, "-u", "20", "-r", "20",
                     "-t", "4s", "--warmup", "0s", "--db", str(tmp_path / "r.db"), "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = _json(result.stdout)
    assert [(c["name"], c["passed"]) for c in run["checks"]] == [("no overselling", True)]


FAILING_CHECK = '''
from locust import HttpUser, constant, events, task
from locust.runners import WorkerRunner

class Pinger(HttpUser):
    wait_time = constant(0.1)

    @task
    def ping(self):
        self.client.get("/ping")

@events.test_stop.add_listener
def check(environment, **kwargs):
    if not isinstance(environment.runner, WorkerRunner):
        environment.events.request.fire(request_type="CHECK", name="stock is zero", response_time=0,
                                        response_length=0, response=None, context={},
                                        exception=AssertionError("stock ended at 3"))
'''


def test_failed_correctness_check_fails_the_run(tmp_path: Path, demo_service) -> None:
    locustfile = tmp_path / "check.py"
    locustfile.write_text(FAILING_CHECK)
    db = tmp_path / "r.db"
    result = run_cli("run", "-f", str(locustfile), "-H", demo_service.host, *SHORT, "--db", str(db), cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert "check stock is zero FAILED: AssertionError: stock ended at 3" in " ".join(result.stdout.split())
    # The run is stored all the same: it is evidence.
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from runs").fetchone()[0] == 1


def test_runs_and_show_list_what_was_stored(git_repo: Path, demo_service) -> None:
    db = git_repo / "runs.db"
    assert run_cli("run", "-f", str(LOCUSTFILES / "health.py"), "-H", demo_service.host, *SHORT,
                   "--db", str(db), cwd=git_repo).code == 0
    head = git(git_repo, "rev-parse", "HEAD")
    listed = run_cli("runs", "--db", str(db), "--commit", head[:7], "--format", "json", cwd=git_repo)
    assert listed.code == 0
    (row,) = json.loads(listed.stdout)
    assert row["git"]["commit"] == head
    assert json.loads(run_cli("runs", "--db", str(db), "--branch", "other", "--format", "json",
                              cwd=git_repo).stdout) == []
    shown = run_cli("show", str(row["id"]), "--db", str(db), cwd=git_repo)
    assert shown.code == 0 and "GET /health" in shown.stdout
    missing = run_cli("show", "999", "--db", str(db), cwd=git_repo)
    assert missing.code == 2 and "no run 999" in missing.stderr
