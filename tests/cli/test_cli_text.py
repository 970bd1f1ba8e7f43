"""What the command line says: help shown as written, errors that name the flag and the value as typed,
one duration syntax, and tables that stay one line per endpoint in a CI log (no terminal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfgate.config import load_config
from perfgate.errors import ConfigError
from perfgate.records import RunRecord
from perfgate.store import Store

from conftest import git, run_cli
from fakes.synthetic import make_run

LOCUSTFILE = """\
from locust import HttpUser, task


class Shopper(HttpUser):
    host = "http://127.0.0.1:1"

    @task
    def items(self):
        self.client.get("/items")
"""


def test_help_shows_bracketed_config_names_literally(tmp_path: Path) -> None:
    compare = run_cli("compare", "--help", cwd=tmp_path)
    assert compare.code == 0 and "[tool.perfgate]" in compare.stdout
    github = run_cli("github", "--help", cwd=tmp_path)
    assert github.code == 0 and "[report] id" in github.stdout


def test_a_bad_looks_value_is_reported_by_its_flag_as_typed(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    result = run_cli("ab", "-f", "locustfile.py", "--serve", "sleep 60", "--looks", "3,2", cwd=tmp_path)
    assert result.code == 2
    assert "--looks 3,2: must be a non-empty, increasing list of pair counts" in result.stderr
    assert "ab.looks" not in result.stderr and "['3', '2']" not in result.stderr
    assert "Value error" not in result.stderr


def test_pydantic_prefixes_never_reach_a_message(tmp_path: Path) -> None:
    (tmp_path / "perfgate.toml").write_text("[ab]\nlooks = [6, 3]\n")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "perfgate.toml")
    assert "must be a non-empty, increasing list" in str(error.value) and "Value error" not in str(error.value)
    (tmp_path / "perfgate.toml").write_text("[serve]\ncommand = 'x'\nready_timeout = 'soon'\n")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "perfgate.toml")
    assert "Value error" not in str(error.value) and "serve.ready_timeout" in str(error.value)


@pytest.mark.parametrize(("typed", "seconds"), [("30s", 30.0), ("2m", 120.0), ("45", 45.0), ("1m30s", 90.0)])
def test_ready_timeout_takes_the_duration_syntax_of_every_other_duration(tmp_path: Path, typed: str,
                                                                         seconds: float) -> None:
    (tmp_path / "perfgate.toml").write_text("[serve]\ncommand = 'x'\nready_url = 'http://127.0.0.1:{port}/'\n")
    serve = load_config(tmp_path / "perfgate.toml").serve(ready_timeout=typed)
    assert serve is not None and serve.ready_timeout == seconds and serve.command == "x"
    assert serve.ready_url == "http://127.0.0.1:{port}/"


def test_a_bad_ready_timeout_names_the_flag(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    result = run_cli("run", "-f", "locustfile.py", "--serve", "sleep 60", "--ready-timeout", "5x", cwd=tmp_path)
    assert result.code == 2 and "--ready-timeout 5x: '5x' is not a duration" in result.stderr, result.stderr
    assert "Value error" not in result.stderr


def _renamed(run: RunRecord, long: str) -> RunRecord:
    endpoints = [e.model_copy(update={"stats": e.stats.model_copy(update={"name": f"{e.stats.name}/{long}"})})
                 for e in run.endpoints]
    return run.model_copy(update={"endpoints": endpoints})


def test_without_a_terminal_each_endpoint_of_the_verdict_table_is_one_line(git_repo: Path) -> None:
    db = git_repo / "runs.db"
    sha = git(git_repo, "rev-parse", "HEAD")
    long = "catalogue/" * 14 + "end"
    with Store(db) as store:
        for i in range(3):
            store.save(_renamed(make_run(commit=sha, seed=i), long))
    result = run_cli("compare", "--db", str(db), "--base-run", "1", "--head-run", "2", "--head-run", "3",
                     cwd=git_repo)
    assert result.code == 0, result.stderr
    for name in ("/items", "/orders"):
        rows = [line for line in result.stdout.splitlines() if line.startswith("│") and f"GET {name}/" in line]
        assert len(rows) == 1 and rows[0].rstrip().endswith("│"), result.stdout
        assert f"{name}/{long}" in rows[0]
