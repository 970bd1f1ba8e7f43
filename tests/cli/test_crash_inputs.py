"""Inputs that used to crash perfgate with a traceback and exit code 1 (the code of a regression).

Each one now gets one line on stderr naming what is wrong, and exit code 2 (fix the input) or 4 (a tool
error); an unexpected exception anywhere is an internal error: one line and exit 4, and ``--debug`` shows
its traceback. Every case runs the real ``perfgate`` command in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.store import Store

from conftest import CliResult, run_cli
from fakes.synthetic import make_run, synthetic_side


def _one_line(result: CliResult, *, codes: tuple[int, ...] = (2,)) -> str:
    """The single stderr line of a failed command; no traceback anywhere."""
    assert result.code in codes, (result.code, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _pinned(tmp_path: Path, **fields: object) -> None:
    data = {"format": 1, "kind": "expected", "profile": "smoke", "reason": "imported",
            "accepted_at": "2026-01-02T03:04:05+00:00", "expected": {"GET /items": {"p95": 100}}, **fields}
    (tmp_path / "baselines").mkdir(exist_ok=True)
    (tmp_path / "baselines" / "smoke.json").write_text(json.dumps(data))


def test_a_naive_date_in_a_pinned_baseline_is_one_line(tmp_path: Path) -> None:
    _pinned(tmp_path, accepted_at="2026-01-02T03:04:05", expires="2027-01-01T00:00:00")
    line = _one_line(run_cli("baseline", "show", cwd=tmp_path))
    assert "baselines/smoke.json: accepted_at:" in line and "timezone" in line


def test_a_non_finite_number_in_a_pinned_baseline_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "smoke.json").write_text(
        '{"format": 1, "kind": "expected", "profile": "smoke", "reason": "r", '
        '"accepted_at": "2026-01-02T03:04:05Z", "expected": {"GET /items": {"p95": NaN}}}')
    line = _one_line(run_cli("baseline", "show", cwd=tmp_path))
    assert "smoke.json: NaN is not a number" in line


def test_a_run_id_beyond_sqlites_integers_is_no_such_run(tmp_path: Path) -> None:
    from perfgate.store import Store

    Store(tmp_path / "r.db").close()  # `show` only reads: the store must exist
    line = _one_line(run_cli("show", "99999999999999999999", "--db", str(tmp_path / "r.db"), cwd=tmp_path))
    assert line.startswith("perfgate: error: no run 99999999999999999999")


def test_an_expiry_beyond_any_date_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.save(make_run())
    for lifetime in ("1e400d", "infd", "nand", "99999999d", "-3d"):
        line = _one_line(run_cli("baseline", "accept", "--run", "1", "--reason", "r", "--expires", lifetime,
                                 "--db", str(db), cwd=tmp_path))
        assert f"--expires: '{lifetime}' is not a positive lifetime" in line
    assert not (tmp_path / "baselines").exists()


@pytest.mark.parametrize("pyproject, where", [
    ("tool = 'perfgate'\n", "tool must be a table"),
    ("[tool]\nperfgate = 'fast'\n", "tool.perfgate must be a table"),
])
def test_a_tool_entry_that_is_not_a_table_is_one_line(tmp_path: Path, pyproject: str, where: str) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    line = _one_line(run_cli("runs", "--db", str(tmp_path / "r.db"), cwd=tmp_path))
    assert where in line and "pyproject.toml" in line


@pytest.mark.parametrize("setting, field", [
    ("[profiles.smoke]\nrun_time = inf", "profiles.smoke.run_time"),
    ("[profiles.smoke]\nrun_time = 1e400", "profiles.smoke.run_time"),
    ("[profiles.smoke]\nspawn_rate = nan", "profiles.smoke.spawn_rate"),
    ("[profiles.smoke]\nwarmup = -inf", "profiles.smoke.warmup"),
    ("[serve]\ncommand = 'x'\nready_timeout = inf", "serve.ready_timeout"),
    ("[ab]\nmax_time = 1e400", "ab.max_time"),
    ("[[budgets]]\np95 = inf", "budgets.0.p95"),
    ("[[budgets]]\nfailure_rate = 'nan%'", "budgets.0.failure_rate"),
    ("[compare.margins]\np50 = inf", "compare.margins.p50"),
    ("[compare]\nalpha = nan", "compare.alpha"),
])
def test_a_non_finite_number_in_the_config_names_its_field(tmp_path: Path, setting: str, field: str) -> None:
    (tmp_path / "perfgate.toml").write_text(f"locustfile = 'lf.py'\n{setting}\n")
    line = _one_line(run_cli("run", "-H", "http://127.0.0.1:9", "--db", str(tmp_path / "r.db"), cwd=tmp_path))
    assert f"perfgate.toml: {field}:" in line


@pytest.mark.parametrize("flag, value", [("-t", "inf"), ("-r", "inf"), ("-r", "nan"), ("--warmup", "1e400"),
                                         ("-t", "99999999h")])
def test_a_non_finite_number_on_the_command_line_names_its_flag(tmp_path: Path, flag: str, value: str) -> None:
    (tmp_path / "lf.py").write_text("")
    line = _one_line(run_cli("run", "-f", "lf.py", "-H", "http://127.0.0.1:9", flag, value,
                             "--db", str(tmp_path / "r.db"), cwd=tmp_path))
    assert line.startswith("perfgate: error: --")


def _verdict_json() -> str:
    rng = np.random.default_rng(3)
    verdict = compare(synthetic_side(rng, runs=4, endpoints=2, label="merge-base"),
                      synthetic_side(rng, runs=4, endpoints=2), CompareConfig())
    text = verdict.to_json()
    assert type(verdict).model_validate_json(text) == verdict  # what perfgate writes, perfgate reads
    return text


@pytest.mark.parametrize("command", ["comment", "github"])
@pytest.mark.parametrize("forgery, message", [
    (lambda t: re.sub(r'"p_value": [0-9.e-]+', '"p_value": NaN', t, count=1), "finite"),
    (lambda t: re.sub(r'"change": [0-9.e-]+', '"change": Infinity', t, count=1), "finite"),
    (lambda t: re.sub(r'"change": [0-9.e-]+', '"change": -Infinity', t, count=1), "finite"),
    (lambda t: re.sub(r'("created_at": "[^"]+?)(Z|[+-]\d\d:\d\d)"', r'\1"', t), "timezone"),
])
def test_a_forged_verdict_is_refused_in_one_line(tmp_path: Path, command: str, forgery, message: str) -> None:
    original = _verdict_json()
    forged = forgery(original)
    assert forged != original
    path = tmp_path / "verdict.json"
    path.write_text(forged)
    line = _one_line(run_cli(command, "--verdict", str(path), "--repo", "acme/shop", "--pr", "7", cwd=tmp_path,
                             env={"GITHUB_API_URL": "http://127.0.0.1:9", "GITHUB_TOKEN": "t0ken"}))
    assert "not a perfgate verdict" in line and message in line


def test_garbage_in_a_store_column_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.save(make_run())
    with sqlite3.connect(db) as conn:
        conn.execute("update runs set started_at = 'the day before yesterday'")
    _one_line(run_cli("show", "1", "--db", str(db), cwd=tmp_path), codes=(2, 4))


# -- the last resort ---------------------------------------------------------------------------------------

def _cli_with(patch: str, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """The real entry point, with ``load_config`` (which every command calls first) replaced in-process."""
    program = textwrap.dedent(f"""
        import perfgate.cli as cli
        import perfgate.cli.common as cli_common
        import typer
        def replaced(*args, **kwargs):
            {patch}
        cli_common.load_config = replaced
        cli.main()
    """)
    full_env = {k: v for k, v in os.environ.items() if k != "PERFGATE_DEBUG"}
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=120,
                          env=full_env)
    return CliResult(done.returncode, done.stdout, done.stderr)


def test_an_internal_error_is_one_line_and_exit_4() -> None:
    result = _cli_with("raise RuntimeError('injected fault\\nwith a second line')", "runs")
    line = _one_line(result, codes=(4,))
    assert line == ("perfgate: internal error: RuntimeError: injected fault with a second line; run with --debug "
                    "for the traceback; please report it")


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback_of_an_internal_error(how: str) -> None:
    args, env = (["--debug", "runs"], {}) if how == "flag" else (["runs"], {"PERFGATE_DEBUG": "1"})
    result = _cli_with("raise KeyError('injected')", *args, env=env)
    assert result.code == 4
    assert "Traceback (most recent call last)" in result.stderr and "in replaced" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "perfgate: internal error: KeyError: 'injected'; please report it"


def test_exit_codes_of_typer_and_click_are_kept() -> None:
    assert _cli_with("raise typer.Exit(3)", "runs").code == 3
    assert _cli_with("raise typer.Exit(0)", "runs").code == 0
    usage = _cli_with("pass", "runs", "--no-such-option")
    assert usage.code == 2 and "No such option" in usage.stderr and "internal error" not in usage.stderr
    assert _cli_with("pass", "--version").code == 0
