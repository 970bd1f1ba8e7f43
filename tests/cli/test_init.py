"""`perfgate init`: what it finds in a project, what it writes, what it refuses; and the adoption path of a team
that is not this repository: the example shop copied into a git repository of its own, `init`, `init --check`,
and the generated comment workflow run in a simulated runner against the fake GitHub."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from perfgate import scaffold
from perfgate.config import Overrides, load_config
from perfgate.errors import ConfigError
from perfgate.reports.markdown import marker

from conftest import REPO_ROOT, git, run_cli
from fakes.fake_github import FakeGitHub

SHOP = REPO_ROOT / "examples" / "shop"
SHA = "0123456789abcdef0123456789abcdef01234567"
REF = f"acme/perfgate@{SHA}"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


LOCUSTFILE = "from locust import HttpUser, task\n\nclass U(HttpUser):\n    @task\n    def t(self):\n        pass\n"


def test_a_fastapi_project_with_uv_gets_uvicorn_on_the_port_and_openapi_as_the_ready_url(tmp_path: Path) -> None:
    _project(tmp_path, {"uv.lock": "", "api/main.py": "from fastapi import FastAPI\n\napi = FastAPI()\n",
                        "locustfiles/load.py": LOCUSTFILE, "locustfile.py": LOCUSTFILE,
                        ".venv/lib/locustfile.py": LOCUSTFILE})
    found = scaffold.detect(tmp_path)
    assert found.locustfiles == ["locustfile.py", "locustfiles/load.py"]  # locustfile.py first; .venv skipped
    assert found.serve == "uv run uvicorn api.main:api --host 127.0.0.1 --port {port}"
    assert found.ready_url == "http://127.0.0.1:{port}/openapi.json" and found.setup == "uv sync"


def test_flask_django_and_declared_commands(tmp_path: Path) -> None:
    flask = _project(tmp_path / "flask", {"requirements.txt": "flask\n", "web.py": "import flask\napp = Flask(__name__)\n"})
    found = scaffold.detect(flask)
    assert found.serve == "python -m flask --app web:app run --host 127.0.0.1 --port {port}"
    assert found.ready_url is None and found.setup == "python -m pip install -r requirements.txt"

    django = _project(tmp_path / "django", {"manage.py": "", "site/settings.py": ""})
    assert scaffold.detect(django).serve == "python manage.py runserver 127.0.0.1:{port} --noreload"

    procfile = _project(tmp_path / "proc", {"Procfile": "web: gunicorn shop.wsgi:app -b 0.0.0.0:$PORT -w 2\n"})
    found = scaffold.detect(procfile)
    assert found.serve == "python -m gunicorn shop.wsgi:app -b 127.0.0.1:{port} -w 2"
    assert "serve command taken from Procfile" in found.notes

    docker = _project(tmp_path / "docker", {"Dockerfile": 'CMD ["uvicorn", "app:app", "--host", "0.0.0.0"]\n'})
    assert scaffold.detect(docker).serve == "python -m uvicorn app:app --host 127.0.0.1 --port {port}"


def test_the_pin_is_a_github_repository_and_a_full_sha() -> None:
    assert scaffold.PerfgateRef.parse(REF).action == REF
    for bad in ("acme/perfgate@v1.0", "acme/perfgate", f"acme/perf gate@{SHA}", f"a/b@{SHA}\nrun: x", f"../x@{SHA}"):
        with pytest.raises(ConfigError, match="--perfgate-ref must be OWNER/REPO@"):
            scaffold.PerfgateRef.parse(bad)
    for url in ("https://github.com/acme/perfgate.git", "https://github.com/acme/perfgate", "git@github.com:acme/perfgate.git"):
        assert scaffold.GITHUB_URL.match(url)["repo"] == "acme/perfgate"
    assert not scaffold.GITHUB_URL.match("https://evil.example/acme/perfgate")


class _Installed:
    """What importlib.metadata gives for an installed perfgate: its PEP 610 record, when one was written."""

    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return self.direct_url if name == "direct_url.json" else None


@pytest.mark.parametrize(("direct_url", "expected"), [
    (json.dumps({"url": "https://github.com/acme/perfgate", "vcs_info": {"vcs": "git", "commit_id": SHA}}), REF),
    (json.dumps({"url": "https://github.com/acme/perfgate.git", "vcs_info": {"vcs": "git", "commit_id": SHA,
                                                                           "requested_revision": "v0.1.0"}}), REF),
    (json.dumps({"url": "file:///home/me/perfgate", "dir_info": {"editable": True}}), None),   # a local checkout
    (json.dumps({"url": "https://gitlab.example/acme/perfgate", "vcs_info": {"commit_id": SHA}}), None),
    (json.dumps({"url": "https://github.com/acme/perfgate", "vcs_info": {"commit_id": "main"}}), None),
    ("not json", None),
    (None, None),                                                                             # from an index
])
def test_the_default_pin_is_the_commit_perfgate_was_installed_from(monkeypatch: pytest.MonkeyPatch,
                                                                  direct_url: str | None, expected: str | None) -> None:
    monkeypatch.setattr(scaffold.metadata, "distribution", lambda name: _Installed(direct_url))
    found = scaffold.installed_ref()
    assert (found.action if found else None) == expected


def test_nothing_from_the_project_can_become_a_second_line_or_an_expression_in_a_workflow() -> None:
    ref = scaffold.PerfgateRef.parse(REF)
    with pytest.raises(ConfigError, match="cannot be written into perfgate.toml"):
        scaffold.render(ref=ref, version="0.1.0", locustfile="locustfile.py", serve="x --port {port}\n[serve]",
                        ready_url=None, host=None, setup=None)
    for setup in ("uv sync\n      - run: curl evil", "make ${{ secrets.TOKEN }}"):
        with pytest.raises(ConfigError, match="cannot be written into (perfgate.toml|a workflow)"):
            scaffold.render(ref=ref, version="0.1.0", locustfile="locustfile.py", serve="x --port {port}",
                            ready_url=None, host=None, setup=setup)
    with pytest.raises(ConfigError, match="must contain {port}"):
        scaffold.render(ref=scaffold.PerfgateRef.parse(REF), version="0.1.0", locustfile="l.py", serve="x",
                        ready_url=None, host=None, setup=None)


def _safe(workflow: dict, name: str) -> None:
    """The rules tests/e2e/test_action.py holds this repository's workflows to."""
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}: an expression inside run:"
            uses = step.get("uses", "")
            assert not uses.startswith("./"), f"{name}: {uses} is this repository's own action"
            if uses:
                assert PINNED.match(uses), f"{name}: {uses} is not pinned by a full commit SHA"
            if uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] == "false", name


