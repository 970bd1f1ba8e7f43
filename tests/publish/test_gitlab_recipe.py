"""examples/gitlab-ci.yml: its structure, the perfgate commands it runs (checked against the CLI), and its
gate script executed by bash with a stub perfgate: the note is posted on a regression and the job keeps
the gate's exit code; a posting failure is never a pass."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from perfgate.cli import app

from conftest import REPO_ROOT

RECIPE = REPO_ROOT / "examples" / "gitlab-ci.yml"


def _recipe() -> dict:
    data = yaml.safe_load(RECIPE.read_text())
    assert isinstance(data, dict)
    return data


def _flatten(commands: list) -> list[str]:
    out: list[str] = []
    for command in commands:
        out += _flatten(command) if isinstance(command, list) else [command]
    assert all(isinstance(c, str) for c in out), out
    return out


def _perfgate_calls(job: dict) -> list[list[str]]:
    calls = []
    for command in _flatten(job.get("before_script", []) + job["script"]):
        for line in command.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "perfgate":
                calls.append(words[1:])
    return calls


def test_the_merge_request_job_is_labelled_keeps_junit_and_the_store() -> None:
    recipe = _recipe()
    job = recipe["perfgate"]
    (rule,) = job["rules"]
    assert '$CI_PIPELINE_SOURCE == "merge_request_event"' in rule["if"]
    assert "$CI_MERGE_REQUEST_LABELS =~ /performance-test/" in rule["if"]
    assert job["artifacts"]["when"] == "always"
    junit = job["artifacts"]["reports"]["junit"]
    (ab,) = [call for call in _perfgate_calls(job) if call[0] == "ab"]
    assert ab[ab.index("--junit") + 1] == junit
    for flag, path in (("--json", "verdict.json"), ("--markdown", "verdict.md"), ("--html", "report.html")):
        assert ab[ab.index(flag) + 1] == path and path in job["artifacts"]["paths"]
    (post,) = [call for call in _perfgate_calls(job) if call[0] == "gitlab"]
    assert post == ["gitlab", "--verdict", "verdict.json"]
    assert job["variables"]["GIT_DEPTH"] == "0"
    assert job["cache"]["policy"] == "pull" and ".perfgate/perfgate.db*" in job["cache"]["paths"]
    history = recipe["perfgate-history"]
    assert history["cache"]["policy"] == "pull-push" and history["cache"]["paths"] == job["cache"]["paths"]
    assert history["cache"]["key"].startswith("perfgate-db-") and job["cache"]["key"].startswith("perfgate-db-")
    assert "CI_JOB_TOKEN" not in " ".join(_flatten(job["script"]))


def test_every_perfgate_command_and_option_of_the_recipe_exists() -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    recipe = _recipe()
    calls = [call for name in ("perfgate", "perfgate-history") for call in _perfgate_calls(recipe[name])]
    assert {call[0] for call in calls} == {"ab", "gitlab", "run"}
    for call in calls:
        command = group.commands.get(call[0])
        assert command is not None, call
        known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for word in call[1:]:
            if word.startswith("--"):
                assert word in known, (call[0], word)


def test_perfgate_is_installed_from_a_commit_checked_to_be_one(tmp_path: Path) -> None:
    install = _flatten(_recipe()[".perfgate-install"])
    assert any("--require-hashes" in c and "requirements/action.txt" in c for c in install)
    assert any('fetch --quiet --depth 1 "$PERFGATE_REPO" "$PERFGATE_COMMIT"' in c for c in install)
    check = install[0]
    for value, code in (("v1.2", 2), ("", 2), ("a" * 39, 2), ("main", 2), ("0123456789abcdef" * 2 + "01234567", 0)):
        done = subprocess.run(["bash", "-c", check], env={**os.environ, "PERFGATE_COMMIT": value},
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == code, (value, done.stdout)


def _gate(tmp_path: Path, ab_code: int, gitlab_code: int, *, writes_verdict: bool = True) -> tuple[int, str]:
    """The job's script, as the runner runs it (bash -e), with a stub perfgate that logs its calls."""
    log = tmp_path / "calls.log"
    stub = tmp_path / "bin" / "perfgate"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(f"""#!{sys.executable}
import sys
open({str(log)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "ab":
    if {writes_verdict!r}:
        open("verdict.json", "w").write("{{}}")
    sys.exit({ab_code})
sys.exit({gitlab_code})
""")
    stub.chmod(0o755)
    (tmp_path / "verdict.json").unlink(missing_ok=True)
    log.unlink(missing_ok=True)
    script = "\n".join(_flatten(_recipe()["perfgate"]["script"]))
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}", "CI_MERGE_REQUEST_DIFF_BASE_SHA": "b" * 40}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    return done.returncode, log.read_text() if log.exists() else ""


@pytest.mark.parametrize("ab_code, gitlab_code, job_code", [
    (0, 0, 0),  # pass, posted
    (1, 1, 1),  # a regression: posted, and the job fails by the gate's code
    (3, 3, 3),  # invalid: posted, exit 3
    (0, 4, 4),  # passed, but the note could not be posted: not a pass
    (0, 2, 2),  # the token is not set: not a pass
    (1, 4, 1),  # a regression whose note failed: still the regression's code
])
def test_the_note_is_posted_whatever_the_verdict_and_the_job_keeps_the_code(
        tmp_path: Path, ab_code: int, gitlab_code: int, job_code: int) -> None:
    code, calls = _gate(tmp_path, ab_code, gitlab_code)
    assert code == job_code
    lines = calls.splitlines()
    assert lines[0].startswith(f"ab --base {'b' * 40} --junit perfgate-junit.xml")
    assert lines[1:] == ["gitlab --verdict verdict.json"]


def test_a_gate_without_a_verdict_posts_nothing_and_fails(tmp_path: Path) -> None:
    code, calls = _gate(tmp_path, 4, 0, writes_verdict=False)
    assert code == 4 and re.fullmatch(r"ab [^\n]*\n", calls)
