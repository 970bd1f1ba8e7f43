"""A head that breaks the service fails the gate, end to end: real git repository, real worktree, the demo
service answering 500 to 75 % of requests on the head, real Locust, then the check through PyGithub against
a fake GitHub server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfgate.demo.walkthrough import make_demo_repo

from conftest import break_demo_head, git, run_cli
from fakes.fake_github import FakeGitHub

pytestmark = pytest.mark.slow



def test_a_head_failing_most_requests_is_broken_exits_1_and_fails_its_check(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    make_demo_repo(repo)
    break_demo_head(repo)
    (tmp_path / "tmp").mkdir()
    # The alternate mode (test_ab_duet.py breaks the head of a duet).
    result = run_cli("ab", "--base", "main", "--mode", "alternate", "-t", "5s", "--warmup", "1s", "--looks", "3",
                     "--db", str(tmp_path / "ab.db"), "--format", "json", "-o", str(tmp_path / "verdict.json"),
                     cwd=repo, env={"TMPDIR": str(tmp_path / "tmp")}, timeout=600)
    assert result.code == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "broken", verdict["headline"]
    assert "error storm" in verdict["headline"]
    assert verdict["sequential"]["stopped"] == "broken"
    assert verdict["sequential"]["looks_taken"] == [1]  # one pair (and its re-run) is enough to tell
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1

    head = git(repo, "rev-parse", "HEAD")
    with FakeGitHub().start() as fake:
        fake.add_pull(7, head)
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": head}}}))
        posted = run_cli("github", "--verdict", str(tmp_path / "verdict.json"), "--check", "check-run", cwd=repo,
                         env={"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/shop",
                              "GITHUB_EVENT_PATH": str(event), "PERFGATE_GITHUB_PACING": "0"})
        assert posted.code == 1, posted.stderr
        (check,) = fake.check_runs
        assert check["conclusion"] == "failure" and check["head_sha"] == head
        (comment,) = fake.comments(7)
        assert "BROKEN" in comment["body"]
