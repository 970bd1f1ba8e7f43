"""The adoption path of a team that is not this repository: the example shop copied into a git repository of its
own, `init`, `init --check`, a real run, and the generated comment workflow run in a simulated runner against the
fake GitHub."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from perfgate.reports.markdown import marker

from conftest import REPO_ROOT, git, run_cli
from fakes.fake_github import FakeGitHub

SHOP = REPO_ROOT / "examples" / "shop"


def _run_steps(workflow: Path, job: str, *, workspace: Path, context: dict[str, str], env: dict[str, str],
               checkouts: dict[str, Path], artifacts: dict[str, Path]) -> list[int]:
    """A job of a workflow, step by step, as a runner would: `uses:` steps simulated, `run:` steps in bash."""
    steps = yaml.load(workflow.read_text(), Loader=yaml.BaseLoader)["jobs"][job]["steps"]

    def expand(text: str) -> str:
        return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: context[m.group(1)], text)

    codes = []
    for step in steps:
        uses = step.get("uses", "")
        given = {k: expand(v) for k, v in step.get("with", {}).items()}
        if uses.startswith("actions/checkout@"):
            if "repository" in given:  # another repository at a pinned commit
                target = workspace / given["path"]
                subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(checkouts[given["repository"]]),
                                str(target)], check=True, timeout=120)
                git(target, "checkout", "--quiet", given["ref"])
            codes.append(0)
        elif uses.startswith("actions/download-artifact@"):
            shutil.copytree(artifacts[given["name"]], given["path"])
            codes.append(0)
        elif "run" in step:
            step_env = {**env, **{k: expand(v) for k, v in step.get("env", {}).items()}}
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=workspace, env=step_env, capture_output=True, text=True, timeout=900)
            print(step.get("name"), done.returncode, done.stdout[-3000:], done.stderr[-3000:], sep="\n")
            codes.append(done.returncode)
            if done.returncode:
                break
        else:
            raise AssertionError(f"the simulated runner does not know {uses}")
    return codes


def test_a_team_adopts_perfgate_with_init_and_gets_one_sticky_comment(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(SHOP, shop)
    git(shop, "init", "-q", "-b", "main")
    git(shop, "add", "-A")
    git(shop, "commit", "-qm", "the shop")
    perfgate_sha = git(REPO_ROOT, "rev-parse", "HEAD")
    clean = {k: v for k, v in os.environ.items()
             if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_", "VIRTUAL_ENV", "PYTHON", "UV_"))}
    # The team's environment: the shop's own requirements (here this interpreter's, which has them) on PATH.
    team = {**clean, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{clean['PATH']}"}

    written = run_cli("init", "--perfgate-ref", f"acme/perfgate@{perfgate_sha}", cwd=shop, env=team)
    assert written.code == 0, written.stderr
    checked = run_cli("init", "--check", cwd=shop, env=team, timeout=300)
    assert checked.code == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "init --check passed" in checked.stdout
    git(shop, "add", "-A")
    git(shop, "commit", "-qm", "perfgate init")
    head = git(shop, "rev-parse", "HEAD")

    # What the gate job uploads: a verdict of the head (budgets judged, no baseline yet) and the PR number.
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    recorded = run_cli("run", "--run-time", "4s", "--warmup", "1s", cwd=shop, env=team, timeout=300)
    assert recorded.code == 0, recorded.stderr[-3000:]
    compared = run_cli("compare", "--json", str(artifact / "verdict.json"), cwd=shop, env=team)
    assert compared.code == 0 and (artifact / "verdict.json").exists(), compared.stderr[-3000:]
    (artifact / "pr-number").write_text("7\n")

    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    workspace = tmp_path / "workspace"  # the comment job's checkout holds none of the shop's code
    workspace.mkdir()
    event = tmp_path / "event.json"
    with FakeGitHub(owner="acme", repo="shop").start() as fake:
        fake.add_pull(7, head)
        event.write_text(json.dumps({"workflow_run": {
            "head_sha": head, "html_url": "https://github.com/acme/shop/actions/runs/1", "event": "pull_request",
            "repository": {"full_name": "acme/shop"}, "head_repository": {"full_name": "acme/shop"},
            "pull_requests": [{"number": 7, "head": {"sha": head}}]}}))
        context = {"github.token": "t0ken", "github.event.workflow_run.head_sha": head,
                   "github.event.workflow_run.html_url": "https://github.com/acme/shop/actions/runs/1",
                   "github.event.workflow_run.id": "1", "runner.temp": str(runner_temp)}
        env = {**clean, "RUNNER_TEMP": str(runner_temp), "GITHUB_API_URL": fake.url, "GITHUB_REPOSITORY": "acme/shop",
               "GITHUB_EVENT_PATH": str(event), "GITHUB_ACTIONS": "true", "PERFGATE_GITHUB_PACING": "0"}
        for _ in range(2):  # a second run of the workflow edits the comment, never adds one
            shutil.rmtree(runner_temp / "perfgate-verdict", ignore_errors=True)
            shutil.rmtree(workspace / "perfgate-src", ignore_errors=True)
            codes = _run_steps(shop / ".github/workflows/perf-comment.yml", "comment", workspace=workspace,
                               context=context, env=env, checkouts={"acme/perfgate": REPO_ROOT},
                               artifacts={"perfgate-verdict": artifact})
            assert codes and all(code == 0 for code in codes), codes
        comments = fake.comments(7)
    (ours,) = comments
    assert ours["body"].startswith(marker("smoke")) and ours["user"]["login"] == "github-actions[bot]"
    venv = runner_temp / "perfgate-venv"
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", "import perfgate, sys; print(perfgate.__file__)"],
                           capture_output=True, text=True, timeout=60, env=clean, cwd=runner_temp)
    assert str(venv) in shown.stdout, shown.stdout + shown.stderr  # perfgate installed from the pinned checkout
    for module in ("shop", "locust", "fastapi"):  # never the adopter's project, nor what only measuring needs
        absent = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {module}"], capture_output=True,
                                cwd=runner_temp, env=clean, timeout=60)
        assert absent.returncode != 0, module
    assert tomllib.loads((shop / "perfgate.toml").read_text())["serve"]["ready_url"].endswith("/openapi.json")
