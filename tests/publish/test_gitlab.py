"""`perfgate gitlab` against a fake GitLab REST API on 127.0.0.1: one sticky note per merge request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.errors import GitLabError
from perfgate.publish.gitlab import GitLabClient, MergeRequestRef, post_note
from perfgate.reports.markdown import marker

from conftest import run_cli
from fakes.fake_gitlab import FakeGitLab
from fakes.synthetic import synthetic_side

HEAD = "b2" * 20
MARKER = marker("smoke")


def _verdict(tmp_path: Path, name: str, *, shift: float) -> Path:
    rng = np.random.default_rng(len(name))
    base = synthetic_side(rng, runs=8, endpoints=3, label="merge-base")
    side = synthetic_side(rng, runs=8, endpoints=3, shift={1: shift})
    verdict = compare(base, side.__class__(**{**side.__dict__, "info": side.info.model_copy(update={"commit": HEAD})}),
                      CompareConfig())
    path = tmp_path / f"{name}.json"
    path.write_text(verdict.to_json())
    return path


@pytest.fixture
def fake() -> FakeGitLab:
    with FakeGitLab().start() as server:
        yield server


def _env(fake: FakeGitLab, **changes: str) -> dict[str, str]:
    env = {"CI_API_V4_URL": fake.url, "CI_PROJECT_ID": fake.project, "CI_MERGE_REQUEST_IID": str(fake.iid),
           "PERFGATE_GITLAB_TOKEN": fake.token}
    env.update(changes)
    return {k: v for k, v in env.items() if v}


def test_two_posts_leave_one_note_updated_in_place(fake: FakeGitLab, tmp_path: Path) -> None:
    fake.add_note("looks good", username="reviewer")
    intruder = fake.add_note(MARKER + "\na fake verdict", username="someone")  # the marker alone is not enough
    fake.add_note("added 1 commit", username="someone", system=True)
    first = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "slower", shift=0.3)), cwd=tmp_path, env=_env(fake))
    assert first.code == 1, first.stderr  # exit by the verdict: regressed
    assert "note created" in first.stdout
    (ours,) = fake.ours(MARKER)
    first_body = ours["body"]
    assert first_body.startswith(MARKER) and "regressed" in first_body
    second = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "fixed", shift=0.0)), cwd=tmp_path, env=_env(fake))
    assert second.code == 0, second.stderr
    assert "note updated" in second.stdout
    (again,) = fake.ours(MARKER)
    assert again["id"] == ours["id"] and again["body"] != first_body
    assert intruder["body"] == MARKER + "\na fake verdict"
    assert len(fake.notes) == 4
    before = len(fake.requests)
    third = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "fixed", shift=0.0)), cwd=tmp_path, env=_env(fake))
    assert third.code == 0 and "note unchanged" in third.stdout
    assert not any(method == "PUT" for method, _ in fake.requests[before:])


def test_the_marker_note_on_the_second_page_is_found(fake: FakeGitLab, tmp_path: Path) -> None:
    for i in range(120):
        fake.add_note(f"review note {i}")
    old = fake.add_note(MARKER + "\nan old verdict", username=fake.username)
    for i in range(30):
        fake.add_note(f"later note {i}")
    done = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path, env=_env(fake))
    assert done.code == 0, done.stderr
    assert "note updated" in done.stdout and f"note {old['id']}" in done.stdout
    assert len(fake.notes) == 151 and old["body"] != MARKER + "\nan old verdict"
    pages = [path for method, path in fake.requests if method == "GET" and "/notes" in path]
    assert len(pages) == 2 and "page=2" in pages[1] and "per_page=100" in pages[0]


def test_a_refused_token_is_one_line_exit_4_and_never_printed(fake: FakeGitLab, tmp_path: Path) -> None:
    secret = "glpat-wrong-secret"
    done = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path,
                   env=_env(fake, PERFGATE_GITLAB_TOKEN=secret))
    assert done.code == 4
    assert "401" in done.stderr and "PERFGATE_GITLAB_TOKEN" in done.stderr and "api scope" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert secret not in done.stdout + done.stderr
    assert fake.notes == []
    fake.fail_always = 404
    gone = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path, env=_env(fake))
    assert gone.code == 4 and "404" in gone.stderr and "CI_PROJECT_ID" in gone.stderr


def test_a_server_error_once_is_retried_and_persistent_ones_fail(fake: FakeGitLab, tmp_path: Path) -> None:
    fake.fail_next = [500]
    done = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path, env=_env(fake))
    assert done.code == 0, done.stderr
    assert "note created" in done.stdout and len(fake.ours(MARKER)) == 1
    fake.fail_next = [502, 503, 500, 500]  # more than the retries: a failure, never a pass
    failed = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path, env=_env(fake),
                     timeout=60)
    assert failed.code == 4 and "HTTP 500 after 3 retries" in failed.stderr, failed.stderr


@pytest.mark.parametrize("unset, named", [("PERFGATE_GITLAB_TOKEN", "PERFGATE_GITLAB_TOKEN is not set"),
                                          ("CI_MERGE_REQUEST_IID", "--mr or CI_MERGE_REQUEST_IID"),
                                          ("CI_PROJECT_ID", "--project or CI_PROJECT_ID"),
                                          ("CI_API_V4_URL", "--api-url or CI_API_V4_URL")])
def test_missing_variables_are_a_usage_error_naming_them(fake: FakeGitLab, tmp_path: Path, unset: str,
                                                         named: str) -> None:
    done = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path,
                   env=_env(fake, **{unset: ""}))
    assert done.code == 2 and named in done.stderr, done.stderr
    assert fake.requests == []


def test_flags_name_the_merge_request_and_a_bad_verdict_is_refused(fake: FakeGitLab, tmp_path: Path) -> None:
    env = {"PERFGATE_GITLAB_TOKEN": fake.token}
    done = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), "--api-url", fake.url,
                   "--project", fake.project, "--mr", str(fake.iid), cwd=tmp_path, env=env)
    assert done.code == 0 and "note created" in done.stdout, done.stderr
    edited = json.loads(_verdict(tmp_path, "slow", shift=0.3).read_text())
    assert edited["verdict"] == "regressed"
    edited["verdict"] = "unchanged"  # a regression claiming to pass
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(edited))
    refused = run_cli("gitlab", "--verdict", str(forged), cwd=tmp_path, env=_env(fake))
    assert refused.code == 2 and "disagree" in refused.stderr
    (ours,) = fake.ours(MARKER)
    assert "verdict refused" in ours["body"]


def test_a_redirect_is_not_followed_with_the_token(fake: FakeGitLab, tmp_path: Path) -> None:
    with FakeGitLab().start() as elsewhere:
        fake.redirect_to = elsewhere.url.removesuffix("/api/v4")
        done = run_cli("gitlab", "--verdict", str(_verdict(tmp_path, "v", shift=0.0)), cwd=tmp_path, env=_env(fake))
        assert done.code == 4 and "redirect (302)" in done.stderr, done.stderr
        assert elsewhere.requests == []


def test_rate_limits_are_waited_for_and_oversized_answers_refused(fake: FakeGitLab) -> None:
    waits: list[float] = []
    client = GitLabClient(fake.url, fake.token, sleep=waits.append)
    target = MergeRequestRef(api_url=fake.url, project=fake.project, iid=fake.iid)
    fake.fail_next = [429, 503]
    assert post_note(client, target, MARKER + "\nbody", MARKER).state == "created"
    assert waits == [0.0, 2.0]  # Retry-After: 0 for the 429, then the doubled backoff
    fake.oversize = True
    with pytest.raises(GitLabError, match="over 5000000 bytes"):
        post_note(client, target, MARKER + "\nbody", MARKER)
