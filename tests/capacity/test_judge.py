"""Capacity compared (synthetic searches), stored and read back (a real SQLite file), and the objectives' syntax."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perfgate.capacity.judge import judge_capacity
from perfgate.capacity.steps import objectives_of
from perfgate.config import ResolvedProfile
from perfgate.decide.verdict import Outcome
from perfgate.errors import ConfigError, ExitCode, StoreError
from perfgate.records import CapacityRecord, CapacityStep, GitInfo
from perfgate.store import Store

from fakes.synthetic import ENVIRONMENT

PROFILE = ResolvedProfile(name="smoke", locustfile="/x/lf.py", host="http://127.0.0.1:1", users=1, spawn_rate=1,
                          run_time=3, warmup=1)


def search_of(estimates: list[float], *, commit: str = "b" * 40, width: float = 0.03,
              objectives: tuple[str, ...] = ("p95<60ms",), valid: bool = True, high: float | None = None,
              environment=ENVIRONMENT) -> CapacityRecord:
    brackets = [(e / (1 + width) ** 0.5, e * (1 + width) ** 0.5) for e in estimates]
    return CapacityRecord(
        started_at=datetime(2026, 12, 1, tzinfo=UTC), duration_s=60, profile=PROFILE,
        git=GitInfo(commit=commit, branch="main", dirty=False), environment=environment,
        objectives=list(objectives), capacity=(sum(estimates) / len(estimates)) if valid else None,
        low=min(a for a, _ in brackets) if valid else None, high=max(b for _, b in brackets) if valid else high,
        repeats=estimates if valid else [], brackets=brackets if valid else [], valid=valid,
        first_broken="p95<60ms: GET /work p95 80.0 ms",
        steps=[CapacityStep(offered=10, achieved=10, requests=30, failures=0)],
        reasons=[] if valid else ["the first step, 50/s, already broke p95<60ms: ..."])


def test_a_30_percent_slower_head_is_regressed_and_the_same_capacity_unchanged() -> None:
    base = [search_of([79.0, 80.5, 81.2])]
    slower = judge_capacity(base, [search_of([61.0, 62.3, 60.8], commit="c" * 40)])
    assert slower.outcome is Outcome.REGRESSED and slower.exit_code() is ExitCode.REGRESSION
    assert slower.change is not None and -0.26 < slower.change < -0.21
    assert slower.ci_low < slower.change < slower.ci_high < -0.10
    same = judge_capacity(base, [search_of([80.2, 79.6, 80.9], commit="c" * 40)])
    assert same.outcome is Outcome.UNCHANGED and same.exit_code() is ExitCode.OK
    faster = judge_capacity(base, [search_of([120.0, 118.0, 121.0], commit="c" * 40)])
    assert faster.outcome is Outcome.IMPROVED
    # A 15 % drop measured by a single refinement per side, at a coarse resolution: cannot tell.
    coarse = judge_capacity([search_of([80.0], width=0.4)], [search_of([68.0], commit="c" * 40, width=0.4)])
    assert coarse.outcome is Outcome.INCONCLUSIVE
    assert coarse.exit_code() is ExitCode.OK and coarse.exit_code(strict=True) is ExitCode.UNDECIDED


def test_searches_that_cannot_be_compared_are_invalid_and_a_head_below_its_first_step_regressed() -> None:
    base = [search_of([80.0, 81.0, 79.0])]
    other = judge_capacity(base, [search_of([80.0], commit="c" * 40, objectives=("p99<100ms",))])
    assert other.outcome is Outcome.INVALID and "the baseline has no search like the head's" in other.reasons[0]
    # A baseline searched under both: only its searches like the head's are pooled.
    mixed = judge_capacity([search_of([200.0], objectives=("p99<100ms",)), *base],
                           [search_of([80.5], commit="c" * 40)])
    assert mixed.outcome is Outcome.UNCHANGED and mixed.base.estimates == [80.0, 81.0, 79.0]
    assert other.exit_code() is ExitCode.UNDECIDED
    machine = judge_capacity(base, [search_of([80.0], commit="c" * 40,
                                              environment=ENVIRONMENT.model_copy(update={"cores": 64}))])
    assert machine.outcome is Outcome.INVALID and "different machines" in machine.reasons[0]
    collapsed = judge_capacity(base, [search_of([], commit="c" * 40, valid=False, high=10.0)])
    assert collapsed.outcome is Outcome.REGRESSED and "already at 10/s" in collapsed.reasons[0]
    unknown = judge_capacity(base, [search_of([], commit="c" * 40, valid=False, high=78.0)])
    assert unknown.outcome is Outcome.INVALID and "found no capacity" in unknown.reasons[0]


def test_a_search_is_stored_whole_and_a_damaged_one_is_one_error(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    with Store(db) as store:
        first = store.save_capacity(search_of([80.0, 81.0]))
        second = store.save_capacity(search_of([60.0], commit="c" * 40))
        assert [r.id for r in store.capacity_records()] == [second.id, first.id]
        (read,) = store.capacity_records(commit="bbbb")
        assert read == first
    with sqlite3.connect(db) as conn:
        conn.execute("update capacity set record = ? where id = ?", ['{"capacity": NaN}', first.id])
    with Store(db) as store, pytest.raises(StoreError, match=f"capacity search {first.id} is damaged"):
        store.capacity_records()


def test_objectives_take_the_budgets_syntax_and_refuse_what_is_no_objective() -> None:
    parsed = objectives_of(["p95<60ms"], ["GET /items*: p99 < 200ms, failures<1%"], "perfgate.toml")
    assert [o.text for o in parsed] == ["p95<60ms", "GET /items*: p99 < 200ms, failures<1%"]
    assert parsed[1].budget.endpoint == "GET /items*" and parsed[1].budget.failure_rate == 0.01
    for texts, said in (([], "no objective"), (["rps>10"], "rps is what the search varies"),
                        (["p95 60ms"], "--slo 'p95 60ms': 'p95 60ms' is not a limit")):
        with pytest.raises(ConfigError, match=said):
            objectives_of([], texts, "perfgate.toml")
