"""The A/B's sequential logic: α spent across looks, when it stops, invalid pairs, the time budget.

The load is replaced by synthetic runs with known truth (stored in a real SQLite file),
so that the stopping rules can be checked quickly and over many seeds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import perfgate.ab.pairs as ab
from perfgate.ab.session import run_ab, spend_alpha
from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.verdict import Outcome
from perfgate.store import Store

from fakes.ab_load import FakeLoad, ab_plan
from fakes.synthetic import synthetic_side


def test_alpha_spending_keeps_most_for_the_last_look_and_never_exceeds_alpha() -> None:
    spent = spend_alpha(0.05, [3, 6, 10])
    assert sum(spent) == pytest.approx(0.05)
    assert spent == sorted(spent) and spent[0] == pytest.approx(0.05 * 0.09)
    assert spend_alpha(0.05, [10]) == [pytest.approx(0.05)]


def test_looks_with_spent_alpha_keep_false_alarms_within_alpha_and_unspent_alpha_does_not() -> None:
    """Simulated A/A sequences judged at 3, 6 and 10 pairs: peeking at full α each time inflates false alarms."""
    config = CompareConfig(margins={"p50": 0.002, "p95": 0.002, "throughput": 0.002})
    looks, trials = [3, 6, 10], 300
    alarms = {"spent": 0, "unspent": 0}
    pair_ids = [f"p{i}" for i in range(10)]
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        base = synthetic_side(rng, runs=10, endpoints=3, label="base", pair_ids=pair_ids, run_noise=0.03)
        head = synthetic_side(rng, runs=10, endpoints=3, label="head", pair_ids=pair_ids, run_noise=0.03)
        for name, alphas in (("spent", spend_alpha(0.05, looks)), ("unspent", [0.05] * 3)):
            for n, alpha in zip(looks, alphas, strict=True):
                verdict = compare(dataclasses.replace(base, runs=base.runs[:n]),
                                  dataclasses.replace(head, runs=head.runs[:n]),
                                  config.model_copy(update={"alpha": alpha}))
                if verdict.outcome is Outcome.REGRESSED:
                    alarms[name] += 1
                    break
    assert alarms["spent"] / trials <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / trials)
    assert alarms["unspent"] > alarms["spent"]


def test_a_clear_regression_stops_at_the_first_look_that_can_tell(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    load = FakeLoad(head_scale=1.3)
    monkeypatch.setattr(ab, "record_run", load)
    with Store(tmp_path / "s.db") as store:
        result = run_ab(ab_plan(tmp_path, looks=[3, 6, 10]), store)
    seq = result.verdict.sequential
    assert result.verdict.outcome is Outcome.REGRESSED
    assert seq.stopped == "regressed" and seq.looks_taken[-1] < 10 and seq.pairs == seq.looks_taken[-1]
    assert seq.alpha_spent == pytest.approx(spend_alpha(0.05, [3, 6, 10])[:len(seq.looks_taken)])
    # Balanced order: A B, B A, A B, …
    firsts = [load.calls[i][0] for i in range(0, len(load.calls), 2)]
    assert firsts == ["base", "head"] * (len(firsts) // 2) + ["base"] * (len(firsts) % 2)


def test_no_change_never_regresses_and_stops_at_a_planned_look(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ab, "record_run", FakeLoad())
    with Store(tmp_path / "s.db") as store:
        result = run_ab(ab_plan(tmp_path, looks=[3, 6, 10]), store)
    seq = result.verdict.sequential
    assert result.verdict.outcome in (Outcome.UNCHANGED, Outcome.INCONCLUSIVE)
    assert seq.looks_taken[-1] in (3, 6, 10) and sum(seq.alpha_spent) <= 0.05 + 1e-12
    assert seq.stopped == ("decided" if result.verdict.outcome is Outcome.UNCHANGED else "max-pairs")


def test_a_pair_with_an_invalid_run_is_rerun_once_then_left_out(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ab, "record_run", FakeLoad(invalid={("a2", "head")}))
    with Store(tmp_path / "s.db") as store:
        result = run_ab(ab_plan(tmp_path, looks=[3]), store)
        stored = store.runs()
    seq = result.verdict.sequential
    assert seq.invalid_pairs == 1 and seq.dropped_pairs == 0 and seq.pairs == 3
    assert len(stored) == 8  # pair 2 twice
    assert len({r.pair_id for r in stored}) == 4 and all(r.purpose == "ab" for r in stored)

    monkeypatch.setattr(ab, "record_run", FakeLoad(invalid={("a2", "head"), ("a2-2", "base")}))
    with Store(tmp_path / "t.db") as store:
        result = run_ab(ab_plan(tmp_path, looks=[3]), store)
    seq = result.verdict.sequential
    assert seq.invalid_pairs == 1 and seq.dropped_pairs == 1 and seq.pairs == 2
    assert any("left out" in note for note in result.verdict.notes)


def test_the_time_budget_ends_the_ab_and_the_last_look_gets_the_rest_of_alpha(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ab, "record_run", FakeLoad(head_scale=1.03))  # near the margin: undecided
    clock = itertools.count(0.0, 10.0)  # every reading of the clock is 10 s later
    monkeypatch.setattr(ab.time, "monotonic", lambda: next(clock))
    with Store(tmp_path / "s.db") as store:
        verdict = run_ab(ab_plan(tmp_path, looks=[2, 6], max_time_s=150), store).verdict
    seq = verdict.sequential
    first = 0.05 * (2 / 6) ** 2
    assert seq.stopped == "max-time" and 2 < seq.pairs < 6 and seq.looks_taken == [2, seq.pairs]
    assert seq.alpha_spent == [pytest.approx(first), pytest.approx(0.05 - first)]

    monkeypatch.setattr(ab.time, "monotonic", lambda: next(clock))  # a budget that one pair already uses up
    with Store(tmp_path / "t.db") as store:
        single = run_ab(ab_plan(tmp_path, looks=[3], max_time_s=0), store).verdict
    assert single.sequential.pairs == 1 and single.sequential.stopped == "max-time"
    assert single.outcome is not Outcome.REGRESSED  # one pair is never judged


def test_confirmation_withdraws_a_regression_that_does_not_hold(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    load = FakeLoad(head_scale=1.3)

    def first_slow_then_not(request, store):  # noqa: ANN001, ANN202
        if request.purpose == "confirm":
            load.head_scale = 1.0
        return load(request, store)

    monkeypatch.setattr(ab, "record_run", first_slow_then_not)
    with Store(tmp_path / "s.db") as store:
        result = run_ab(ab_plan(tmp_path, looks=[6], confirm=4), store)
        purposes = [r.purpose for r in store.runs()]
    confirmation = result.verdict.sequential.confirmation
    assert confirmation is not None and confirmation.confirmed == [] and confirmation.pairs == 4
    assert result.verdict.outcome is Outcome.INCONCLUSIVE
    assert all(e.outcome is not Outcome.REGRESSED for e in result.verdict.endpoints)
    assert "not confirmed" in result.verdict.endpoints[0].reasons[-1]
    assert purposes.count("confirm") == 8 and purposes.count("ab") == 12


def test_a_confirmation_without_valid_pairs_leaves_the_regression_standing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invalid = {(f"c{n}", "head") for n in range(1, 4)} | {(f"c{n}-2", "head") for n in range(1, 4)}
    monkeypatch.setattr(ab, "record_run", FakeLoad(head_scale=1.3, invalid=invalid))
    with Store(tmp_path / "s.db") as store:
        verdict = run_ab(ab_plan(tmp_path, looks=[6], confirm=3), store).verdict
    assert verdict.outcome is Outcome.REGRESSED
    assert verdict.sequential.confirmation.pairs == 0 and verdict.sequential.confirmation.confirmed == []
    assert any("the first verdict stands" in note for note in verdict.notes)


def test_an_ab_that_more_pairs_cannot_decide_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run invalid: the comparison is INVALID at the first look, and no pair budget would change it."""
    everything = {(f"a{n}{suffix}", which) for n in range(1, 11) for suffix in ("", "-2") for which in ("base", "head")}
    monkeypatch.setattr(ab, "record_run", FakeLoad(invalid=everything))
    with Store(tmp_path / "s.db") as store:
        verdict = run_ab(ab_plan(tmp_path, looks=[3, 6, 10]), store).verdict
    assert verdict.outcome is Outcome.INVALID
    assert verdict.sequential.stopped == "invalid" and verdict.sequential.looks_taken == [3]
