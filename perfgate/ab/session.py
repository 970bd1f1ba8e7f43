"""Same-job A/B: base and head measured in one job, at the same moments or in alternate pairs, judged at looks.

A baseline measured yesterday on another machine is the largest source of false
alarms. ``perfgate ab`` measures both versions here and now instead:

1. The base commit and a snapshot of the current tree (uncommitted changes included,
   ignored files and data left behind) are checked out into git worktrees (see
   :mod:`perfgate.ab.trees`), so both versions start alike; an optional setup command
   runs once in each tree.
2. Pairs (see :mod:`perfgate.ab.pairs`), in balanced order (A B, B A, A B, …): in the
   alternate mode two short runs one after the other, in the duet mode (the default) one run
   of both versions at the same moments (:mod:`perfgate.measure.duet`); each version served fresh
   on its own free port, after an optional reset command in its tree.
3. After each planned look (3, 6, 10 pairs alternating, 2, 4, 6 same-moment runs by default)
   the paired test of :mod:`perfgate.decide.compare` judges every endpoint and metric, with
   the α of that look: on the runs as replicates when alternating, on the blocks of the
   same-moment runs in the duet mode.
   The A/B stops as soon as the verdict cannot change: every test decided, or a
   regression found; otherwise at the pair or time budget.

α is spent across the looks with a power spending function, α·(n/N)²: little at the
early looks, most kept for the last. Each look's α is the increment, so the looks
together never spend more than α however the looks correlate (a Bonferroni split),
and peeking does not inflate false alarms.

With ``confirm``, a REGRESSED verdict is measured again in fresh pairs and kept
only for the tests that hold there; confirmation runs never serve as a baseline.

Without a base (no main branch, no merge-base with it) but with budgets, the head alone
runs the first look's number of runs and only the budgets are judged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from perfgate.ab.pairs import AbPlan, Pair, Session, Version, check_served
from perfgate.ab.trees import Notify, fresh_trees, head_snapshot
from perfgate.config import AbConfig, AbMode, Budget, LoadedConfig, MetricsConfig, ResolvedProfile, ServeConfig
from perfgate.decide.compare import NO_BASELINE_NOTE, compare, withdraw
from perfgate.decide.sides import Side, side_from_runs
from perfgate.decide.verdict import Confirmation, Metric, Outcome, Sequential, StopReason, Verdict
from perfgate.errors import ConfigError, Interrupted, UsageError
from perfgate.git import MainLine, commit_of, main_line, read_git_info, repository_root
from perfgate.measure.duet import check_duet_profile, unsplittable
from perfgate.measure.locust import check_locust_args, check_locust_config, check_locustfile
from perfgate.measure.summary import own_fault_reasons
from perfgate.records import RunPurpose
from perfgate.store import Store


def spend_alpha(alpha: float, looks: list[int]) -> list[float]:
    """α for each look: increments of α·(n/N)², N the last look."""
    total = looks[-1]
    cumulative = [alpha * (n / total) ** 2 for n in looks]
    return [c - p for c, p in zip(cumulative, [0.0, *cumulative[:-1]], strict=True)]


@dataclass
class AbResult:
    verdict: Verdict
    pairs: list[Pair]
    confirmation_pairs: list[Pair]


def _sides(plan: AbPlan, pairs: list[Pair]) -> tuple[Side, Side]:
    # Every pair's last attempt: the tests use complete valid pairs only, but a head run that stayed
    # invalid against a valid base run is what a broken head looks like, and budgets see every run.
    return side_from_runs("ab base", [p.base for p in pairs]), side_from_runs("ab head", [p.head for p in pairs])


def judge(plan: AbPlan, pairs: list[Pair], alpha: float,
           focus: set[tuple[str, Metric]] | None = None) -> Verdict:
    base, head = _sides(plan, pairs)
    config = plan.compare.model_copy(update={"alpha": alpha})
    notes = []
    if dropped := sum(not p.valid for p in pairs):
        notes.append(f"{dropped} pair(s) left out of the tests: a run was invalid, and again when re-run")
    return compare(base, head, config, budgets=plan.budgets, command_line_budgets=plan.command_line_budgets,
                   notes=notes, focus=focus)


def _head_broke_in(pair: Pair) -> bool:
    """A pair whose head run stayed invalid (after its re-run) by the service's own fault, next to a valid base."""
    return pair.base.valid and bool(own_fault_reasons(pair.head.valid, pair.head.invalid_reasons))


