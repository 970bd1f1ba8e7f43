"""The gate's own inputs changed by a branch (config, locustfile, baselines/), in real git repositories."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from perfgate.baselines.gate_inputs import gate_changes
from perfgate.config import load_config
from perfgate.errors import ConfigError
from perfgate.store import Store

from conftest import git, run_cli
from fakes.synthetic import make_run

CONFIG = """\
locustfile = "locustfile.py"

[compare.margins]
p50 = "5%"

[[budgets]]
endpoint = "GET /items"
p95 = "300ms"
"""


def _save_runs(db: Path, sha: str, *, seed: int) -> None:
    with Store(db) as store:
        for i in range(3):
            store.save(make_run(commit=sha, seed=seed + i))


def _repo_with_gate_inputs(repo: Path) -> None:
    (repo / "perfgate.toml").write_text(CONFIG)
    (repo / "locustfile.py").write_text("from locust import HttpUser, task\n\n\nclass U(HttpUser):\n"
                                        "    @task\n    def items(self):\n        self.client.get('/items')\n")
    (repo / "baselines").mkdir()
    (repo / "baselines" / "light.json").write_text('{"kept": "as it was", "lines": [1, 2, 3]}\n')
    (repo / "baselines" / "old.json").write_text('{"to": "be deleted"}\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "gate inputs")


def test_a_branch_that_edits_the_gates_inputs_shows_every_change(git_repo: Path) -> None:
    _repo_with_gate_inputs(git_repo)
    db = git_repo / ".perfgate" / "r.db"
    _save_runs(db, git(git_repo, "rev-parse", "HEAD"), seed=0)
    git(git_repo, "checkout", "-q", "-b", "feature")
    (git_repo / "perfgate.toml").write_text(CONFIG.replace('p50 = "5%"', 'p50 = "100%"')
                                            .replace('"300ms"', '"3000ms"') + "\n# a comment only\n")
    (git_repo / "locustfile.py").write_text((git_repo / "locustfile.py").read_text() + "        pass\n")
    git(git_repo, "mv", "baselines/light.json", "baselines/light-renamed.json")
    git(git_repo, "rm", "-q", "baselines/old.json")
    git(git_repo, "commit", "-q", "-am", "loosen the gate")
    (git_repo / "baselines" / "new.json").write_text("{}\n")  # not even committed yet
    _save_runs(db, git(git_repo, "rev-parse", "HEAD"), seed=10)

    changes = {(c.what, c.path): c for c in gate_changes(load_config(start=git_repo), git_repo, profile="smoke")}
    assert set(changes) == {("config", "perfgate.toml"), ("locustfile", "locustfile.py"),
                            ("baseline", "baselines/light-renamed.json"), ("baseline", "baselines/old.json"),
                            ("baseline", "baselines/new.json")}
    config = changes[("config", "perfgate.toml")]
    assert config.kind == "modified" and "budgets" in config.detail
    assert "compare.margins.p50 '5%' → '100%'" in config.detail
    assert changes[("locustfile", "locustfile.py")].kind == "modified"
    assert changes[("locustfile", "locustfile.py")].detail == "+1 −0 lines"
    renamed = changes[("baseline", "baselines/light-renamed.json")]
    assert renamed.kind == "renamed" and renamed.renamed_from == "baselines/light.json"
    assert changes[("baseline", "baselines/old.json")].kind == "deleted"
    assert changes[("baseline", "baselines/new.json")].kind == "added"

    result = run_cli("compare", "--db", str(db), "--format", "json", cwd=git_repo)
    assert result.code in (0, 1), result.stderr
    listed = {(c["what"], c["path"], c["kind"]) for c in json.loads(result.stdout)["gate_changes"]}
    assert ("baseline", "baselines/light-renamed.json", "renamed") in listed and len(listed) == 5
    markdown = run_cli("compare", "--db", str(db), "--format", "markdown", cwd=git_repo).stdout
    assert "This change edits the gate's own inputs" in markdown
    for line in ("> - config `perfgate.toml` modified: ", "> - locustfile `locustfile.py` modified: +1 −0 lines",
                 "> - baseline `baselines/light-renamed.json` renamed from `baselines/light.json`",
                 "> - baseline `baselines/old.json` deleted", "> - baseline `baselines/new.json` added"):
        assert line in markdown, markdown
    text = run_cli("compare", "--db", str(db), cwd=git_repo).stdout
    assert "  - baseline baselines/light-renamed.json renamed from baselines/light.json" in text
    assert run_cli("compare", "--db", str(db), "--html", str(git_repo / "v.html"), cwd=git_repo).code in (0, 1)
    page = html.unescape((git_repo / "v.html").read_text())
    assert "This change edits the gate's own inputs" in page
    assert "<code>baselines/light-renamed.json</code> renamed from <code>baselines/light.json</code>" in page


def test_only_the_perfgate_section_of_a_pyproject_counts(git_repo: Path) -> None:
    pyproject = git_repo / "pyproject.toml"
    pyproject.write_text('[project]\nname = "shop"\nversion = "1"\n\n[tool.perfgate]\nprofile = "smoke"\n')
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "pyproject")
    git(git_repo, "checkout", "-q", "-b", "feature")
    pyproject.write_text(pyproject.read_text().replace('version = "1"', 'version = "2"'))
    loaded = load_config(start=git_repo)
    assert gate_changes(loaded, git_repo, profile="smoke") == []
    pyproject.write_text(pyproject.read_text() + '\n[tool.perfgate.compare]\nalpha = 0.2\n')
    (change,) = gate_changes(load_config(start=git_repo), git_repo, profile="smoke")
    assert change.path == "pyproject.toml" and change.kind == "modified"
    assert change.detail == "[tool.perfgate] compare.alpha unset → 0.2"


def test_outside_a_repository_or_on_main_nothing_is_listed(tmp_path: Path, git_repo: Path) -> None:
    assert gate_changes(load_config(start=tmp_path), tmp_path, profile="smoke") == []
    assert gate_changes(load_config(start=git_repo), git_repo, profile="smoke") == []


def test_a_config_cannot_widen_a_margin_past_its_bound(tmp_path: Path) -> None:
    for line, ok in (('p50 = "1000000%"', False), ('p95 = "100%"', True), ('throughput = 1.5', False),
                     ('failure_rate = "50%"', True), ('failure_rate = "60%"', False)):
        (tmp_path / "perfgate.toml").write_text(f"[compare.margins]\n{line}\n")
        if ok:
            load_config(start=tmp_path)
            continue
        with pytest.raises(ConfigError, match="less than or equal to") as caught:
            load_config(start=tmp_path)
        assert "\n" not in str(caught.value)
    (tmp_path / "perfgate.toml").write_text('[compare.endpoints."GET /x".margins]\np50 = "300%"\n')
    with pytest.raises(ConfigError, match="compare.endpoints.GET /x.margins.p50"):
        load_config(start=tmp_path)
