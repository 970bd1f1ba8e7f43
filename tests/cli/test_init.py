"""`perfgate init`: what it finds in a project, what it writes, what it refuses.

The adoption path of a team that is not this repository (real load, a real install) is in tests/e2e/test_adoption.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perfgate import scaffold
from perfgate.config import Overrides, load_config
from perfgate.errors import ConfigError

from conftest import REPO_ROOT, run_cli

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
    flask = _project(
        tmp_path / "flask", {"requirements.txt": "flask\n", "web.py": "import flask\napp = Flask(__name__)\n"}
    )
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
    for url in (
        "https://github.com/acme/perfgate.git",
        "https://github.com/acme/perfgate",
        "git@github.com:acme/perfgate.git",
    ):
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
