"""Verdicts of every kind, made by the real compare from synthetic runs with known truth."""

from __future__ import annotations

import dataclasses

import numpy as np

from perfgate.config import Budget, CompareConfig, EndpointSettings, Margins
from perfgate.decide.compare import compare, withdraw
from perfgate.decide.sides import Side
from perfgate.decide.verdict import Confirmation, Outcome, Sequential, Verdict

from fakes.synthetic import ENVIRONMENT, synthetic_side

STORM = "1500 of 2000 measured requests failed: an error storm is not a latency measurement"


def _sides(seed: int, shift: float, *, runs: int = 6, noise: float = 0.03, pairs: bool = False) -> tuple[Side, Side]:
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(runs)] if pairs else None
    base = synthetic_side(rng, runs=runs, endpoints=4, label="merge-base", run_noise=noise, pair_ids=ids)
    head = synthetic_side(rng, runs=runs, endpoints=4, shift={1: shift, 2: shift / 2}, run_noise=noise,
                          pair_ids=ids)
    return base, head


def _broken(side: Side) -> Side:
    runs = [dataclasses.replace(r, valid=False, invalid_reasons=[STORM]) for r in side.runs]
    return dataclasses.replace(side, runs=runs)


def _cases() -> dict[str, Verdict]:
    config = CompareConfig()
    cases = {}
    for seed, shift in enumerate((0.0, 0.3, -0.3, 0.06, 0.12, 0.5)):
        cases[f"shift {shift:+}"] = compare(*_sides(seed, shift), config)
        cases[f"paired {shift:+}"] = compare(*_sides(seed + 20, shift, pairs=True), config)
    base, head = _sides(40, 0.3)
    cases["budgets"] = compare(base, head, config, budgets=[Budget(endpoint="GET /e*", p50=12, rps=200),
                                                            Budget(endpoint="POST *", p95=10)])
    cases["budgets only"] = compare(None, head, config, budgets=[Budget(endpoint="*", p50=1000)])
    cases["broken"] = compare(base, _broken(head), config)
    cases["invalid"] = compare(base, dataclasses.replace(head, environment=ENVIRONMENT.model_copy(
        update={"cpu_model": "other"})), config)
    cases["one run"] = compare(*_sides(41, 0.3, runs=1), config)
    cases["alpha 0.01"] = compare(*_sides(42, 0.3), CompareConfig(alpha=0.01))
    cases["endpoint margins"] = compare(*_sides(43, 0.3), CompareConfig(
        endpoints={"GET /e1": EndpointSettings(margins=Margins(p50=0.5, failure_rate=0.2))}))
    regressed = cases["shift +0.3"]
    flagged = {(e.endpoint, t.metric) for e in regressed.endpoints for t in e.tests if t.outcome is Outcome.REGRESSED}
    names = sorted(f"{e} {m.value}" for e, m in flagged)
    withdrawn = withdraw(regressed, flagged, "REGRESSED at first, not confirmed in 3 fresh pair(s)")
    cases["withdrawn by ab"] = withdrawn.model_copy(update={"sequential": Sequential(
        pairs=6, planned_looks=[6], looks_taken=[6], alpha=0.05, alpha_spent=[0.05], stopped="regressed",
        invalid_pairs=0, dropped_pairs=0, elapsed_s=1.0,
        confirmation=Confirmation(pairs=3, tests=names, confirmed=[]))})
    return cases


CASES = _cases()
