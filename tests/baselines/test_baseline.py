"""Baseline selection in real git repositories, pinned baseline files, and `perfgate compare` on stored runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perfgate.baselines.accept import accept, import_expected
from perfgate.baselines.pinned import read_pinned
from perfgate.baselines.selection import select
from perfgate.config import load_config
from perfgate.errors import BaselineError, RunNotFoundError, UsageError
from perfgate.records import RunPurpose
from perfgate.store import Store

from conftest import git, run_cli
from fakes.repo_runs import commit, save_runs
from fakes.synthetic import ENVIRONMENT, make_run

LATER = datetime.now(UTC) + timedelta(days=1)


def choose(repo: Path, db: Path, **kwargs):
    loaded = load_config(start=repo)
    with Store(db) as store:
        return select(store, loaded, "smoke", repo, **kwargs)


def test_default_baseline_is_the_merge_base_with_main(git_repo: Path) -> None:
    db = git_repo / "r.db"
    main_sha = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, main_sha, seed=0)
    git(git_repo, "checkout", "-q", "-b", "feature")
    head_sha = commit(git_repo, "feature work")
    head_ids = save_runs(db, head_sha, seed=10)
    chosen = choose(git_repo, db)
    assert chosen.head.info.commit == head_sha and sorted(chosen.head.info.run_ids) == head_ids
    assert chosen.base.info.commit == main_sha and chosen.base.info.label == "merge-base"


def test_a_confirmations_runs_never_serve_as_the_baseline(git_repo: Path) -> None:
    db = git_repo / "r.db"
    main_sha = git(git_repo, "rev-parse", "HEAD")
    with Store(db) as store:
        ab_ids = [store.save(make_run(commit=main_sha, seed=i).model_copy(update={"purpose": RunPurpose.AB})).id
                  for i in range(3)]
        for i in range(3):
            store.save(make_run(commit=main_sha, seed=5 + i).model_copy(update={"purpose": RunPurpose.CONFIRM}))
    git(git_repo, "checkout", "-q", "-b", "feature")
    save_runs(db, commit(git_repo, "feature work"), seed=10)
    chosen = choose(git_repo, db)
    assert sorted(chosen.base.info.run_ids) == ab_ids


def test_falls_back_to_the_nearest_ancestor_with_comparable_runs(git_repo: Path) -> None:
    db = git_repo / "r.db"
    oldest = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, oldest)
    middle = commit(git_repo, "main 2")
    save_runs(db, middle, environment=ENVIRONMENT.model_copy(update={"cpu_model": "another cpu"}))
    commit(git_repo, "main 3")  # the merge-base, without runs
    git(git_repo, "checkout", "-q", "-b", "feature")
    save_runs(db, commit(git_repo, "feature"), seed=20)
    chosen = choose(git_repo, db)
    assert chosen.base.info.commit == oldest  # "main 2" ran elsewhere, "main 3" never ran
    assert chosen.base.info.label == "ancestor 2 of the merge-base"


def test_on_main_the_baseline_is_an_earlier_commit(git_repo: Path) -> None:
    db = git_repo / "r.db"
    first = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, first)
    save_runs(db, commit(git_repo, "second"), seed=5)
    assert choose(git_repo, db).base.info.commit == first


def test_uncommitted_work_is_compared_with_its_own_commit(git_repo: Path) -> None:
    db = git_repo / "r.db"
    sha = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, sha)
    save_runs(db, sha, dirty=True, seed=7)
    (git_repo / "service.txt").write_text("edited\n")
    chosen = choose(git_repo, db)
    assert chosen.head.info.dirty and chosen.head.info.commit == sha
    assert chosen.base.info.commit == sha and not chosen.base.info.dirty


def test_no_baseline_says_what_to_run(git_repo: Path) -> None:
    db = git_repo / "r.db"
    git(git_repo, "checkout", "-q", "-b", "feature")
    save_runs(db, commit(git_repo, "feature"))
    with pytest.raises(RunNotFoundError, match=r"no baseline for profile 'smoke'.*git checkout main && "
                                               r"perfgate run --profile smoke.*perfgate baseline accept"):
        choose(git_repo, db)


def test_no_head_runs_says_what_to_run(git_repo: Path) -> None:
    with pytest.raises(RunNotFoundError, match=r"no runs of profile 'smoke' at HEAD .*perfgate run --profile smoke"):
        choose(git_repo, git_repo / "r.db")


def test_explicit_base_ref_and_run_ids(git_repo: Path) -> None:
    db = git_repo / "r.db"
    first = git(git_repo, "rev-parse", "HEAD")
    first_ids = save_runs(db, first)
    second_ids = save_runs(db, commit(git_repo, "second"), seed=5)
    assert choose(git_repo, db, base_ref="HEAD~1").base.info.commit == first
    chosen = choose(git_repo, db, head_run_ids=first_ids[:2], base_run_ids=second_ids)
    assert chosen.head.info.run_ids == first_ids[:2] and chosen.base.info.run_ids == second_ids
    with pytest.raises(UsageError, match="--base 'nope' names no commit"):
        choose(git_repo, db, base_ref="nope")


def test_accept_writes_a_reviewable_file_that_wins_when_newer(git_repo: Path) -> None:
    db = git_repo / "r.db"
    main_sha = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, main_sha)
    git(git_repo, "checkout", "-q", "-b", "faster")
    faster = commit(git_repo, "faster")
    ids = save_runs(db, faster, scale=0.8, seed=30)
    loaded = load_config(start=git_repo)
    with Store(db) as store:
        path = accept(store, loaded, git_repo, profile="smoke", reason="cache added, reviewed in #12", expires="90d")
    assert path == git_repo / "baselines" / "smoke.json"
    text = path.read_text()
    data = json.loads(text)
    assert list(data) == sorted(data) and text.endswith("\n")
    assert data["accepted_by"] == "Test <test@example.invalid>" and data["reason"] == "cache added, reviewed in #12"
    assert data["commit"] == faster and [r["run_id"] for r in data["runs"]] == ids
    assert data["load_parameters"]["users"] == 5
    assert datetime.fromisoformat(data["expires"]) - datetime.fromisoformat(data["accepted_at"]) == timedelta(days=90)

    git(git_repo, "checkout", "-q", "main")
    pinned = choose(git_repo, db, head_run_ids=[1])  # main's runs, older than the file
    assert pinned.base.info.label == "pinned baseline" and pinned.base.info.accepted_by.startswith("Test")
    # Runs recorded on the merge-base after the acceptance are newer: they win.
    save_runs(db, main_sha, started_at=LATER, seed=40)
    git(git_repo, "checkout", "-q", "faster")
    assert choose(git_repo, db).base.info.label == "merge-base"
    assert choose(git_repo, db, pinned=True).base.info.label == "pinned baseline"


def test_expired_pinned_baseline_is_not_used(git_repo: Path) -> None:
    db = git_repo / "r.db"
    sha = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, sha)
    loaded = load_config(start=git_repo)
    with Store(db) as store:
        path = accept(store, loaded, git_repo, profile="smoke", reason="r")
    data = json.loads(path.read_text())
    data["expires"] = "2020-01-01T00:00:00Z"
    path.write_text(json.dumps(data))
    save_runs(db, commit(git_repo, "next"), seed=9)
    chosen = choose(git_repo, db)
    assert chosen.base.info.label == "merge-base" or chosen.base.info.label.startswith("ancestor")
    assert any("expired on 2020-01-01" in note for note in chosen.notes)


@pytest.mark.parametrize(("content", "message"), [
    ('{"kind": "accepted", "profile": "smoke",', "invalid JSON"),
    ('{"kind": "accepted", "profile": "smoke", "reason": "x"}', "accepted_at: Field required"),
    ('{"kind": "guessed", "profile": "smoke", "reason": "x", "accepted_at": "2026-01-01T00:00:00Z"}', "kind:"),
])
def test_hand_edited_baseline_file_is_reported(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "smoke.json").write_text(content)
    with pytest.raises(BaselineError, match=message) as caught:
        read_pinned(tmp_path / "smoke.json")
    assert "\n" not in str(caught.value) and "perfgate baseline accept" in str(caught.value)


def test_imported_expectations_become_budgets(git_repo: Path) -> None:
    table = git_repo / "expected.json"
    table.write_text(json.dumps([{"endpoint": "GET /items", "P95": 1.0, "rps": 10},
                                 {"endpoint": "GET /orders", "p50": 1000}]))
    loaded = load_config(start=git_repo)
    path = import_expected(loaded, git_repo, profile="smoke", table=table, reason="SLO sheet 2026")
    assert read_pinned(path).kind == "expected"
    save_runs(git_repo / "r.db", git(git_repo, "rev-parse", "HEAD"))
    chosen = choose(git_repo, git_repo / "r.db")
    assert chosen.base is None
    limits = sorted((b.endpoint, b.p95, b.p50, b.rps) for b in chosen.expected_budgets)
    assert limits == [("GET /items", pytest.approx(1.1), None, pytest.approx(9.0)),
                      ("GET /orders", None, pytest.approx(1050), None)]
    bad = git_repo / "bad.json"
    bad.write_text('{"GET /x": {"p95": -3}}')
    with pytest.raises(UsageError, match="GET /x: p95: Input should be greater than 0"):
        import_expected(loaded, git_repo, profile="smoke", table=bad, reason="")


# -- the command line, on stored runs ----------------------------------------------------------------

def test_compare_cli_regression_and_a_a(git_repo: Path) -> None:
    db = git_repo / "r.db"
    main_sha = git(git_repo, "rev-parse", "HEAD")
    save_runs(db, main_sha, n=5)
    git(git_repo, "checkout", "-q", "-b", "slow")
    save_runs(db, commit(git_repo, "slow"), n=5, scale=1.5, seed=50)
    result = run_cli("compare", "--db", str(db), "--format", "json", cwd=git_repo)
    assert result.code == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "regressed"
    assert {e["endpoint"]: e["verdict"] for e in verdict["endpoints"]} == {"GET /items": "regressed",
                                                                          "GET /orders": "regressed"}
    assert verdict["base"]["commit"] == main_sha and verdict["base"]["label"] == "merge-base"

    git(git_repo, "checkout", "-q", "main")
    git(git_repo, "checkout", "-q", "-b", "same")
    save_runs(db, commit(git_repo, "docs only"), n=5, seed=60)
    same = run_cli("compare", "--db", str(db), cwd=git_repo)
    assert same.code == 0, same.stderr
    assert "REGRESSED" not in same.stdout
    markdown = run_cli("compare", "--db", str(db), "--format", "markdown", "-o", str(git_repo / "v.md"),
                       cwd=git_repo)
    assert markdown.stdout.startswith("<!-- perfgate:verdict profile=smoke -->")
    assert (git_repo / "v.md").read_text() == markdown.stdout


def test_compare_cli_different_profiles_is_invalid(git_repo: Path) -> None:
    db = git_repo / "r.db"
    sha = git(git_repo, "rev-parse", "HEAD")
    smoke = save_runs(db, sha, n=3)
    with Store(db) as store:
        light = [store.save(make_run(commit=sha, profile="light", seed=i)).id for i in range(3)]
    args = ["compare", "--db", str(db), "--head-run", str(smoke[0]), "--head-run", str(smoke[1]),
            "--base-run", str(light[0]), "--base-run", str(light[1])]
    result = run_cli(*args, "--format", "json", cwd=git_repo)
    assert result.code == 3  # invalid: the gate cannot tell, and says so
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "invalid" and "different profiles" in verdict["reasons"][0]
    assert run_cli(*args, "--strict", cwd=git_repo).code == 3


def test_compare_cli_errors_are_one_line(git_repo: Path) -> None:
    db = git_repo / "r.db"
    Store(db).close()  # an empty store (a missing one is another error)
    no_runs = run_cli("compare", "--db", str(db), cwd=git_repo)
    assert no_runs.code == 2 and "no runs of profile 'smoke'" in no_runs.stderr and "Traceback" not in no_runs.stderr
    save_runs(db, git(git_repo, "rev-parse", "HEAD"))
    (git_repo / "baselines").mkdir()
    (git_repo / "baselines" / "smoke.json").write_text("{ broken")
    broken = run_cli("compare", "--db", str(db), cwd=git_repo)
    assert broken.code == 2 and "smoke.json: invalid JSON" in broken.stderr
    assert len([line for line in broken.stderr.splitlines() if line.strip()]) == 1


def test_baseline_commands_from_the_cli(git_repo: Path) -> None:
    db = git_repo / "r.db"
    save_runs(db, git(git_repo, "rev-parse", "HEAD"))
    accepted = run_cli("baseline", "accept", "--reason", "first baseline", "--expires", "30d", "--db", str(db),
                       cwd=git_repo)
    assert accepted.code == 0, accepted.stderr
    assert "baselines/smoke.json" in accepted.stdout
    shown = run_cli("baseline", "show", cwd=git_repo)
    assert shown.code == 0 and "accepted by Test <test@example.invalid>" in shown.stdout
    assert "first baseline" in shown.stdout and "GET /items" in shown.stdout
    listed = run_cli("baseline", "list", cwd=git_repo)
    assert listed.code == 0 and "smoke.json" in listed.stdout and "accepted" in listed.stdout

    table = git_repo / "expected.json"
    table.write_text(json.dumps({"GET /items": {"p95": 1.0}}))
    imported = run_cli("baseline", "import", str(table), "--profile", "light", cwd=git_repo)
    assert imported.code == 0, imported.stderr
    assert "expected" in run_cli("baseline", "list", cwd=git_repo).stdout

    no_reason = run_cli("baseline", "accept", "--reason", " ", "--db", str(db), cwd=git_repo)
    assert no_reason.code == 2 and "--reason must say why" in no_reason.stderr
    missing = run_cli("baseline", "show", "--profile", "heavy", cwd=git_repo)
    assert missing.code == 2 and "no pinned baseline at" in missing.stderr


def test_a_pull_request_that_accepts_a_baseline_says_so_in_its_verdict(git_repo: Path) -> None:
    db = git_repo / "r.db"
    save_runs(db, git(git_repo, "rev-parse", "HEAD"), n=4)
    git(git_repo, "checkout", "-q", "-b", "faster")
    faster = commit(git_repo, "faster cache")
    save_runs(db, faster, n=4, scale=0.7, seed=40)
    accepted = run_cli("baseline", "accept", "--db", str(db), "--reason", "cache <b>@team</b> made it faster",
                       cwd=git_repo)
    assert accepted.code == 0, accepted.stderr
    git(git_repo, "add", "baselines/smoke.json")
    git(git_repo, "commit", "-q", "-m", "accept the faster baseline")
    save_runs(db, git(git_repo, "rev-parse", "HEAD"), n=4, scale=0.7, seed=80)
    result = run_cli("compare", "--db", str(db), "--format", "markdown", cwd=git_repo)
    assert result.code == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "This change accepts a new baseline" in line)
    assert "`baselines/smoke.json`" in line and "accepted by Test &lt;test@&#x200B;example.invalid&gt;" in line
    assert "cache &lt;b&gt;@&#x200B;team&lt;/b&gt; made it faster" in line
    on_main = run_cli("compare", "--db", str(db), "--base-run", "1", "--head-run", "2", "--head-run", "3",
                      "--head-run", "4", "--format", "json", cwd=git_repo)
    assert json.loads(on_main.stdout)["baseline_changes"][0]["profile"] == "smoke"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_pinned_baseline_with_a_non_finite_number_is_refused_in_one_line(git_repo: Path, number: str) -> None:
    db = git_repo / "r.db"
    save_runs(db, git(git_repo, "rev-parse", "HEAD"), n=3)
    assert run_cli("baseline", "accept", "--db", str(db), "--reason", "r", cwd=git_repo).code == 0
    path = git_repo / "baselines" / "smoke.json"
    text = path.read_text()
    path.write_text(text.replace('"p50": ', f'"p50": {number}, "_": ', 1))  # the first p50 becomes non-finite
    with pytest.raises(BaselineError, match=f"{number.lstrip('-')}.* is not a number a baseline can hold"):
        read_pinned(path)
    shown = run_cli("baseline", "show", cwd=git_repo)
    assert shown.code == 2 and "not a number a baseline can hold" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1 and "Traceback" not in shown.stderr


def test_a_pinned_baseline_keeps_its_load_topology_and_a_head_from_elsewhere_is_invalid(git_repo: Path) -> None:
    from perfgate.decide.compare import compare
    from perfgate.environment import Topology

    db = git_repo / "r.db"
    main_sha = git(git_repo, "rev-parse", "HEAD")
    three = Topology.of_workers([{"cpu_model": "AMD EPYC", "cores": 2, "os": "Linux 6.1"}] * 3)
    with Store(db) as store:
        for seed in range(3):
            store.save(make_run(commit=main_sha, seed=seed).model_copy(update={"topology": three}))
        mixed = store.save(make_run(commit=main_sha, seed=9)).id  # from this machine alone
    loaded = load_config(start=git_repo)
    with Store(db) as store, pytest.raises(UsageError, match="load topology"):
        accept(store, loaded, git_repo, profile="smoke", reason="r", run_ids=[1, mixed])
    with Store(db) as store:
        path = accept(store, loaded, git_repo, profile="smoke", reason="fleet of three", run_ids=[1, 2, 3])
    assert read_pinned(path).topology == three
    git(git_repo, "checkout", "-q", "-b", "local")
    head_sha = commit(git_repo, "local")
    save_runs(db, head_sha)  # this machine alone
    chosen = choose(git_repo, db, pinned=True)
    verdict = compare(chosen.base, chosen.head, loaded.config.compare)
    assert chosen.base.info.label == "pinned baseline" and verdict.outcome.value == "invalid"
    assert verdict.reasons == ["different load topologies (baseline vs head): 3 worker(s): 3 × AMD EPYC, 2 cores, "
                               "Linux 6.1 vs this machine alone"]
    assert verdict.base.topology == three.describe() and verdict.head.topology is None  # type: ignore[union-attr]
