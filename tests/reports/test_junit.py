"""JUnit XML: every kind of verdict and a recorded run, checked against a JUnit schema and read by a real consumer.

The schema (tests/reports/schemas/junit.xsd) encodes the structure Jenkins' junit step and GitLab's JUnit reports
read; ``junitparser`` is a second, independent reader.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from perfgate.config import Budget, CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.sides import RunValues
from perfgate.decide.verdict import Outcome, Verdict
from perfgate.records import CheckResult, EndpointStats
from perfgate.reports.junit import run_junit, verdict_junit

from conftest import git, run_cli
from fakes.junit_cases import SCHEMA, read_cases
from fakes.repo_runs import commit, save_runs
from fakes.synthetic import make_run, synthetic_side
from fakes.verdict_cases import CASES


def _expected(verdict: Verdict) -> list[tuple[str, str, str]]:
    """The documented mapping, derived from the verdict on its own."""
    state = {Outcome.REGRESSED: "failure", Outcome.INCONCLUSIVE: "skipped", Outcome.INVALID: "skipped"}
    cases = []
    for endpoint in verdict.endpoints:
        cases += [(endpoint.endpoint, t.metric.value, state.get(t.outcome, "passed")) for t in endpoint.tests]
        if not endpoint.tests:
            cases.append((endpoint.endpoint, "endpoint", "skipped"))
    head = {Outcome.BROKEN: "failure", Outcome.INVALID: "skipped"}.get(verdict.outcome, "passed")
    cases.append(("head", "validity", head))
    cases += [(b.endpoint, f"budget {b.metric}", "passed" if b.passed else "failure") for b in verdict.budgets]
    cases += [("checks", c.name, "passed" if c.passed else "failure") for c in verdict.checks]
    return cases


def _budget_and_check_failed() -> Verdict:
    rng = np.random.default_rng(6)
    base = synthetic_side(rng, runs=5, endpoints=3, label="merge-base")
    head = synthetic_side(rng, runs=5, endpoints=3)
    failing = [dataclasses.replace(r, checks=[CheckResult(name="no overselling", passed=False,
                                                          message="stock went below zero: -1")]) for r in head.runs]
    return compare(base, dataclasses.replace(head, runs=failing), CompareConfig(),
                   budgets=[Budget(endpoint="GET /e1", p95=20.0), Budget(endpoint="GET /e*", p50=1000)])


VERDICTS = {**CASES, "budget and check failed": _budget_and_check_failed()}


def test_the_cases_cover_every_outcome_and_every_junit_state() -> None:
    assert {v.outcome for v in VERDICTS.values()} == set(Outcome)
    states = {s for v in VERDICTS.values() for _, _, s in _expected(v)}
    assert states == {"passed", "failure", "skipped"}


@pytest.mark.parametrize("name", list(VERDICTS))
def test_each_verdict_is_schema_valid_junit_with_the_documented_failures_and_skips(name: str, tmp_path: Path) -> None:
    verdict = VERDICTS[name]
    xml = verdict_junit(verdict, "compare")
    assert Counter(read_cases(xml, tmp_path)) == Counter(_expected(verdict))
    suite = SCHEMA.to_dict(xml)["testsuite"][0]
    assert suite["@name"] == f"perfgate compare {verdict.profile}"
    expected = _expected(verdict)
    assert suite["@tests"] == len(expected)
    assert suite["@failures"] == sum(s == "failure" for *_, s in expected)
    assert suite["@skipped"] == sum(s == "skipped" for *_, s in expected)
    assert {p["@name"]: p["@value"] for p in suite["properties"]["property"]}["verdict"] == verdict.outcome.value


def test_failures_and_skips_say_why(tmp_path: Path) -> None:
    regressed = verdict_junit(CASES["shift +0.3"], "ab")
    assert 'type="regressed"' in regressed and "regressed: change +" in regressed and "beyond the margin" in regressed
    broken = verdict_junit(CASES["broken"], "compare")
    assert '<failure message="broken: ' in broken and 'type="broken"' in broken
    invalid = verdict_junit(CASES["invalid"], "compare")
    assert '<skipped message="invalid: ' in invalid and "environment" in invalid
    budgets = verdict_junit(VERDICTS["budget and check failed"], "compare")
    assert "budget exceeded: p95 " in budgets and " ms, at most 20 ms" in budgets
    assert 'failed in 5 of 5 run(s): stock went below zero: -1' in budgets


def test_an_ab_verdict_carries_its_elapsed_time() -> None:
    suite = SCHEMA.to_dict(verdict_junit(CASES["withdrawn by ab"], "ab"))["testsuite"][0]
    assert suite["@name"] == "perfgate ab smoke" and float(suite["@time"]) == 1.0
    assert suite["@timestamp"].count(":") == 2 and "+" not in suite["@timestamp"]


def test_hostile_endpoint_names_are_escaped_and_what_xml_forbids_is_removed(tmp_path: Path) -> None:
    hostile = 'GET /a"b\'<c>&d\x00\x1b[31m\x07\ufffe\u202eevil</testcase>]]>'
    rng = np.random.default_rng(9)
    sides = []
    for label, shift in (("merge-base", None), ("head", {0: 0.4})):
        side = synthetic_side(rng, runs=5, endpoints=2, label=label, shift=shift)
        runs = [RunValues(r.run_id, None, True, [], {
            (hostile if key == "GET /e0" else key): EndpointStats(**{**s.model_dump(),
                                                                   "name": hostile[4:] if key == "GET /e0" else s.name})
            for key, s in r.endpoints.items()}) for r in side.runs]
        sides.append(dataclasses.replace(side, runs=runs))
    xml = verdict_junit(compare(*sides, CompareConfig()), "compare")
    cases = read_cases(xml, tmp_path)
    names = {classname for classname, _, _ in cases}
    assert "GET /a\"b'<c>&d[31mevil</testcase>]]>" in names
    assert not any(c in xml for c in "\x00\x1b\x07\ufffe\u202e")
    assert ("GET /a\"b'<c>&d[31mevil</testcase>]]>", "p50", "failure") in cases


def test_a_recorded_run_has_a_validity_case_and_one_per_check(tmp_path: Path) -> None:
    good = make_run()
    cases = read_cases(run_junit(good), tmp_path)
    assert cases == [("run", "validity", "passed"), ("checks", "no overselling", "passed")]
    suite = SCHEMA.to_dict(run_junit(good))["testsuite"][0]
    assert suite["@name"] == "perfgate run smoke" and float(suite["@time"]) == good.duration_s

    bad = good.model_copy(update={"valid": False, "invalid_reasons": ["error storm: 40 % of requests failed"],
                                  "checks": [CheckResult(name="stock\x1b is zero", passed=False,
                                                         message="AssertionError: stock ended at 3")]})
    xml = run_junit(bad)
    assert read_cases(xml, tmp_path) == [("run", "validity", "skipped"), ("checks", "stock is zero", "failure")]
    assert 'message="invalid: error storm: 40 % of requests failed"' in xml
    assert "AssertionError: stock ended at 3" in xml


def test_compare_writes_every_output_at_once(git_repo: Path) -> None:
    db = git_repo / "r.db"
    save_runs(db, git(git_repo, "rev-parse", "HEAD"), n=5)
    git(git_repo, "checkout", "-q", "-b", "slow")
    save_runs(db, commit(git_repo, "slow"), n=5, scale=1.5, seed=50)
    out = git_repo / "out"
    result = run_cli("compare", "--db", str(db), "--format", "json", "-o", str(out / "stdout.json"),
                     "--junit", str(out / "junit.xml"), "--json", str(out / "verdict.json"),
                     "--markdown", str(out / "verdict.md"), "--html", str(out / "report.html"), cwd=git_repo)
    assert result.code == 1, result.stderr
    assert (out / "stdout.json").read_text() == result.stdout == (out / "verdict.json").read_text()
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "regressed" and verdict["schema_version"] == 1
    assert (out / "verdict.md").read_text().startswith("<!-- perfgate:verdict profile=smoke -->")
    assert (out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    cases = read_cases((out / "junit.xml").read_text(), git_repo)
    assert ("GET /items", "p50", "failure") in cases and ("GET /orders", "p50", "failure") in cases
    assert ("head", "validity", "passed") in cases
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "report.html", "stdout.json", "verdict.json",
                                                    "verdict.md"]  # no temporary file left behind


def test_an_unwritable_output_is_one_line(git_repo: Path) -> None:
    db = git_repo / "r.db"
    save_runs(db, git(git_repo, "rev-parse", "HEAD"), n=3)
    git(git_repo, "checkout", "-q", "-b", "next")
    save_runs(db, commit(git_repo, "next"), n=3, seed=10)
    (git_repo / "taken").write_text("a file, not a folder\n")
    result = run_cli("compare", "--db", str(db), "--junit", str(git_repo / "taken" / "junit.xml"), cwd=git_repo)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("perfgate: error: cannot write ") and "junit.xml" in result.stderr


def test_the_readme_shows_the_outputs_for_other_cis() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for text in ("--junit", "--markdown", "junit: ", "artifacts:", "junit '"):
        assert text in readme, text


@pytest.mark.parametrize(("command", "flags"), [("run", ("--junit", "--json")),
                                                ("compare", ("--junit", "--json", "--markdown", "--html", "-o")),
                                                ("ab", ("--junit", "--json", "--markdown", "--html", "-o"))])
def test_every_command_that_decides_takes_the_output_files(command: str, flags: tuple[str, ...],
                                                           tmp_path: Path) -> None:
    result = run_cli(command, "--help", cwd=tmp_path, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.code == 0, result.stderr
    for flag in flags:
        assert f" {flag} " in result.stdout or f" {flag}," in result.stdout, flag


@pytest.mark.parametrize(("edit", "into"), [('classname="head" ', ""), ('tests="', 'tests="-'),
                                            ("T12:00:00", "T12:00:00+00:00"), ("<system-out>", "<stdout>")])
def test_the_schema_refuses_what_ci_readers_would_not_take(edit: str, into: str) -> None:
    verdict = CASES["shift +0.3"].model_copy(update={"created_at": CASES["shift +0.3"].created_at.replace(
        hour=12, minute=0, second=0)})
    xml = verdict_junit(verdict, "compare")
    assert SCHEMA.is_valid(xml) and edit in xml
    assert not SCHEMA.is_valid(xml.replace(edit, into, 1).replace("</system-out>", "</stdout>", 1)
                               if edit == "<system-out>" else xml.replace(edit, into, 1))
