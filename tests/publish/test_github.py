"""`perfgate github` and `perfgate comment` with the real PyGithub against a fake GitHub REST server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.verdict import Outcome, Verdict
from perfgate.publish.github import REFUSED_TITLE, UNVERIFIED_TITLE, pull_request_from_event
from perfgate.reports.markdown import marker

from conftest import run_cli
from fakes.fake_github import FakeGitHub
from fakes.synthetic import synthetic_side

HEAD = "a1" * 20
MARKER = marker("smoke")
PR = 7


def _verdict(tmp_path: Path, name: str, *, shift: float, head: str = HEAD, noise: float = 0.03,
             budgets: tuple[Budget, ...] = ()) -> Path:
    rng = np.random.default_rng(len(name))
    base = synthetic_side(rng, runs=8, endpoints=3, label="merge-base", run_noise=noise)
    side = synthetic_side(rng, runs=8, endpoints=3, shift={1: shift}, run_noise=noise)
    verdict = compare(base, side.__class__(**{**side.__dict__, "info": side.info.model_copy(update={"commit": head})}),
                      CompareConfig(), budgets=budgets)
    path = tmp_path / f"{name}.json"
    path.write_text(verdict.to_json())
    return path


@pytest.fixture
def fake() -> FakeGitHub:
    with FakeGitHub().start() as server:
        server.add_pull(PR, HEAD)
        for i in range(150):  # two pages (of 100) of other people's comments before ours
            server.add_comment(PR, f"review note {i}", login=f"reviewer{i % 4}")
        yield server


def _repo(name: str = "acme/shop") -> dict:
    return {"full_name": name, "name": name.split("/")[1], "owner": {"login": name.split("/")[0]}}


def _run_event(head_sha: str = HEAD, pulls: list[dict] | None = None, head_repo: str = "acme/shop") -> dict:
    """A workflow_run event payload as GitHub sends it (the fields perfgate reads)."""
    return {"action": "completed", "workflow_run": {
        "event": "pull_request", "head_sha": head_sha, "pull_requests": pulls or [],
        "head_repository": _repo(head_repo), "repository": _repo()}}


def _env(fake: FakeGitHub, tmp_path: Path, event: dict | None = None) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event if event is not None else
                                     {"pull_request": {"number": PR, "head": {"sha": HEAD, "repo": _repo()},
                                                       "base": {"sha": "0" * 40, "repo": _repo()}}}))
    summary = tmp_path / "summary.md"
    return {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/shop",
            "PERFGATE_GITHUB_PACING": "0",
            "GITHUB_EVENT_PATH": str(event_path), "GITHUB_STEP_SUMMARY": str(summary)}


def _ours(fake: FakeGitHub) -> list[dict]:
    return [c for c in fake.comments(PR) if c["user"]["login"] == "github-actions[bot]" and MARKER in c["body"]]


def test_two_gate_runs_leave_one_comment_edited_and_another_bots_alone(fake: FakeGitHub, tmp_path: Path) -> None:
    other = fake.add_comment(PR, MARKER + "\nan old verdict by someone else", login="other-bot[bot]", user_type="Bot")
    env = _env(fake, tmp_path)
    first = run_cli("github", "--verdict", str(_verdict(tmp_path, "slower", shift=0.3)), cwd=tmp_path, env=env)
    assert first.code == 1, first.stderr  # exit by the verdict: regressed
    assert "comment created" in first.stdout
    second = run_cli("github", "--verdict", str(_verdict(tmp_path, "fixed", shift=0.0)), cwd=tmp_path, env=env)
    assert second.code == 0, second.stderr
    assert "comment updated" in second.stdout
    (ours,) = _ours(fake)
    assert "REGRESSED" not in ours["body"].split("\n")[1]
    assert next(c for c in fake.comments(PR) if c["id"] == other)["body"].endswith("by someone else")
    writes = [(m, p) for m, p in fake.requests if m in ("POST", "PATCH")]
    assert [m for m, _ in writes] == ["POST", "PATCH"]
    assert any(m == "GET" and "/issues/7/comments" in p and "page=2" in p for m, p in fake.requests)
    again = run_cli("github", "--verdict", str(tmp_path / "fixed.json"), cwd=tmp_path, env=env)
    assert "comment unchanged" in again.stdout and len(_ours(fake)) == 1


def test_on_change_mode_does_not_start_a_comment_for_an_unchanged_verdict(fake: FakeGitHub, tmp_path: Path) -> None:
    env = _env(fake, tmp_path)
    same = _verdict(tmp_path, "same", shift=0.0, noise=0.003)
    assert json.loads(same.read_text())["verdict"] == "unchanged"
    quiet = run_cli("github", "--verdict", str(same), "--mode", "on-change", cwd=tmp_path, env=env)
    assert quiet.code == 0 and "comment skipped" in quiet.stdout and _ours(fake) == []


def test_a_read_only_token_keeps_the_verdicts_exit_code_and_writes_the_summary(fake: FakeGitHub,
                                                                              tmp_path: Path) -> None:
    fake.fail_next("POST", "/repos/acme/shop/issues/7/comments", 403)
    env = _env(fake, tmp_path)
    result = run_cli("github", "--verdict", str(_verdict(tmp_path, "slower", shift=0.3)), cwd=tmp_path, env=env)
    assert result.code == 1, result.stderr
    assert "workflow_run" in result.stderr and "pull-requests: write" in result.stderr
    assert "t0ken" not in result.stderr + result.stdout
    assert (tmp_path / "summary.md").read_text().startswith(MARKER)
    assert _ours(fake) == []

    # With a check asked for too: the comment's refusal is still reported, and the summary not written twice.
    fake.fail_next("POST", "/repos/acme/shop/issues/7/comments", 403)
    again = run_cli("github", "--verdict", str(tmp_path / "slower.json"), "--check", "status", cwd=tmp_path, env=env)
    assert again.code == 1 and "pull-requests: write" in again.stderr, again.stderr
    assert "comment" not in again.stdout and "status created" in again.stdout
    assert (tmp_path / "summary.md").read_text().count(MARKER) == 1
    assert fake.statuses[0]["sha"] == HEAD and fake.statuses[0]["state"] == "failure"


def test_server_errors_and_rate_limits_are_retried_then_reported(fake: FakeGitHub, tmp_path: Path) -> None:
    env = _env(fake, tmp_path)
    verdict = str(_verdict(tmp_path, "slower", shift=0.3))
    fake.fail_next("GET", "/repos/acme/shop/pulls/7", 500, times=2)
    fake.fail_next("POST", "/repos/acme/shop/issues/7/comments", 403, rate_limited=True)
    recovered = run_cli("github", "--verdict", verdict, cwd=tmp_path, env=env)
    assert recovered.code == 1 and "comment created" in recovered.stdout, recovered.stderr
    assert len(_ours(fake)) == 1

    fake.fail_next("GET", "/repos/acme/shop/pulls/7", 502, times=10)
    failed = run_cli("github", "--verdict", verdict, cwd=tmp_path, env=env)
    assert failed.code == 4 and "after 3 retries" in failed.stderr
    assert len(failed.stderr.strip().splitlines()[-1]) < 400 and "Traceback" not in failed.stderr
    gets = [p for m, p in fake.requests if m == "GET" and p.startswith("/repos/acme/shop/pulls/7")]
    assert 4 <= len(gets) - 3 <= 5  # bounded: the first try and three retries


def test_comment_posts_a_verdict_only_for_the_pull_requests_current_head(fake: FakeGitHub, tmp_path: Path) -> None:
    env = _env(fake, tmp_path, _run_event())
    stale = run_cli("comment", "--verdict", str(_verdict(tmp_path, "old", shift=0.3, head="b2" * 20)),
                    "--pr", str(PR), "--check", "check-run", cwd=tmp_path, env=env)
    assert stale.code == 0 and "not posting a stale verdict" in stale.stderr and _ours(fake) == []
    assert fake.check_runs == []  # nothing at all for an old head
    posted = run_cli("comment", "--verdict", str(_verdict(tmp_path, "new", shift=0.3)), "--pr", str(PR),
                     "--check", "check-run", cwd=tmp_path, env=env)
    assert posted.code == 0, posted.stderr
    assert "comment created" in posted.stdout and "check-run created" in posted.stdout
    assert len(_ours(fake)) == 1 and fake.check_runs[0]["conclusion"] == "failure"
    assert fake.check_runs[0]["head_sha"] == HEAD

    moved = _env(fake, tmp_path, _run_event("c3" * 20))
    other_pr = run_cli("comment", "--verdict", str(tmp_path / "new.json"), "--pr", str(PR), cwd=tmp_path, env=moved)
    assert other_pr.code == 0 and "not at the" in other_pr.stderr and len(_ours(fake)) == 1


def test_an_untrusted_verdict_file_is_validated_and_re_rendered(fake: FakeGitHub, tmp_path: Path) -> None:
    env = _env(fake, tmp_path, _run_event(pulls=[{"number": PR}]))
    good = json.loads(_verdict(tmp_path, "v", shift=0.3).read_text())
    hostile = dict(good, head={**good["head"], "commit": "`@everyone` <img src=x>"})
    (tmp_path / "hostile.json").write_text(json.dumps(hostile))
    refused = run_cli("comment", "--verdict", str(tmp_path / "hostile.json"), cwd=tmp_path, env=env)
    assert refused.code == 2 and "not a perfgate verdict" in refused.stderr and _ours(fake) == []

    sneaky = dict(good, notes=["@everyone <script>x</script> | ping"])
    (tmp_path / "sneaky.json").write_text(json.dumps(sneaky))
    posted = run_cli("comment", "--verdict", str(tmp_path / "sneaky.json"), cwd=tmp_path, env=env)
    assert posted.code == 0, posted.stderr
    (ours,) = _ours(fake)
    assert "@everyone" not in ours["body"] and "<script>" not in ours["body"]
    assert Verdict.model_validate(sneaky).outcome is Outcome.REGRESSED


# -- a verdict is never taken at its word ----------------------------------------------------------------

def _edit_word(data: dict) -> None:
    data["verdict"] = "unchanged"


def _edit_endpoint(data: dict) -> None:
    endpoint = next(e for e in data["endpoints"] if e["verdict"] == "regressed")
    endpoint["verdict"] = "unchanged"


def _edit_test(data: dict) -> None:
    test = next(t for e in data["endpoints"] for t in e["tests"] if t["verdict"] == "regressed")
    test["verdict"] = "unchanged"


def _edit_every_word(data: dict) -> None:
    """Every outcome and the headline made to read UNCHANGED, the numbers left as measured."""
    for endpoint in data["endpoints"]:
        for test in endpoint["tests"]:
            if test["verdict"] == "regressed":
                test["verdict"] = "unchanged"
        if endpoint["verdict"] == "regressed":
            endpoint["verdict"] = "unchanged"
    data["verdict"] = "unchanged"
    data["headline"] = f"UNCHANGED: all {len(data['endpoints'])} endpoint(s) within their margins"


def _edit_budget(data: dict) -> None:
    budget = next(b for b in data["budgets"] if not b["passed"])
    budget["passed"] = True


def _edit_headline(data: dict) -> None:
    data["headline"] = "UNCHANGED: all 3 endpoint(s) within their margins"


@pytest.mark.parametrize("edit", [_edit_word, _edit_endpoint, _edit_test, _edit_every_word, _edit_budget,
                                  _edit_headline], ids=lambda f: f.__name__.removeprefix("_edit_"))
def test_a_forged_verdict_is_refused_and_its_check_fails(fake: FakeGitHub, tmp_path: Path, edit) -> None:  # noqa: ANN001
    env = _env(fake, tmp_path, _run_event(pulls=[{"number": PR}]))
    real = _verdict(tmp_path, "real", shift=0.3, budgets=(Budget(endpoint="GET /e0", p50=1.0),))
    data = json.loads(real.read_text())
    assert data["verdict"] == "regressed"
    edit(data)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))

    result = run_cli("comment", "--verdict", str(forged), "--check", "check-run", cwd=tmp_path, env=env)
    assert result.code == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "the verdict's parts disagree" in last and "edited or is corrupt" in last
    assert "Traceback" not in result.stderr
    (check,) = fake.check_runs
    assert check["conclusion"] == "failure" and check["output"]["title"] == REFUSED_TITLE
    assert check["head_sha"] == HEAD
    (ours,) = _ours(fake)
    assert "verdict refused" in ours["body"] and "UNCHANGED" not in ours["body"]

    # The real verdict still posts, with its real conclusion.
    again = run_cli("comment", "--verdict", str(real), "--check", "check-run", cwd=tmp_path, env=env)
    assert again.code == 0, again.stderr
    assert [c["conclusion"] for c in fake.check_runs] == ["failure", "failure"]
    assert "REGRESSED" in _ours(fake)[0]["body"]


def test_a_forks_verdict_is_not_verified(fake: FakeGitHub, tmp_path: Path) -> None:
    fork = _env(fake, tmp_path, _run_event(pulls=[], head_repo="mallory/shop"))
    same = _verdict(tmp_path, "same", shift=0.0, noise=0.003)
    assert json.loads(same.read_text())["verdict"] == "unchanged"
    posted = run_cli("comment", "--verdict", str(same), "--pr", str(PR), "--check", "check-run", cwd=tmp_path,
                     env=fork)
    assert posted.code == 0, posted.stderr
    check = fake.check_runs[-1]
    assert check["conclusion"] == "neutral" and check["output"]["title"] == UNVERIFIED_TITLE
    (ours,) = _ours(fake)
    marker_line, notice = ours["body"].split("\n")[:2]
    assert marker_line == MARKER and notice.startswith("> ⚠️ **Not verified: measured by the pull request's own")

    slower = run_cli("comment", "--verdict", str(_verdict(tmp_path, "slower", shift=0.3)), "--pr", str(PR),
                     "--check", "check-run", cwd=tmp_path, env=fork)
    assert slower.code == 0, slower.stderr
    check = fake.check_runs[-1]
    assert check["conclusion"] == "failure" and check["output"]["title"].startswith("not verified · REGRESSED")

    own = _env(fake, tmp_path, _run_event(pulls=[{"number": PR}]))
    trusted = run_cli("comment", "--verdict", str(same), "--check", "check-run", cwd=tmp_path, env=own)
    assert trusted.code == 0, trusted.stderr
    check = fake.check_runs[-1]
    assert check["conclusion"] == "success" and check["output"]["title"].startswith("UNCHANGED")
    (ours,) = _ours(fake)
    assert "Not verified" not in ours["body"]


def test_the_event_says_whether_the_head_comes_from_a_fork(tmp_path: Path) -> None:
    def ref(event: dict | None) -> bool:
        environ = {"GITHUB_REPOSITORY": "acme/shop"}
        if event is not None:
            (tmp_path / "e.json").write_text(json.dumps(event))
            environ["GITHUB_EVENT_PATH"] = str(tmp_path / "e.json")
        return pull_request_from_event(environ, number=PR).from_fork

    pull = {"number": PR, "head": {"sha": HEAD, "repo": _repo()}, "base": {"repo": _repo("ACME/shop")}}
    assert ref({"pull_request": pull}) is False
    assert ref({"pull_request": {**pull, "head": {"sha": HEAD, "repo": _repo("mallory/shop")}}}) is True
    assert ref({"pull_request": {**pull, "head": {"sha": HEAD, "repo": None}}}) is True  # a deleted fork
    assert ref(_run_event()) is False
    assert ref(_run_event(head_repo="mallory/shop")) is True
    assert ref({"workflow_run": {**_run_event()["workflow_run"], "head_repository": None}}) is True
    assert ref({"workflow_run": {**_run_event()["workflow_run"], "repository": {}}}) is True
    assert ref({"workflow_run": {"head_sha": HEAD, "pull_requests": []}}) is False  # not GitHub's: says nothing
    assert ref(None) is False  # no event: the gate's own job, run by hand


def test_a_verdict_of_a_newer_schema_is_refused_in_one_line(fake: FakeGitHub, tmp_path: Path) -> None:
    env = _env(fake, tmp_path, _run_event(pulls=[{"number": PR}]))
    good = json.loads(_verdict(tmp_path, "v", shift=0.3).read_text())
    assert good["schema_version"] == 1
    (tmp_path / "newer.json").write_text(json.dumps(dict(good, schema_version=2, future_field={"x": 1})))
    refused = run_cli("comment", "--verdict", str(tmp_path / "newer.json"), cwd=tmp_path, env=env)
    assert refused.code == 2 and _ours(fake) == []
    assert refused.stderr.strip().splitlines() == [
        f"perfgate: error: {tmp_path / 'newer.json'}: verdict schema_version 2 is newer than this perfgate reads "
        "(1); post it with the perfgate version that wrote it"]
    (tmp_path / "older.json").write_text(json.dumps({k: v for k, v in good.items() if k != "schema_version"}))
    posted = run_cli("comment", "--verdict", str(tmp_path / "older.json"), cwd=tmp_path, env=env)
    # A verdict written before the field existed is version 1.
    assert posted.code == 0 and "comment created" in posted.stdout, posted.stderr


def test_the_comment_links_the_measuring_run_given_on_the_command_line_not_its_own(fake: FakeGitHub,
                                                                                  tmp_path: Path) -> None:
    env = {**_env(fake, tmp_path, _run_event()), "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "99"}
    measured = "https://github.com/acme/shop/actions/runs/41"
    posted = run_cli("comment", "--verdict", str(_verdict(tmp_path, "new", shift=0.3)), "--pr", str(PR),
                     "--run-url", measured, "--report-url", measured + "#artifacts", cwd=tmp_path, env=env)
    assert posted.code == 0, posted.stderr
    body = _ours(fake)[0]["body"]
    assert f"[workflow run]({measured})" in body and f"[full report]({measured}#artifacts)" in body
    assert "/runs/99" not in body
    refused = run_cli("comment", "--verdict", str(tmp_path / "new.json"), "--pr", str(PR),
                      "--run-url", "javascript:alert(1)", cwd=tmp_path, env=env)
    assert refused.code == 2 and "https URL" in refused.stderr
