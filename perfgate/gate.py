"""The gate's one pipeline: from what to compare to a verdict with its history, its baseline changes, the
changes to the gate's own inputs, and the runs a report charts.

``perfgate compare``, ``perfgate report``, ``perfgate ab``, ``perfgate calibrate`` and the demo all go through
here, so that every verdict is completed the same way. git is asked once where the head stands against the
main branch (:func:`perfgate.git.main_line`), and that answer is passed to the baseline's selection, the
history and the changes. Renderers take a :class:`GateResult`; none of them reads the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from perfgate.ab.calibrate import Calibration
from perfgate.ab.calibrate import calibrate as run_calibration
from perfgate.ab.session import AbRequest, AbResult, ab_in_repository
from perfgate.baselines.changes import changed_baselines
from perfgate.baselines.gate_inputs import gate_changes
from perfgate.baselines.history import with_history
from perfgate.baselines.selection import select
from perfgate.config import AbConfig, Budget, LoadedConfig, ResolvedProfile, ServeConfig
from perfgate.decide.compare import compare
from perfgate.decide.verdict import SideInfo, Verdict
from perfgate.errors import RunNotFoundError
from perfgate.git import MainLine, main_line
from perfgate.records import RunRecord
from perfgate.store import Store

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Comparison:
    """What ``perfgate compare`` (and ``perfgate report``) compare: by default the current tree's runs against
    the merge-base with the main branch (or a pinned baseline)."""

    profile: str | None = None
    """The profile (default: the config's)."""
    head_ref: str | None = None
    head_run_ids: list[int] = field(default_factory=list)
    base_ref: str | None = None
    base_run_ids: list[int] = field(default_factory=list)
    pinned: bool | None = None
    """True: the pinned baseline; False: never it; None: it when it is newer than the stored baseline."""
    command_line_budgets: list[Budget] = field(default_factory=list)
    """One-off budgets (``--budget``), judged with the config's."""


@dataclass(frozen=True)
class GateResult:
    """A completed verdict and the stored runs of each side (what the HTML report charts)."""

    verdict: Verdict
    base_runs: list[RunRecord]
    head_runs: list[RunRecord]


def compare_stored(loaded: LoadedConfig, store: Store, repo: Path, what: Comparison) -> GateResult:
    """The head's stored runs against the baseline's: the verdict of ``perfgate compare``."""
    main = main_line(repo, loaded.config.main_branch)
    chosen = select(store, loaded, what.profile or loaded.config.profile, repo, head_ref=what.head_ref,
                    head_run_ids=what.head_run_ids or None, base_ref=what.base_ref,
                    base_run_ids=what.base_run_ids or None, pinned=what.pinned,
                    has_command_line_budgets=bool(what.command_line_budgets), main=main)
    verdict = compare(chosen.base, chosen.head, loaded.config.compare, budgets=loaded.config.budgets,
                      command_line_budgets=what.command_line_budgets, expected_budgets=chosen.expected_budgets,
                      expected_source=chosen.expected_source, notes=chosen.notes)
    return _completed(verdict, loaded, store, repo, main, known=[*chosen.base_runs, *chosen.head_runs])


def ab(request: AbRequest, store: Store, notify: Notify) -> GateResult:
    """Base and head measured in this job (same-moment runs or alternate pairs): the verdict of ``perfgate ab``."""
    main = main_line(request.cwd, request.loaded.config.main_branch)
    result: AbResult = ab_in_repository(replace(request, main=main), store, notify)
    known = [run for pair in [*result.pairs, *result.confirmation_pairs] for run in (pair.base, pair.head)]
    return _completed(result.verdict, request.loaded, store, request.cwd, main, known=known,
                      locustfiles=[request.profile.locustfile])


def calibrate(loaded: LoadedConfig, settings: AbConfig, profile: ResolvedProfile, serve: ServeConfig | None,
              cwd: Path, pairs: int, store: Store, notify: Notify) -> Calibration:
    """A/A pairs of the current build: noise per endpoint, what the gate can detect, suggested margins."""
    return run_calibration(loaded, settings, profile, serve, cwd, pairs, store, notify=notify)


def _completed(verdict: Verdict, loaded: LoadedConfig, store: Store, repo: Path, main: MainLine, *,
               known: Iterable[RunRecord], locustfiles: list[str] | None = None) -> GateResult:
    """The verdict with its history, baseline changes and gate input changes, and the runs of each side."""
    verdict = with_history(verdict, store, repo, main.branch, tip=main.tip)
    verdict = verdict.model_copy(update={
        "baseline_changes": changed_baselines(loaded, repo, main),
        "gate_changes": gate_changes(loaded, repo, profile=verdict.profile, locustfiles=locustfiles, main=main)})
    by_id = {run.id: run for run in known if run.id is not None}
    return GateResult(verdict=verdict, base_runs=_runs_of(verdict.base, by_id, store),
                      head_runs=_runs_of(verdict.head, by_id, store))


def _runs_of(side: SideInfo | None, known: dict[int, RunRecord], store: Store) -> list[RunRecord]:
    """The side's runs, from those at hand or else the store; none for a pinned baseline, whose run ids
    belong to the store it was accepted from."""
    if side is None or side.baseline_file is not None:
        return []
    runs = []
    for run_id in side.run_ids:
        if run_id in known:
            runs.append(known[run_id])
            continue
        try:
            runs.append(store.get(run_id))
        except RunNotFoundError:
            continue
    return runs
