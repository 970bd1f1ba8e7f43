"""The command line's mapping, in-process: options reach the library as they should, outcomes become exit codes.

Commands run through the real entry point (:func:`perfgate.cli.main`, the one place errors become exit codes)
against real SQLite files and real git repositories; only the load itself is replaced where a test is about
what reaches it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import perfgate.measure.record
from perfgate import cli
from perfgate.baselines.accept import accept
from perfgate.config import load_config
from perfgate.measure.record import RunRequest
from perfgate.store import Store

from conftest import git
from fakes.synthetic import make_run


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``perfgate ARGS`` through the real entry point, in this process: (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["perfgate", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


class Stop(BaseException):
    """Raised by the stand-in load once it has seen what reached it (past the entry point's last resort)."""


def test_load_flags_and_locust_arguments_reach_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "locustfile.py").write_text("from locust import HttpUser, task\n\nclass U(HttpUser):\n"
                                            "    @task\n    def t(self):\n        self.client.get('/')\n")
    (tmp_path / "perfgate.toml").write_text('profile = "smoke"\n')
    monkeypatch.chdir(tmp_path)
    seen: list[RunRequest] = []

    def record_run(request: RunRequest, store: Store, **_: object) -> None:
        seen.append(request)
        raise Stop

    monkeypatch.setattr(perfgate.measure.record, "record_run", record_run)
    with pytest.raises(Stop):
        invoke(capsys, "run", "-H", "http://127.0.0.1:9", "-u", "3", "-r", "1.5", "-t", "7s", "--warmup", "2s",
                 "-T", "read", "write", "-E", "slow,admin", "--db", str(tmp_path / "r.db"), "--",
                 "--stop-timeout", "2")
    profile = seen[0].profile
    assert (profile.users, profile.spawn_rate, profile.run_time, profile.warmup) == (3, 1.5, 7.0, 2.0)
    assert profile.tags == ["read", "write"] and profile.exclude_tags == ["slow", "admin"]
    assert profile.locust_args == ["--stop-timeout", "2"]
    assert profile.host == "http://127.0.0.1:9"


def test_a_tag_flag_without_a_tag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(capsys, "run", "-T", "--users", "2")
    assert code == 2
    assert err.strip() == "perfgate: error: -T needs at least one tag, e.g. -T read write"


def _stored(db: Path, *, head_scale: float) -> tuple[list[int], list[int]]:
    with Store(db) as store:
        base = [store.save(make_run(commit="b" * 40, seed=i)).id for i in range(4)]
        head = [store.save(make_run(commit="e" * 40, seed=10 + i, scale=head_scale)).id for i in range(4)]
    return [i for i in base if i is not None], [i for i in head if i is not None]


@pytest.mark.parametrize(("scale", "strict", "code", "outcome"), [
    (1.0, False, 0, "inconclusive"), (1.0, True, 3, "inconclusive"), (1.5, False, 1, "regressed")])
def test_compare_by_run_ids_exits_by_the_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], scale: float, strict: bool,
                                                 code: int, outcome: str) -> None:
    """Four runs a side of the same distribution cannot rule a 5 % change out; a 50 % slowdown is plain."""
    monkeypatch.chdir(tmp_path)
    base, head = _stored(tmp_path / "r.db", head_scale=scale)
    args = [a for i in base for a in ("--base-run", str(i))] + [a for i in head for a in ("--head-run", str(i))]
    args += ["--strict"] if strict else []
    got, out, err = invoke(capsys, "compare", *args, "--db", str(tmp_path / "r.db"), "--format", "json",
                           "--json", str(tmp_path / "v.json"))
    assert out, err
    verdict = json.loads(out)
    assert (got, verdict["verdict"]) == (code, outcome)
    assert json.loads((tmp_path / "v.json").read_text()) == verdict
    assert verdict["base"]["run_ids"] == base and verdict["head"]["run_ids"] == head


def test_not_found_and_bad_values_are_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _stored(tmp_path / "r.db", head_scale=1.0)
    for args, message in [
        (("show", "99"), "no run 99 in"),
        (("history",), "no history of profile 'smoke'"),
        (("compare", "--base-run", "1", "--head-run", "2", "--budget", "p95<<3"), "--budget"),
        (("baseline", "show"), "no pinned baseline at"),
    ]:
        code, out, err = invoke(capsys, *args, "--db", str(tmp_path / "r.db")) if args[0] != "baseline" \
            else invoke(capsys, *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and message in err, (args, err)


def test_report_shows_the_baseline_a_branch_accepts(git_repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`perfgate report` completes its verdict as `compare` does: a branch that accepts a new baseline says so."""
    monkeypatch.chdir(git_repo)
    db = git_repo / "runs.db"
    main = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-q", "-b", "faster")
    (git_repo / "service.txt").write_text("v2\n")
    git(git_repo, "commit", "-q", "-am", "faster")
    head = git(git_repo, "rev-parse", "HEAD")
    with Store(db) as store:
        for i in range(3):
            store.save(make_run(commit=main, seed=i))
            store.save(make_run(commit=head, branch="faster", seed=10 + i, scale=0.7))
        accept(store, load_config(start=git_repo), git_repo, profile="smoke", reason="the cache is in",
               commit_ref="HEAD")
    git(git_repo, "add", "baselines")
    git(git_repo, "commit", "-q", "-m", "accept the faster baseline")
    html = git_repo / "report.html"
    code, out, err = invoke(capsys, "report", "--db", str(db), "-o", str(html), "--no-pinned", "--head", head)
    assert code == 0, err
    text = html.read_text(encoding="utf-8")
    assert "baselines/smoke.json" in text and "the cache is in" in text


def test_every_command_has_help_in_process() -> None:
    runner = CliRunner()
    names = [c.name or getattr(c.callback, "__name__", "") for c in cli.app.registered_commands]
    assert names[:4] == ["run", "worker", "runs", "import"]
    for name in [*names, "baseline"]:
        result = runner.invoke(cli.app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output