def test_init_writes_a_config_that_loads_and_workflows_pinned_to_this_perfgate(tmp_path: Path) -> None:
    shutil.copytree(SHOP, tmp_path / "shop")
    shop = tmp_path / "shop"
    done = run_cli("init", "--perfgate-ref", REF, cwd=shop)
    assert done.code == 0, done.stderr
    assert "app: FastAPI app `app` in shop/app.py" in done.stdout
    for name in scaffold.EXPLAINED:
        assert f"wrote {name}: " in done.stdout
    loaded = load_config(shop / "perfgate.toml")
    profile = loaded.resolve(None, Overrides(), served=True)
    assert profile.locustfile == "locustfile.py" or str(profile.locustfile).endswith("locustfile.py")
    assert loaded.serve().ready_url == "http://127.0.0.1:{port}/openapi.json"
    assert "uvicorn shop.app:app" in loaded.serve().command
    for name in scaffold.WORKFLOWS:
        text = (shop / ".github" / "workflows" / name).read_text()
        workflow = yaml.load(text, Loader=yaml.BaseLoader)
        _safe(workflow, name)
        assert not re.search(r"PERFGATE_SOURCE: \.\s|pip install \.\s", text)  # never the adopter's project
    comment = yaml.load((shop / ".github/workflows/perf-comment.yml").read_text(), Loader=yaml.BaseLoader)
    checkout = comment["jobs"]["comment"]["steps"][0]
    assert checkout["with"]["repository"] == "acme/perfgate" and checkout["with"]["ref"] == SHA
    gate = yaml.load((shop / ".github/workflows/perf.yml").read_text(), Loader=yaml.BaseLoader)
    assert any(s.get("uses") == REF for s in gate["jobs"]["gate"]["steps"])
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    checked = subprocess.run([zizmor, "--offline", "--no-progress", str(shop / ".github" / "workflows")],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    before = {p: p.read_bytes() for p in shop.rglob("*") if p.is_file()}
    again = run_cli("init", "--perfgate-ref", REF, cwd=shop)
    assert again.code == 2 and "already exists; perfgate init never overwrites" in again.stderr
    assert "Traceback" not in again.stderr
    assert {p: p.read_bytes() for p in shop.rglob("*") if p.is_file()} == before


def test_init_says_what_it_needs(tmp_path: Path) -> None:
    empty = run_cli("init", "--perfgate-ref", REF, cwd=tmp_path)
    assert empty.code == 2 and "no locustfile found" in empty.stderr
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    no_app = run_cli("init", "--perfgate-ref", REF, cwd=tmp_path)
    assert no_app.code == 2 and "no app found to serve" in no_app.stderr and "--serve" in no_app.stderr
    assert not (tmp_path / "perfgate.toml").exists()
    check = run_cli("init", "--check", cwd=tmp_path)
    assert check.code == 2 and "run `perfgate init` first" in check.stderr


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


@pytest.mark.slow
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
