"""The measured window waits for every user to spawn and finish on_start; a drifting window is a warning."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from perfgate.config import ResolvedProfile
from perfgate.measure.contract import EndpointRecording, Recording, RecordingMeta
from perfgate.measure.summary import measure
from perfgate.store import Store

from conftest import run_cli

SLOW_LOGIN = textwrap.dedent("""
    import time
    from locust import HttpUser, constant, task

    class Member(HttpUser):
        wait_time = constant(0.05)

        def on_start(self):
            time.sleep({sleep})  # a bcrypt login

        @task
        def health(self):
            self.client.get("/health")
""")


def _locustfile(tmp: Path, sleep: float) -> Path:
    path = tmp / "slow_login.py"
    path.write_text(SLOW_LOGIN.format(sleep=sleep))
    return path


@pytest.mark.slow
def test_the_window_starts_once_every_user_is_through_on_start(git_repo: Path, demo_service) -> None:
    db = git_repo / "runs.db"
    result = run_cli("run", "-f", str(_locustfile(git_repo, 2.5)), "-H", demo_service.host, "-u", "4", "-r", "20",
                     "-t", "7s", "--warmup", "1s", "--db", str(db), cwd=git_repo)
    assert result.code == 0, result.stderr
    with Store(db) as store:
        (run,) = store.runs()
    assert run.valid, run.invalid_reasons
    # The 1-s warm-up is not enough: no user sends a request before its 2.5-s login is over.
    assert 2.5 <= run.warmup_end_s < 4.0
    assert run.duration_s == pytest.approx(7 - run.warmup_end_s, abs=0.5)
    assert f"measured from {run.warmup_end_s:.1f} s after the start (waited for every user's on_start)" \
        in result.stdout


@pytest.mark.slow
def test_users_not_ready_within_half_the_run_make_it_invalid(git_repo: Path, demo_service) -> None:
    db = git_repo / "runs.db"
    result = run_cli("run", "-f", str(_locustfile(git_repo, 4.0)), "-H", demo_service.host, "-u", "2", "-r", "20",
                     "-t", "6s", "--warmup", "1s", "--db", str(db), "--format", "json", cwd=git_repo)
    run = json.loads(result.stdout)
    assert not run["valid"]
    assert any("through on_start, beyond 50% of the 6 s run" in r for r in run["invalid_reasons"])


def _recording(early_ms: float, late_ms: float) -> Recording:
    endpoint = EndpointRecording("GET", "/x")
    for i in range(1000):  # 10 s at 100 requests/s from t=100
        endpoint.start_times.append(100.0 + i / 100)
        endpoint.latencies_ms.append(early_ms if i < 300 else late_ms)
        endpoint.outcomes.append(0)
    return Recording(
        meta=RecordingMeta.from_dict(
            {"test_start": 100.0, "test_stop": 110.0, "locust_request_count": 1000, "users_ready": 100.5}
        ),
        endpoints=[endpoint],
    )


PROFILE = ResolvedProfile(name="smoke", locustfile="/x.py", host="http://127.0.0.1:1", users=1, spawn_rate=1,
                          run_time=10, warmup=1)


def test_a_slow_start_of_the_window_is_a_warning_not_an_invalid_run() -> None:
    drifting = measure(_recording(early_ms=90, late_ms=30), PROFILE)
    assert drifting.invalid_reasons == [] and drifting.warmup_end_s == 1.0
    assert drifting.warnings == ["latency in the first 2 s measured was 90 ms (p50) against 30 ms later: "
                                 "lengthen warm_up"]
    assert measure(_recording(early_ms=40, late_ms=30), PROFILE).warnings == []


def test_a_runs_drift_warning_is_stored_and_reaches_the_verdicts_notes(tmp_path: Path) -> None:
    from perfgate.config import CompareConfig
    from perfgate.decide.compare import compare
    from perfgate.decide.sides import side_from_runs

    from fakes.synthetic import make_run

    warning = "latency in the first 2 s measured was 90 ms (p50) against 30 ms later: lengthen warm_up"
    with Store(tmp_path / "perfgate-runs.db") as store:
        base = store.save(make_run(commit="a" * 40, seed=1))
        head = store.save(make_run(commit="b" * 40, seed=2).model_copy(
            update={"warnings": [warning], "warmup_end_s": 2.5}))
        (stored,) = store.runs(commit="b" * 40)
    assert stored.warnings == [warning] and stored.warmup_end_s == 2.5
    verdict = compare(side_from_runs("base", [base]), side_from_runs("head", [stored]), CompareConfig())
    assert any(warning in note and f"run {head.id}" in note for note in verdict.notes)
