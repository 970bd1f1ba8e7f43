"""A verdict's summaries are re-derived from its parts: every verdict compare makes agrees with itself,
and an edit of any summary, or of a number a summary rests on, is found."""

from __future__ import annotations

import json
import math

import pytest

from perfgate.decide.verdict import Metric, Outcome, Verdict
from perfgate.decide.verify import verify

from fakes.ab_load import FakeLoad, ab_plan
from fakes.verdict_cases import CASES


def test_the_cases_cover_every_outcome() -> None:
    assert {v.outcome for v in CASES.values()} == set(Outcome)


@pytest.mark.parametrize("name", list(CASES))
def test_every_verdict_compare_makes_agrees_with_itself_after_a_json_round_trip(name: str) -> None:
    verdict = Verdict.model_validate_json(CASES[name].to_json())
    assert verify(verdict) == []


def _edited(name: str, edit) -> list[str]:  # noqa: ANN001
    data = json.loads(CASES[name].to_json())
    edit(data)
    return verify(Verdict.model_validate(data))


def _regressed_test(data: dict) -> dict:
    return next(t for e in data["endpoints"] for t in e["tests"] if t["verdict"] == "regressed")


def _set(path: str, value: object):  # noqa: ANN202
    def edit(data: dict) -> None:
        *keys, last = path.split(".")
        target = data
        for key in keys:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return edit


@pytest.mark.parametrize(("name", "edit", "found"), [
    ("shift +0.3", _set("verdict", "unchanged"), "the verdict is unchanged, but"),
    ("shift +0.3", _set("verdict", "improved"), "the verdict is improved, but"),
    ("shift +0.3", lambda d: _regressed_test(d).update(verdict="inconclusive"), "its own numbers make it regressed"),
    ("shift +0.3", lambda d: _regressed_test(d).update(margin=1e6), "margin"),
    ("shift +0.3", lambda d: _regressed_test(d).update(margin=0.9, verdict="inconclusive"), "not the settings'"),
    ("shift +0.3", lambda d: (_regressed_test(d).update(margin=0.9, verdict="inconclusive"),
                              d["settings"]["endpoint_margins"].update({"GET /e1": {"p50": 0.9, "p95": 0.9}})),
     "does not go with"),
    ("shift +0.3", _set("settings.margins.p50", 1e6), "margin p50"),
    ("shift +0.3", lambda d: _regressed_test(d).update(p_adjusted=0.5, verdict="inconclusive"), "not Holm's"),
    ("shift +0.3", lambda d: _regressed_test(d).update(p_adjusted=None, verdict="inconclusive"),
     "left out of the correction"),
    ("shift +0.3", lambda d: _regressed_test(d).update(change=0.0, ci_low=math.expm1(-0.01), ci_high=math.expm1(0.01),
                                                         verdict="unchanged"),
     "does not go with"),
    ("shift +0.3", lambda d: _regressed_test(d).update(change=0.0, verdict="unchanged"), "outside its own interval"),
    ("shift +0.3", lambda d: _regressed_test(d).update(ci_high=0.01 + _regressed_test(d)["ci_high"]), "centred"),
    ("shift +0.3", _set("settings.alpha", 1e-300), "α"),
    ("shift +0.3", _set("settings.alpha", 0.9), "α 0.9 is outside"),
    ("shift +0.3", _set("family_size", 3), "family_size is 3"),
    ("shift +0.3", _set("endpoints.0.judged", False), "tested but left out"),
    ("shift +0.3", _set("headline", "REGRESSED: slower: something else"), "the headline"),
    ("broken", _set("verdict", "invalid"), "the verdict is invalid, but"),
    ("broken", _set("head.own_fault_runs", -6), "run counts disagree"),
    ("broken", _set("base.invalid_runs", 600), "run counts disagree"),
    ("invalid", _set("reasons", []), "the verdict is invalid, but"),
    ("budgets", lambda d: next(b for b in d["budgets"] if not b["passed"]).update(passed=True), "budget"),
    ("budgets", lambda d: next(b for b in d["budgets"] if b["passed"]).update(value=1e9), "budget"),
    ("withdrawn by ab", lambda d: (c := d["sequential"]["confirmation"]).update(confirmed=c["tests"]),
     "its own numbers make it regressed"),
])
def test_an_edited_part_is_found(name: str, edit, found: str) -> None:  # noqa: ANN001
    problems = _edited(name, edit)
    assert problems and any(found in p for p in problems), problems


def test_every_word_edited_to_agree_still_disagrees_with_the_numbers() -> None:
    def forge(data: dict) -> None:
        for endpoint in data["endpoints"]:
            for test in endpoint["tests"]:
                test["verdict"] = "unchanged" if test["verdict"] == "regressed" else test["verdict"]
            endpoint["verdict"] = "unchanged" if endpoint["verdict"] == "regressed" else endpoint["verdict"]
        data["verdict"] = "unchanged"
    problems = _edited("shift +0.3", forge)
    assert any("its own numbers make it regressed" in p for p in problems)


def test_metric_scales_agree_with_the_decision() -> None:
    """Throughput is worse when lower: a throughput test re-derives on its own sign and log scale."""
    verdict = CASES["shift +0.3"]
    throughput = [t for e in verdict.endpoints for t in e.tests if t.metric is Metric.THROUGHPUT]
    assert throughput and verify(verdict) == []


def test_disagreements_are_one_plain_line_for_the_log() -> None:
    from perfgate.decide.verify import describe_problems

    hostile = ["GET /x\n::add-mask::secret\x1b[31m p50 is unchanged, but its own numbers make it regressed"] * 7
    line = describe_problems(hostile)
    assert "\n" not in line and "::" not in line and "\x1b" not in line and line.endswith("and 2 more")


class _SlowOnlyAtFirst:
    """The A/B's first pairs see a slower head; its confirmation pairs do not (a regression that fades)."""

    def __init__(self, load) -> None:  # noqa: ANN001
        self.load = load

    def __call__(self, request, store):  # noqa: ANN001, ANN204
        self.load.head_scale = 1.0 if request.purpose == "confirm" else 1.3
        return self.load(request, store)


@pytest.mark.parametrize(("scale", "confirm", "fades"), [(1.3, None, False), (1.0, None, False), (1.3, 3, False),
                                                          (1.3, 3, True)])
def test_an_ab_verdict_agrees_with_itself(tmp_path, monkeypatch, scale: float, confirm: int | None,  # noqa: ANN001
                                          fades: bool) -> None:
    import perfgate.ab.pairs as pairs
    import perfgate.ab.session as ab
    from perfgate.store import Store

    load = FakeLoad(head_scale=scale)
    monkeypatch.setattr(pairs, "record_run", _SlowOnlyAtFirst(load) if fades else load)
    with Store(tmp_path / "s.db") as store:
        verdict = ab.run_ab(ab_plan(tmp_path, looks=[3, 6], confirm=confirm), store).verdict
    if fades:
        assert verdict.sequential.confirmation is not None and verdict.sequential.confirmation.confirmed == []
        assert verdict.outcome is not Outcome.REGRESSED
    assert verify(Verdict.model_validate_json(verdict.to_json())) == []
