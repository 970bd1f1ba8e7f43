"""Locust's own habits under perfgate: real Locust runs against the demo service on 127.0.0.1.

The default locustfile, the User classes' host, ``-T a b``, ``--processes -1``, the folder Locust runs in,
Locust config files, extra arguments after ``--``, ``environment.process_exit_code`` and crashing users.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from perfgate.cli import split_locust_style
from perfgate.config import CompareConfig, LoadedConfig, Overrides, PerfgateConfig
from perfgate.decide.compare import compare
from perfgate.decide.sides import side_from_runs
from perfgate.errors import UsageError
from perfgate.measure.locust import locust_command

from conftest import DemoService, run_cli
from fakes.synthetic import make_run

SHORT = ("-t", "4s", "--warmup", "1s", "-u", "2", "-r", "2", "--format", "json", "--db", "perfgate-test.db")


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def _tagged_locustfile(host: str) -> str:
    return f"""
        from locust import HttpUser, constant_throughput, tag, task

        class Reader(HttpUser):
            host = "{host}"
            wait_time = constant_throughput(20)

            @tag("read")
            @task
            def health(self):
                self.client.get("/health")

            @tag("write")
            @task
            def ping(self):
                self.client.get("/ping")

            @tag("never")
            @task
            def missing(self):
                self.client.get("/never")
        """


def test_defaults_host_tags_and_extra_arguments(tmp_path: Path, demo_service: DemoService) -> None:
    """No -f, no -H: ./locustfile.py and its class's host; -T takes two words; extra arguments are recorded."""
    _write(tmp_path, "locustfile.py", _tagged_locustfile(demo_service.host))
    done = run_cli("run", *SHORT, "-T", "read", "write", "--", "--loglevel", "WARNING", cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["profile"]["locustfile"] == str((tmp_path / "locustfile.py").resolve())
    assert run["profile"]["host"] == demo_service.host
    assert run["profile"]["host_from_user_classes"] is True
    assert run["profile"]["tags"] == ["read", "write"]
    assert run["profile"]["locust_args"] == ["--loglevel", "WARNING"]
    assert {e["stats"]["name"] for e in run["endpoints"]} == {"/health", "/ping"}
    assert run["valid"], run["invalid_reasons"]


def test_runs_in_the_folder_perfgate_started_in(tmp_path: Path, demo_service: DemoService) -> None:
    """A locustfile in a subfolder reads data/ relative to the project, as plain Locust does."""
    _write(tmp_path, "data/paths.csv", "/health\n/ping\n")
    _write(tmp_path, "load/users.py", """
        from pathlib import Path
        from locust import HttpUser, constant_throughput, task

        PATHS = Path("data/paths.csv").read_text().split()

        class Walker(HttpUser):
            wait_time = constant_throughput(20)

            @task
            def walk(self):
                for path in PATHS:
                    self.client.get(path)
        """)
    done = run_cli("run", *SHORT, "-f", "load/users.py", "-H", demo_service.host, "--", "--loglevel", "WARNING",
                   cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert {e["stats"]["name"] for e in json.loads(done.stdout)["endpoints"]} == {"/health", "/ping"}
    shown = run_cli("show", "1", "--db", "perfgate-test.db", cwd=tmp_path)
    assert "extra Locust arguments: --loglevel WARNING" in shown.stdout, shown.stdout


def test_several_hosts_are_one_clear_error(tmp_path: Path) -> None:
    _write(tmp_path, "locustfile.py", """
        from locust import HttpUser, task

        class A(HttpUser):
            host = "http://127.0.0.1:1"
            @task
            def a(self):
                pass

        class B(HttpUser):
            host = "http://127.0.0.1:2"
            @task
            def b(self):
                pass
        """)
    done = run_cli("run", *SHORT, cwd=tmp_path)
    assert done.code == 2
    assert "A: http://127.0.0.1:1, B: http://127.0.0.1:2" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_missing_default_locustfile_names_it(tmp_path: Path) -> None:
    done = run_cli("run", *SHORT, "-H", "http://127.0.0.1:1", cwd=tmp_path)
    assert done.code == 2
    assert "locustfile.py" in done.stderr and "-f" in done.stderr


def test_a_non_http_host_of_a_user_class_is_accepted(tmp_path: Path) -> None:
    """A custom client (here: requests fired by hand) with a grpc:// host; nothing is replaced by -H."""
    _write(tmp_path, "locustfile.py", """
        import time
        from locust import User, constant_throughput, task

        class Rpc(User):
            host = "grpc://127.0.0.1:50051"
            wait_time = constant_throughput(50)

            @task
            def call(self):
                assert self.host == "grpc://127.0.0.1:50051"
                self.environment.events.request.fire(
                    request_type="grpc", name="Echo", response_time=1.0, response_length=0, response=None,
                    context={}, exception=None, start_time=time.time())
        """)
    done = run_cli("run", *SHORT, cwd=tmp_path)
    assert done.code == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["profile"]["host"] == "grpc://127.0.0.1:50051"
    assert [(e["stats"]["method"], e["stats"]["name"]) for e in run["endpoints"]] == [("grpc", "Echo")]


def test_process_exit_code_fails_the_run_as_a_named_check(tmp_path: Path, demo_service: DemoService) -> None:
    _write(tmp_path, "locustfile.py", f"""
        from locust import HttpUser, constant_throughput, events, task

        class Reader(HttpUser):
            host = "{demo_service.host}"
            wait_time = constant_throughput(20)

            @task
            def health(self):
                self.client.get("/health")

        @events.quitting.add_listener
        def _threshold(environment, **kwargs):
            environment.process_exit_code = 3
        """)
    done = run_cli("run", *SHORT, cwd=tmp_path)
    assert done.code == 1, done.stderr
    checks = json.loads(done.stdout)["checks"]
    assert {"name": "environment.process_exit_code", "passed": False,
            "message": "the locustfile set environment.process_exit_code = 3"} in checks


def test_crashing_users_make_the_run_invalid_with_the_exception_named(tmp_path: Path,
                                                                     demo_service: DemoService) -> None:
    _write(tmp_path, "locustfile.py", f"""
        from locust import HttpUser, constant_throughput, task

        class Crasher(HttpUser):
            host = "{demo_service.host}"
            wait_time = constant_throughput(20)

            @task
            def health(self):
                self.client.get("/health")
                raise ZeroDivisionError("the cart was empty")
        """)
    done = run_cli("run", *SHORT, cwd=tmp_path)
    assert done.code == 3, done.stderr
    reasons = json.loads(done.stdout)["invalid_reasons"]
    assert any("ZeroDivisionError: the cart was empty" in reason for reason in reasons), reasons


@pytest.mark.parametrize(("name", "content"), [
    ("locust.conf", "users = 50\n"),
    ("pyproject.toml", "[tool.locust]\nusers = 50\n"),
])
def test_a_locust_config_file_is_refused(tmp_path: Path, name: str, content: str) -> None:
    _write(tmp_path, "locustfile.py", "from locust import HttpUser\n")
    _write(tmp_path, name, content)
    done = run_cli("run", *SHORT, "-H", "http://127.0.0.1:1", cwd=tmp_path)
    assert done.code == 2
    assert name in done.stderr and "Locust would apply its settings" in done.stderr


def test_a_pyproject_without_tool_locust_is_fine() -> None:
    from perfgate.measure.locust import check_locust_config

    root = Path(__file__).resolve().parents[2]  # perfgate's own pyproject.toml has no [tool.locust]
    check_locust_config(root, home=root / "no-such-home")


def test_extra_arguments_that_perfgate_sets_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "locustfile.py", "from locust import HttpUser\n")
    done = run_cli("run", *SHORT, "-H", "http://127.0.0.1:1", "--", "-u", "50", cwd=tmp_path)
    assert done.code == 2
    assert "'-u' after --" in done.stderr


def test_processes_every_core_and_negatives(tmp_path: Path) -> None:
    loaded = LoadedConfig(config=PerfgateConfig(), source=None, root=tmp_path)
    every = loaded.resolve("smoke", Overrides(processes=-1, host="http://127.0.0.1:1"))
    assert every.processes == (os.cpu_count() or 1)
    done = run_cli("run", *SHORT, "-H", "http://127.0.0.1:1", "--processes", "-2", cwd=tmp_path)
    assert done.code == 2
    assert "--processes" in done.stderr and "-1 for one process per core" in done.stderr


def test_tags_take_every_word_up_to_the_next_option() -> None:
    assert split_locust_style(["run", "-T", "a", "b", "-E", "c", "-u", "2", "--", "--otel", "x"]) == (
        ["run", "-T", "a", "-T", "b", "-E", "c", "-u", "2"], ["--otel", "x"])
    with pytest.raises(UsageError, match="-T needs at least one tag"):
        split_locust_style(["run", "-T", "-u", "2"])
    assert split_locust_style(["runs", "--", "x"]) == (["runs", "--", "x"], [])


def test_a_host_from_the_classes_is_never_passed_as_h(tmp_path: Path) -> None:
    loaded = LoadedConfig(config=PerfgateConfig(), source=None, root=tmp_path)
    from_classes = loaded.resolve("smoke", Overrides()).model_copy(update={"host": "http://127.0.0.1:1"})
    assert "-H" not in locust_command(from_classes)
    given = loaded.resolve("smoke", Overrides(host="http://127.0.0.1:1"))
    assert locust_command(given)[locust_command(given).index("-H") + 1] == "http://127.0.0.1:1"


def test_different_extra_arguments_make_the_comparison_invalid() -> None:
    base, head = make_run(seed=1), make_run(seed=2)
    head = head.model_copy(update={"profile": head.profile.model_copy(update={"locust_args": ["--otel"]})})
    verdict = compare(side_from_runs("base", [base]), side_from_runs("head", [head]), CompareConfig())
    assert verdict.outcome.value == "invalid"
    assert any("locust_args" in reason for reason in verdict.reasons), verdict.reasons


def test_an_unchanged_locustfile_is_imported_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing a locustfile costs about a second; a run prepares twice and ab runs the same file every run."""
    from perfgate.measure import locust as runner

    calls = []
    real = runner._inspect
    monkeypatch.setattr(runner, "_inspect", lambda *args: calls.append(args) or real(*args))
    locustfile = tmp_path / "locustfile.py"
    source = ("from locust import HttpUser, task\n\nclass U(HttpUser):\n    host = '{}'\n\n"
              "    @task\n    def t(self):\n        pass\n")
    locustfile.write_text(source.format("http://127.0.0.1:1"))
    first = runner.inspect_locustfile(locustfile, tmp_path)
    first[0]["U"] = "changed by a caller"  # a copy: the remembered answer stays as found
    assert runner.inspect_locustfile(locustfile, tmp_path) == ({"U": "http://127.0.0.1:1"}, [])
    assert len(calls) == 1
    locustfile.write_text(source.format("http://127.0.0.1:22"))  # edited: read again
    assert runner.inspect_locustfile(locustfile, tmp_path) == ({"U": "http://127.0.0.1:22"}, [])
    assert len(calls) == 2