def _settled(verdict: Verdict) -> StopReason | None:
    """Why the verdict can no longer change, or ``None`` to go on."""
    if verdict.outcome is Outcome.BROKEN:
        return StopReason.BROKEN
    if verdict.outcome is Outcome.REGRESSED:
        return StopReason.REGRESSED
    if verdict.outcome in (Outcome.UNCHANGED, Outcome.IMPROVED):
        return StopReason.DECIDED
    if verdict.outcome is Outcome.INVALID or not any(e.outcome is Outcome.INCONCLUSIVE for e in verdict.endpoints):
        # What is left undecided is invalid (too few requests a run, say): more pairs cannot change that.
        return StopReason.INVALID
    return None


def run_ab(plan: AbPlan, store: Store, notify: Notify = lambda _: None) -> AbResult:
    """Run pairs until the verdict settles or the budget ends; confirm a regression when asked."""
    session = Session(plan, store, notify)
    alphas = spend_alpha(plan.compare.alpha, plan.looks)
    pairs: list[Pair] = []
    looks_taken: list[int] = []
    spent: list[float] = []
    verdict: Verdict | None = None
    stopped = StopReason.MAX_PAIRS
    for look, (target, look_alpha) in enumerate(zip(plan.looks, alphas, strict=True)):
        out_of_time = False
        broken: Verdict | None = None
        while len(pairs) < target and broken is None:
            if not session.time_left_for_a_pair():
                out_of_time = True
                break
            pairs.append(session.pair(len(pairs) + 1, RunPurpose.AB))
            if _head_broke_in(pairs[-1]):
                # More pairs cannot make a broken head pass: judge it now (BROKEN spends no α).
                early = judge(plan, pairs, look_alpha)
                broken = early if early.outcome is Outcome.BROKEN else None
        if broken is not None:
            verdict = broken
            looks_taken.append(len(pairs))
            spent.append(look_alpha)
            notify(f"pair {len(pairs)}: the head's runs stayed invalid where the base's were valid: BROKEN")
            stopped = StopReason.BROKEN
            break
        if out_of_time:
            # The last look: it gets every bit of α not spent yet.
            look_alpha = plan.compare.alpha - sum(spent)
        if len(pairs) < plan.min_pairs:
            break
        looks_taken.append(len(pairs))
        spent.append(look_alpha)
        verdict = judge(plan, pairs, look_alpha)
        notify(f"look {look + 1} at {len(pairs)} pair(s), α {look_alpha:.4f}: {verdict.outcome.value.upper()}")
        reason = _settled(verdict)
        if reason or out_of_time:
            stopped = reason or StopReason.MAX_TIME
            break
    if verdict is None:
        # Not even two pairs fitted the time budget: judge what there is with all of α.
        verdict = judge(plan, pairs, plan.compare.alpha)
        looks_taken, spent, stopped = [len(pairs)], [plan.compare.alpha], StopReason.MAX_TIME

    confirmation_pairs: list[Pair] = []
    confirmation = None
    if verdict.outcome is Outcome.REGRESSED and plan.confirm_pairs:
        verdict, confirmation_pairs, confirmation = _confirm(plan, session, verdict)

    sequential = Sequential(
        pairs=sum(p.valid for p in pairs), planned_looks=plan.looks, looks_taken=looks_taken,
        alpha=plan.compare.alpha, alpha_spent=spent, stopped=stopped,
        invalid_pairs=sum(p.attempts > 1 for p in pairs), dropped_pairs=sum(not p.valid for p in pairs),
        elapsed_s=session.elapsed, confirmation=confirmation, mode=plan.mode)
    notes = [*verdict.notes, *session.state_notes()]
    return AbResult(verdict=verdict.model_copy(update={"sequential": sequential, "notes": notes}), pairs=pairs,
                    confirmation_pairs=confirmation_pairs)


