"""Every short flag of the CLI means one thing in every command that has it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perfgate.cli import app

from conftest import run_cli
from fakes.repo_runs import main_with_runs


def _commands(command, path: str = "perfgate"):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_each_short_flag_has_one_long_name_across_commands() -> None:
    meanings: dict[str, set[str]] = {}
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if getattr(param, "param_type_name", "") != "option":
                continue
            shorts = [o for o in param.opts + param.secondary_opts if len(o) == 2]
            longs = sorted(o for o in param.opts if o.startswith("--"))
            for short in shorts:
                meanings.setdefault(short, set()).add(longs[0] if longs else f"{path}: no long name")
    assert meanings, "no short flag found: the walk over the commands is broken"
    assert meanings["-n"] == {"--limit"} and meanings["-p"] == {"--profile"}
    shared = {short: longs for short, longs in meanings.items() if len(longs) > 1}
    assert shared == {}


def test_history_counts_commits_with_commits_and_keeps_limit(git_repo: Path) -> None:
    db = git_repo / "runs.db"
    commits = main_with_runs(git_repo, db, [1.0] * 4)
    for flag in ("--commits", "--limit"):
        result = run_cli("history", "--db", str(db), "-e", "GET /items", flag, "2", "--format", "json", cwd=git_repo)
        assert result.code == 0, result.stderr
        (trend,) = json.loads(result.stdout)
        assert [p["commit"] for p in trend["points"]] == commits[-2:]
    refused = run_cli("history", "--db", str(db), "-n", "2", cwd=git_repo)
    assert refused.code != 0 and "-n" in refused.stderr
