"""A stand-in for the A/B's load runs: synthetic runs of each version's commit, stored in the real store."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from perfgate.ab.pairs import AbPlan, Version
from perfgate.config import CompareConfig, ResolvedProfile, ServeConfig

from fakes.synthetic import make_run

BASE, HEAD = "b" * 40, "e" * 40


class FakeLoad:
    """Stands in for a load run: a synthetic run of the version's commit, stored in the real store.

    ``invalid`` holds (pair, version) to record as invalid, the pair as its id without the session:
    ``a2`` is the first attempt at A/B pair 2, ``a2-2`` its re-run.
    """

    def __init__(self, head_scale: float = 1.0, invalid: set[tuple[str, str]] | None = None) -> None:
        self.head_scale = head_scale
        self.invalid = invalid or set()
        self.seeds = itertools.count(1)
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request, store):  # noqa: ANN001, ANN204 - the signature of record_run
        which = request.repo_dir.name
        pair = request.pair_id.split("-", 1)[1]
        self.calls.append((which, pair))
        run = make_run(HEAD if which == "head" else BASE, seed=next(self.seeds),
                       scale=self.head_scale if which == "head" else 1.0)
        if (pair, which) in self.invalid:
            run = run.model_copy(update={"valid": False, "invalid_reasons": ["error storm (synthetic)"]})
        return store.save(run.model_copy(update={"pair_id": request.pair_id, "trial_id": request.trial_id,
                                                 "purpose": request.purpose}))


def ab_plan(tmp_path: Path, *, looks: list[int], max_time_s: float = math.inf, confirm: int | None = None) -> AbPlan:
    profile = ResolvedProfile(name="smoke", locustfile="/x/lf.py", host="http://127.0.0.1:{port}", users=5,
                              spawn_rate=5, run_time=12, warmup=2)
    return AbPlan(profile=profile, serve=ServeConfig(command="serve {port}"),
                  base=Version("base", tmp_path / "base", tmp_path / "base"),
                  head=Version("head", tmp_path / "head", tmp_path / "head"),
                  compare=CompareConfig(), looks=looks, max_time_s=max_time_s, confirm_pairs=confirm)