def _confirm(plan: AbPlan, session: Session, verdict: Verdict) -> tuple[Verdict, list[Pair], Confirmation]:
    """Measure the flagged tests again in fresh pairs; withdraw the ones that do not hold there."""
    flagged = {(e.endpoint, t.metric) for e in verdict.endpoints for t in e.tests if t.outcome is Outcome.REGRESSED}
    names = sorted(f"{endpoint} {metric.value}" for endpoint, metric in flagged)
    session.notify(f"confirming {', '.join(names)} in {plan.confirm_pairs} fresh pair(s)")
    pairs: list[Pair] = []
    while len(pairs) < (plan.confirm_pairs or 0) and session.time_left_for_a_pair():
        pairs.append(session.pair(len(pairs) + 1, RunPurpose.CONFIRM))
    check = judge(plan, pairs, plan.compare.alpha, focus=flagged) if len(pairs) >= plan.min_pairs else None
    if check is None or check.outcome in (Outcome.INVALID, Outcome.BROKEN) or not any(p.valid for p in pairs):
        # No evidence either way (out of time, or every confirmation run invalid): the regression stands.
        note = ("the head broke the service during the confirmation; the first verdict stands"
                if check is not None and check.outcome is Outcome.BROKEN else
                "the confirmation got too few valid pairs (time budget or invalid runs); the first verdict stands")
        session.notify(f"confirmation: {note}")
        return (verdict.model_copy(update={"notes": [*verdict.notes, note]}), pairs,
                Confirmation(pairs=sum(p.valid for p in pairs), tests=names, confirmed=[],
                             run_ids=[r.id for p in pairs for r in (p.base, p.head) if r.id is not None]))
    held = {(e.endpoint, t.metric) for e in check.endpoints for t in e.tests if t.outcome is Outcome.REGRESSED}
    session.notify(f"confirmation: {len(held)} of {len(flagged)} flagged test(s) held")
    confirmation = Confirmation(
        pairs=sum(p.valid for p in pairs), tests=names,
        confirmed=sorted(f"{endpoint} {metric.value}" for endpoint, metric in held),
        run_ids=[r.id for p in pairs for r in (p.base, p.head) if r.id is not None])
    if held != flagged:
        verdict = withdraw(verdict, flagged - held,
                           f"REGRESSED at first, not confirmed in {len(pairs)} fresh pair(s)")
    return verdict, pairs, confirmation


@dataclass(frozen=True)
class AbRequest:
    """``perfgate ab`` as asked for on the command line and in the config."""

    loaded: LoadedConfig
    settings: AbConfig
    """The config's ``[ab]`` with the command line's values on top."""
    profile: ResolvedProfile
    serve: ServeConfig | None
    cwd: Path
    base_ref: str | None = None
    command_line_budgets: list[Budget] = field(default_factory=list)
    """One-off budgets given with ``--budget``."""
    main: MainLine | None = None
    """Where the current tree stands against the main branch, when the caller has asked git already."""
    metrics: MetricsConfig | None = None
    """The service's own metrics endpoint, scraped in every run."""


def _base_commit(repo: Path, loaded: LoadedConfig, base_ref: str | None, *, budgets_alone: bool = False,
                 main: MainLine | None = None) -> str | None:
    """The base's commit; ``None`` when the main branch gives none and ``budgets_alone`` may be judged instead."""
    if base_ref is not None:
        return commit_of(repo, base_ref, "--base")
    line = main or main_line(repo, loaded.config.main_branch)
    if line.merge_base is None and not budgets_alone:
        raise UsageError(f"no base commit to compare with: {line.reason}")
    return line.merge_base


def settled_mode(settings: AbConfig, profile: ResolvedProfile, notify: Notify) -> AbConfig:
    """The settings of the mode the A/B runs in: the duet unless the profile cannot be split in two.

    A duet chosen on purpose (``--mode duet``, ``[ab] mode``) is refused for such a profile; the default
    falls back to alternate pairs and says so."""
    what = unsplittable(profile) if settings.mode is AbMode.DUET else None
    if what is None:
        if settings.mode is AbMode.DUET:
            check_duet_profile(profile)  # the users split evenly between Locust's processes, before any setup
        return settings
    if "mode" in settings.model_fields_set:
        check_duet_profile(profile)
    notify(f"{what} cannot be split between two versions at the same moments: measuring in alternate pairs")
    try:
        return AbConfig.model_validate({**settings.model_dump(exclude_unset=True), "mode": AbMode.ALTERNATE})
    except ValidationError as exc:
        raise ConfigError(f"{what} needs the alternate mode, and the [ab] settings do not fit it: "
                          f"{exc.errors()[0]['msg']} (set --looks and --max-pairs of 2 or more)") from None


