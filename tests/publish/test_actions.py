"""The job summary and step outputs, written by the real CLI in a simulated GitHub Actions environment."""

from __future__ import annotations

import json
import re
from pathlib import Path

from perfgate.publish.github_actions import format_outputs
from perfgate.store import Store

from conftest import git, run_cli
from fakes.synthetic import make_run


def parse_outputs(text: str) -> dict[str, str]:
    """GitHub's reading of $GITHUB_OUTPUT: ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)  # ValueError: an unterminated block, as GitHub would fail
            values[name] = "\n".join(lines[i + 1:end])
            i = end + 1
        else:
            name, value = line.split("=", 1)
            values[name] = value
            i += 1
    return values


def test_outputs_survive_line_breaks_and_cannot_inject_other_outputs() -> None:
    hostile = "regressed\nexit-code=0\nverdict<<EOF\nunchanged\nEOF"
    text = format_outputs({"verdict": hostile, "markdown-path": "/tmp/v.md"})
    assert parse_outputs(text) == {"verdict": hostile, "markdown-path": "/tmp/v.md"}


def test_compare_in_actions_writes_the_summary_the_files_and_the_outputs(git_repo: Path, tmp_path: Path) -> None:
    db = git_repo / "runs.db"
    base_sha = git(git_repo, "rev-parse", "HEAD")
    git(git_repo, "checkout", "-q", "-b", "slower")
    (git_repo / "service.txt").write_text("v2\n")
    git(git_repo, "commit", "-q", "-am", "slower")
    head_sha = git(git_repo, "rev-parse", "HEAD")
    with Store(db) as store:
        for i in range(4):
            store.save(make_run(commit=base_sha, seed=i))
            store.save(make_run(commit=head_sha, seed=10 + i, scale=1.4))
    summary, outputs, runner_temp = tmp_path / "summary.md", tmp_path / "output.txt", tmp_path / "runner"
    summary.write_text("# earlier step\n")
    outputs.write_text("earlier=1\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs),
           "RUNNER_TEMP": str(runner_temp), "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "77"}
    result = run_cli("compare", "--db", str(db), cwd=git_repo, env=env)
    assert result.code == 1, result.stderr

    written = parse_outputs(outputs.read_text())
    assert written["earlier"] == "1"  # appended, never overwritten
    assert written["verdict"] == "regressed" and written["exit-code"] == "1"
    markdown = Path(written["markdown-path"]).read_text()
    assert Path(written["markdown-path"]).parent == runner_temp / "perfgate"
    assert markdown.startswith("<!-- perfgate:verdict profile=smoke -->")
    assert summary.read_text() == "# earlier step\n" + markdown
    assert json.loads(Path(written["json-path"]).read_text())["verdict"] == "regressed"
    assert re.search(r"\| GET /items \| 🔴 regressed \|", markdown)
    run = "https://github.com/acme/shop/actions/runs/77"
    assert f"[workflow run]({run})" in markdown and f"[full report]({run}#artifacts)" in markdown


def test_outside_actions_nothing_is_written(git_repo: Path, tmp_path: Path) -> None:
    db = git_repo / "runs.db"
    sha = git(git_repo, "rev-parse", "HEAD")
    with Store(db) as store:
        for i in range(3):
            store.save(make_run(commit=sha, seed=i))
    result = run_cli("compare", "--db", str(db), "--base-run", "1", "--head-run", "2", "--head-run", "3",
                     cwd=git_repo, env={"RUNNER_TEMP": str(tmp_path / "runner")})
    assert result.code == 0, result.stderr
    assert not (tmp_path / "runner").exists() and not (git_repo / ".perfgate" / "reports").exists()
