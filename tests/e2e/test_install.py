"""Pinned installs: the requirement files match uv.lock, the action and the comment job install from them,
and the comment job's set (no Locust, gevent, SciPy, NumPy) is enough to post, in a real virtual environment
(the action's own install with pip: test_install_pip.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.reports.markdown import marker

from fakes.fake_github import FakeGitHub
from fakes.locked import REPO_ROOT, REQUIREMENTS, action_step, export_module, workflow_step
from fakes.synthetic import synthetic_side

HEAVY = ("locust", "gevent", "greenlet", "scipy", "numpy", "psutil", "sqlite_utils", "zmq")
"""Top-level modules the comment path must neither need nor import."""
HEAD = "a1" * 20
PR = 7




def test_the_requirement_files_are_in_sync_with_uv_lock() -> None:
    export = export_module()
    assert export.stale() == [], "run `python requirements/export.py` after changing uv.lock"
    files = export.exports()
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(files) == {"action.txt", "comment.txt", *(f"action-{extra}.txt" for extra in extras)}
    assert {p.name for p in REQUIREMENTS.glob("*.txt")} == set(files)  # no file left over from an old export
    # What the check compares: a changed hash or version is a difference, the layout of the file is not.
    text = (REQUIREMENTS / "comment.txt").read_text()
    parsed = export.requirements(text)
    assert parsed == export.requirements(text.replace(" \\\n    --hash", " --hash"))
    first_hash = re.search(r"sha256:([0-9a-f]{64})", text).group(1)
    assert export.requirements(text.replace(first_hash, "0" * 64, 1)) != parsed
    assert export.requirements(text.replace("typer==", "typer==9", 1)) != parsed


def test_every_file_pins_each_package_by_hash_and_the_comment_set_is_light() -> None:
    export = export_module()
    for path in REQUIREMENTS.glob("*.txt"):
        found = export.requirements(path.read_text())
        assert found, path
        for spec, hashes in found.items():
            assert re.fullmatch(r"[\w.-]+==[\w.+!-]+( ; .+)?", spec), (path.name, spec)
            assert hashes and all(h.startswith("sha256:") for h in hashes), (path.name, spec)
        assert "hatchling" in _names(found), f"{path.name}: perfgate is built by the locked hatchling"
    comment = _names(export.requirements((REQUIREMENTS / "comment.txt").read_text()))
    assert {"typer", "pydantic", "jinja2", "rich", "pygithub"} <= comment
    assert not comment & {"locust", "gevent", "greenlet", "scipy", "numpy", "psutil", "sqlite-utils", "pyzmq"}
    action = _names(export.requirements((REQUIREMENTS / "action.txt").read_text()))
    assert {"locust", "scipy", "numpy"} <= action and "fastapi" not in action
    assert "fastapi" in _names(export.requirements((REQUIREMENTS / "action-demo.txt").read_text()))


def _names(found: dict[str, frozenset[str]]) -> set[str]:
    return {export_module().name_of(spec) for spec in found}


def _installs(script: str) -> list[str]:
    return [line.strip() for line in script.replace("\\\n", " ").splitlines() if " install " in line]


def test_the_action_and_the_comment_job_install_only_from_the_locked_files() -> None:
    for script in (action_step("Install perfgate")["run"],
                   workflow_step("perf-comment.yml", "comment", "Install perfgate")["run"]):
        installs = _installs(script)
        assert installs
        for line in installs:
            if "-r " in line:  # the dependencies: exactly the locked files, hash-checked, wheels only
                assert all(flag in line for flag in ("--require-hashes", "--no-deps", "--only-binary :all:")), line
                assert re.search(r'-r "(\$locked|\$PERFGATE_SOURCE/requirements/comment\.txt)"$', line), line
            else:  # perfgate itself: no dependency resolved, nothing fetched, the locked build backend
                assert all(flag in line for flag in ("--no-deps", "--no-build-isolation", "--no-index")), line
    assert '"$requirements/action.txt"' in action_step("Install perfgate")["run"]
    assert '"$requirements/action-$name.txt"' in action_step("Install perfgate")["run"]


def test_the_action_refuses_extras_it_has_no_locked_file_for(tmp_path: Path) -> None:
    step = action_step("Install perfgate")
    for extras, expected in (("demo,nosuch", "no locked requirements for extras 'demo,nosuch'"),
                             ("demo[x]", "comma-separated list of names")):
        env = {**os.environ, "EXTRAS": extras, "RUNNER_TEMP": str(tmp_path), "GITHUB_ACTION_PATH": str(REPO_ROOT),
               "GITHUB_OUTPUT": str(tmp_path / "output")}
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and expected in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "perfgate-venv").exists()  # refused before anything was installed


def _verdict(path: Path) -> Path:
    rng = np.random.default_rng(3)
    base = synthetic_side(rng, runs=8, endpoints=3, label="merge-base", run_noise=0.03)
    side = synthetic_side(rng, runs=8, endpoints=3, shift={1: 0.3}, run_noise=0.03)
    head = side.__class__(**{**side.__dict__, "info": side.info.model_copy(update={"commit": HEAD})})
    path.write_text(compare(base, head, CompareConfig()).to_json())
    return path


def _imported(stderr: str) -> set[str]:
    """Top-level modules named by ``-X importtime`` (``import time: self | cumulative | module``)."""
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:[^|]*\|[^|]*\|\s*([\w.]+)", stderr, re.M)}


@pytest.mark.slow
def test_the_comment_job_posts_with_only_what_posting_needs(tmp_path: Path) -> None:
    """perf-comment.yml's install step run for real (a fresh venv, pip, the registry), then `perfgate comment`
    and `perfgate github` from that venv against the fake GitHub: posted, and no heavy module imported."""
    checkout = tmp_path / "checkout"  # the default branch, as actions/checkout leaves it
    shutil.copytree(REPO_ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".pytest_cache", ".perfgate", "*.db"))
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    clean = {k: v for k, v in os.environ.items()
             if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_", "VIRTUAL_ENV", "PYTHON", "UV_"))}
    install = workflow_step("perf-comment.yml", "comment", "Install perfgate")
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install["run"]], cwd=checkout,
                          env={**clean, **install["env"], "RUNNER_TEMP": str(runner_temp)}, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    venv = runner_temp / "perfgate-venv"
    for module in HEAVY:  # not installed at all: an import of one would fail the post
        absent = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {module}"], capture_output=True)
        assert absent.returncode != 0, f"{module} is installed in the comment job's environment"

    perfgate = [str(venv / "bin" / "perfgate")]
    for command in ("comment", "github"):
        helped = subprocess.run([*perfgate, command, "--help"], env=clean, capture_output=True, text=True, timeout=60)
        assert helped.returncode == 0 and "--verdict" in helped.stdout, helped.stderr
    _post_and_check_imports(perfgate, tmp_path, clean, cwd=runner_temp)  # perf-comment.yml runs it from there


def test_the_comment_path_imports_nothing_heavy_even_where_it_is_installed(tmp_path: Path) -> None:
    """The same posts from the development environment, where every heavy module could be imported."""
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_"))}
    _post_and_check_imports([sys.executable, "-m", "perfgate"], tmp_path, env, cwd=tmp_path)


def _post_and_check_imports(perfgate: list[str], tmp_path: Path, env: dict[str, str], *, cwd: Path) -> None:
    """`comment` (the workflow_run job) and `github` (the gate's own job) post to the fake GitHub; Python's
    import trace of each run names no heavy module."""
    verdict = _verdict(tmp_path / "verdict.json")
    workflow_run = tmp_path / "workflow_run.json"
    workflow_run.write_text(json.dumps({"workflow_run": {"head_sha": HEAD, "pull_requests": []}}))
    pull_request = tmp_path / "pull_request.json"
    pull_request.write_text(json.dumps({"pull_request": {"number": PR, "head": {"sha": HEAD}}}))
    with FakeGitHub().start() as fake:
        fake.add_pull(PR, HEAD)
        env = {**env, "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/shop",
               "PERFGATE_GITHUB_PACING": "0", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
               "PYTHONPROFILEIMPORTTIME": "1"}
        posted = subprocess.run([*perfgate, "comment", "--verdict", str(verdict), "--pr", str(PR), "--head-sha", HEAD,
                                 "--check", "check-run"], cwd=cwd, env={**env, "GITHUB_EVENT_PATH": str(workflow_run)},
                                capture_output=True, text=True, timeout=120)
        checked = subprocess.run([*perfgate, "github", "--verdict", str(verdict), "--no-comment", "--check", "status"],
                                 cwd=cwd, env={**env, "GITHUB_EVENT_PATH": str(pull_request)},
                                 capture_output=True, text=True, timeout=120)
        comments = fake.comments(PR)
        check_runs, statuses = fake.check_runs, fake.statuses
    assert posted.returncode == 0 and "comment created" in posted.stdout, posted.stdout + posted.stderr[-3000:]
    assert "check-run created" in posted.stdout
    assert checked.returncode == 1 and "status created" in checked.stdout, checked.stdout + checked.stderr[-3000:]
    (ours,) = comments
    assert ours["body"].startswith(marker("smoke")) and ours["user"]["login"] == "github-actions[bot]"
    assert check_runs[0]["conclusion"] == "failure" and statuses[0]["state"] == "failure"
    for result in (posted, checked):
        imported = _imported(result.stderr)
        assert {"perfgate", "typer", "pydantic", "jinja2", "github"} <= imported  # the trace is really there
        assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
