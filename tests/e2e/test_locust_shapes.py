"""A locustfile's own LoadTestShape and host schemes under perfgate: real Locust against a loopback server."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.sides import side_from_runs

from conftest import run_cli
from fakes.catchall_server import start
from fakes.synthetic import make_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catchall():
    http, tcp = start(0, 0)
    yield http.server_address[1], tcp.server_address[1]
    http.shutdown()
    tcp.shutdown()


def _write(folder: Path, source: str) -> None:
    (folder / "locustfile.py").write_text(textwrap.dedent(source))


def test_a_shape_runs_as_designed_and_is_recorded_with_its_peak(tmp_path: Path, catchall) -> None:
    """No -t: the shape ends itself after 3 s (before the profile's 15 s), reaching 4 users, not the profile's 5."""
    _write(tmp_path, f"""
        from locust import HttpUser, LoadTestShape, constant, task

        class U(HttpUser):
            host = "http://127.0.0.1:{catchall[0]}"
            wait_time = constant(0.05)

            @task
            def index(self):
                self.client.get("/shape")

        class TwoStages(LoadTestShape):
            def tick(self):
                t = self.get_run_time()
                return (1, 4) if t < 1.5 else (4, 4) if t < 3 else None
        """)
    done = run_cli("run", "--warmup", "0s", "--format", "json", "--db", "perfgate-test.db", cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["profile"]["load_shape"] == "TwoStages"
    assert run["profile"]["users"] == 4
    assert 2.0 < run["duration_s"] < 10.0, run["duration_s"]
    assert run["valid"], run["invalid_reasons"]
    assert run["recorded_request_count"] == run["locust_request_count"] > 0


def test_an_explicit_run_time_bounds_the_shape(tmp_path: Path, catchall) -> None:
    _write(tmp_path, f"""
        from locust import HttpUser, LoadTestShape, constant, task

        class U(HttpUser):
            host = "http://127.0.0.1:{catchall[0]}"
            wait_time = constant(0.05)

            @task
            def index(self):
                self.client.get("/forever")

        class Forever(LoadTestShape):
            def tick(self):
                return 2, 2
        """)
    done = run_cli("run", "-t", "3s", "--warmup", "0s", "--format", "json", "--db", "perfgate-test.db", cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["profile"]["load_shape"] == "Forever" and run["profile"]["run_time"] == 3
    assert run["duration_s"] < 6.0


def test_the_shape_is_a_load_parameter_that_must_match() -> None:
    base, head = make_run(seed=1), make_run(seed=2)
    head = head.model_copy(update={"profile": head.profile.model_copy(update={"load_shape": "StepShape"})})
    verdict = compare(side_from_runs("base", [base]), side_from_runs("head", [head]), CompareConfig())
    assert verdict.outcome.value == "invalid"
    assert any("load_shape" in reason for reason in verdict.reasons), verdict.reasons


def test_h_with_another_scheme_reaches_the_class_unchanged(tmp_path: Path, catchall) -> None:
    """-H tcp://127.0.0.1:PORT is accepted (its port is checked) and is what the User sees."""
    _write(tmp_path, """
        import socket, time
        from urllib.parse import urlsplit
        from locust import User, constant, task

        class Echo(User):
            wait_time = constant(0.05)

            @task
            def echo(self):
                parts = urlsplit(self.host)
                assert parts.scheme == "tcp"
                start = time.time()
                with socket.create_connection((parts.hostname, parts.port), timeout=2) as s:
                    s.sendall(b"x\\n")
                    s.recv(8)
                self.environment.events.request.fire(request_type="TCP", name="echo", response_length=0,
                    response_time=(time.time() - start) * 1000, response=None, context={}, exception=None,
                    start_time=start)
        """)
    host = f"tcp://127.0.0.1:{catchall[1]}"
    done = run_cli("run", "-t", "3s", "--warmup", "0s", "-u", "2", "-r", "2", "-H", host, "--format", "json",
                   "--db", "perfgate-test.db", cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["profile"]["host"] == host
    assert [(e["stats"]["method"], e["stats"]["name"]) for e in run["endpoints"]] == [("TCP", "echo")]
    refused = run_cli("run", "-t", "3s", "-H", "tcp://127.0.0.1:1", "--db", "perfgate-test.db", cwd=tmp_path)
    assert refused.code != 0 and "cannot connect to tcp://127.0.0.1:1" in refused.stderr