def ab_in_repository(request: AbRequest, store: Store, notify: Notify = lambda _: None) -> AbResult:
    """Check the base out beside the current tree, set both trees up, run the A/B, clean up."""
    loaded, settings = request.loaded, request.settings
    serve = check_served(request.serve, request.profile, "ab", notify)
    repo = repository_root(request.cwd)
    if repo is None:
        raise UsageError(f"{request.cwd} is not inside a git repository with commits; perfgate ab compares "
                          "two commits (run `git init` and commit, or use perfgate run)")
    check_locustfile(Path(request.profile.locustfile))
    check_locust_config(Path.cwd())
    check_locust_args(list(request.profile.locust_args))
    settings = settled_mode(settings, request.profile, notify)
    store.check_writable()
    budgets_given = bool(loaded.config.budgets or request.command_line_budgets)
    base_commit = _base_commit(repo, loaded, request.base_ref, budgets_alone=budgets_given, main=request.main)
    head = read_git_info(repo)
    snapshot = head_snapshot(repo, store, notify)
    if base_commit is None:
        return _budgets_alone(request, serve, store, notify, repo, snapshot.commit)
    if snapshot.commit == base_commit:
        notify(f"base and head are the same commit ({base_commit[:10]}): this is an A/A comparison")
    looks = settings.planned_looks()
    where = request.cwd.resolve().relative_to(repo)
    commits = {"base": base_commit, "head": snapshot.commit}
    with fresh_trees(repo, where, commits, settings.setup, notify) as trees:
        # The head's runs are recorded under the user's tree: its real commit, dirty when it is.
        plan = AbPlan(profile=request.profile, serve=serve,
                      base=Version("base", trees["base"], trees["base"] / where, checkout=trees["base"]),
                      head=Version("head", repo, trees["head"] / where, checkout=trees["head"]),
                      compare=loaded.config.compare, looks=looks,
                      max_time_s=settings.max_time, budgets=loaded.config.budgets,
                      command_line_budgets=request.command_line_budgets,
                      confirm_pairs=settings.confirm_pairs if settings.confirm else None, reset=settings.reset,
                      mode=settings.mode, metrics=request.metrics)
        unit = "same-moment runs" if settings.mode is AbMode.DUET else "pairs"
        notify(f"A/B of base {base_commit[:10]} and head {(head.commit or '')[:10]}"
               f"{' with uncommitted changes' if head.dirty else ''}: up to {looks[-1]} {unit}, "
               f"looks at {', '.join(map(str, looks))}, at most {plan.max_time_s / 60:g} min")
        try:
            return run_ab(plan, store, notify)
        except Interrupted:
            raise Interrupted("interrupted; the runs finished before are stored, the unfinished one is not; "
                              "the worktrees were removed") from None


def _budgets_alone(request: AbRequest, serve: ServeConfig, store: Store, notify: Notify, repo: Path,
                   head_commit: str) -> AbResult:
    """No base to pair with: the head alone, served as ``ab`` serves it, for the first look's number of runs,
    and the budgets judged on them."""
    loaded, settings = request.loaded, request.settings
    runs = settings.planned_looks()[0]
    where = request.cwd.resolve().relative_to(repo)
    notify(f"no base commit on {loaded.config.main_branch!r} to compare with: {NO_BASELINE_NOTE}, "
           f"on {runs} run(s) of the head")
    with fresh_trees(repo, where, {"head": head_commit}, settings.setup, notify) as trees:
        head = Version("head", repo, trees["head"] / where, checkout=trees["head"])
        plan = AbPlan(profile=request.profile, serve=serve, base=head, head=head,
                      compare=loaded.config.compare, looks=[runs], max_time_s=settings.max_time,
                      budgets=loaded.config.budgets, command_line_budgets=request.command_line_budgets,
                      reset=settings.reset, metrics=request.metrics)
        session = Session(plan, store, notify)
        try:
            recorded = []
            for number in range(1, runs + 1):
                if not session.time_left_for_a_pair():
                    break
                started = time.monotonic()
                recorded.append(session._record(head, f"{session.id}-h{number}", RunPurpose.AB))
                session.pair_seconds.append(time.monotonic() - started)
        except Interrupted:
            raise Interrupted("interrupted; the runs finished before are stored, the unfinished one is not; "
                              "the worktree was removed") from None
    verdict = compare(None, side_from_runs("ab head", recorded), plan.compare, budgets=plan.budgets,
                      command_line_budgets=plan.command_line_budgets, notes=[NO_BASELINE_NOTE])
    return AbResult(verdict=verdict, pairs=[], confirmation_pairs=[])
