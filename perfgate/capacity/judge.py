"""Capacity compared: the ratio head/base of two commits' capacities, with its interval, in the latency zones.

Each side pools the refinements of its stored searches (a search of three repeats gives three estimates), on the
log scale. A refinement's own estimate is uncertain within its final bracket as well, which its spread need not
show (three refinements may land on the same rates): each side's variance adds that of a uniform over the
bracket. The ratio's interval and one-sided p-values come from Welch's t on the logs; the zones are those of a
throughput change (:func:`perfgate.decide.rules.zone`): REGRESSED when the drop is significant and reaches the
margin, UNCHANGED when the interval's low end stays within it, else INCONCLUSIVE.

Fail closed: a head search that could not tell is INVALID (exit 3), unless it still shows a drop, its capacity
below a rate the baseline met, which is REGRESSED.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from pydantic import ConfigDict, Field
from scipy import stats

from perfgate.baselines.selection import short
from perfgate.boundary import BoundaryModel
from perfgate.decide.rules import zone
from perfgate.decide.verdict import Metric, Outcome
from perfgate.environment import environment_key
from perfgate.errors import ExitCode, RunNotFoundError, UsageError
from perfgate.git import commit_of, first_parent_ancestors, main_line, read_git_info
from perfgate.records import CapacityRecord
from perfgate.store import Store

DEFAULT_CAPACITY_MARGIN = 0.10
"""A capacity drop smaller than this is not a regression (the throughput margin's default)."""


class CapacitySide(BoundaryModel):
    model_config = ConfigDict(frozen=True)

    label: str
    commit: str | None
    searches: list[int] = Field(default_factory=list)
    """The stored searches' ids."""
    capacity: float | None
    low: float | None = None
    high: float | None = None
    estimates: list[float] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class CapacityVerdict(BoundaryModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    objectives: list[str]
    head: CapacitySide
    base: CapacitySide
    change: float | None = None
    """head / base − 1."""
    ci_low: float | None = None
    ci_high: float | None = None
    p_worse: float | None = None
    margin: float
    alpha: float
    reasons: list[str] = Field(default_factory=list)

    def exit_code(self, *, strict: bool = False) -> ExitCode:
        if self.outcome in (Outcome.REGRESSED, Outcome.BROKEN):
            return ExitCode.REGRESSION
        if self.outcome is Outcome.INVALID or (strict and self.outcome is Outcome.INCONCLUSIVE):
            return ExitCode.UNDECIDED
        return ExitCode.OK


def _side(label: str, records: list[CapacityRecord]) -> CapacitySide:
    newest = records[0]
    valid = [r for r in records if r.valid and r.capacity is not None]
    estimates = [e for r in valid for e in r.repeats]
    capacity = low = high = None
    if valid:
        capacity = round(math.exp(statistics.fmean(math.log(e) for e in estimates)), 3) if estimates else None
        low = min(r.low for r in valid if r.low is not None)
        high = max(r.high for r in valid if r.high is not None)
    reasons = [reason for r in records if not r.valid for reason in r.reasons][:5]
    return CapacitySide(label=label, commit=newest.git.commit, searches=[r.id for r in records if r.id is not None],
                        capacity=capacity, low=low, high=high, estimates=estimates, reasons=reasons)


def _log_moments(records: list[CapacityRecord]) -> tuple[float, float, int]:
    """Mean and variance of the log estimates, the brackets' own uncertainty included, and their number."""
    logs = [math.log(e) for r in records if r.valid for e in r.repeats]
    widths = [math.log(high / low) for r in records if r.valid for low, high in r.brackets]
    spread = statistics.variance(logs) if len(logs) > 1 else 0.0
    resolution = statistics.fmean(w * w for w in widths) / 12 if widths else 0.0
    return statistics.fmean(logs), spread + resolution, len(logs)


def judge_capacity(base: list[CapacityRecord], head: list[CapacityRecord], *, base_label: str = "base",
                   head_label: str = "head", margin: float = DEFAULT_CAPACITY_MARGIN,
                   alpha: float = 0.05) -> CapacityVerdict:
    """The head's capacity against the baseline's (each: its stored searches, newest first).

    Only searches like the head's newest are pooled (the same objectives, the same steps' length and warm-up):
    a commit searched under other objectives measured another capacity."""
    def kind(record: CapacityRecord) -> tuple[list[str], float, float]:
        return sorted(record.objectives), record.profile.run_time, record.profile.warmup

    wanted = kind(head[0])
    head = [r for r in head if kind(r) == wanted]
    alike = [r for r in base if kind(r) == wanted]
    if alike:
        base = alike
    base_side, head_side = _side(base_label, base), _side(head_label, head)
    objectives = list(head[0].objectives)
    common = dict(objectives=objectives, head=head_side, base=base_side, margin=margin, alpha=alpha)
    reasons = []
    if not alike:
        reasons.append(f"the baseline has no search like the head's (objectives {', '.join(objectives)}; steps of "
                       f"{wanted[1]:g} s, {wanted[2]:g} s warm-up): its searches judged "
                       f"{', '.join(base[0].objectives)}; search it again with the same --slo and -t")
    if environment_key(base[0].environment) != environment_key(head[0].environment):
        reasons.append("the searches ran on different machines: capacity is a property of the machine too; "
                       "search both on one")
    if reasons:
        return CapacityVerdict(outcome=Outcome.INVALID, reasons=reasons, **common)
    if base_side.capacity is None:
        return CapacityVerdict(outcome=Outcome.INVALID, reasons=[
            "the baseline's searches found no capacity: " + ("; ".join(base_side.reasons) or "none valid")], **common)
    if head_side.capacity is None:
        below = [r.high for r in head if r.high is not None and r.capacity is None]
        if below and base_side.low is not None and min(below) * (1 + margin) < base_side.low:
            return CapacityVerdict(outcome=Outcome.REGRESSED, change=min(below) / base_side.capacity - 1, reasons=[
                f"the head broke its objectives already at {min(below):g}/s, where the baseline met them up to "
                f"{base_side.low:g}/s"], **common)
        return CapacityVerdict(outcome=Outcome.INVALID, reasons=[
            "the head's searches found no capacity: " + ("; ".join(head_side.reasons) or "none valid")], **common)
    mean_h, var_h, n_h = _log_moments(head)
    mean_b, var_b, n_b = _log_moments(base)
    difference = mean_h - mean_b
    se = math.sqrt(var_h / n_h + var_b / n_b)
    df: float = max(n_h + n_b - 2, 1)
    if se > 0:
        df = _welch_df(var_h, n_h, var_b, n_b) or df
        p_worse = float(stats.t.cdf(difference / se, df))
        half = float(stats.t.ppf(0.95, df)) * se
    else:
        p_worse = 0.0 if difference < 0 else 1.0
        half = 0.0
    p_better = 1.0 - p_worse
    change, ci_low, ci_high = (math.expm1(difference), math.expm1(difference - half), math.expm1(difference + half))
    outcome = zone(Metric.THROUGHPUT, margin, change, ci_low, ci_high, p_worse, p_better, alpha)
    return CapacityVerdict(outcome=outcome, change=round(change, 5), ci_low=round(ci_low, 5),
                           ci_high=round(ci_high, 5), p_worse=p_worse, **common)


def _welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float | None:
    a, b = var_a / n_a, var_b / n_b
    denominator = (a * a / (n_a - 1) if n_a > 1 else 0.0) + (b * b / (n_b - 1) if n_b > 1 else 0.0)
    return (a + b) ** 2 / denominator if denominator > 0 else None


def select_capacity(store: Store, repo: Path, profile: str, main_branch: str, *, head_ref: str | None = None,
                    base_ref: str | None = None) -> tuple[list[CapacityRecord], str, list[CapacityRecord], str]:
    """The head's and the baseline's capacity searches, and where each came from.

    The head: the current tree's searches (made on a tree as dirty as it is now), or ``head_ref``'s. The baseline:
    ``base_ref``'s, or the merge-base's with the main branch, or its nearest first-parent ancestor's with searches
    of clean trees on the head's machine.
    """
    if head_ref is None:
        tree = read_git_info(repo)
        commit, dirty, where = tree.commit, tree.dirty, "HEAD"
    else:
        commit, dirty, where = commit_of(repo, head_ref, "--head"), False, head_ref
    if commit is None:
        raise UsageError(f"{repo} is not a git repository with commits: capacity searches are kept by commit")
    head = [r for r in store.capacity_records(commit=commit, profile=profile) if r.git.dirty == dirty]
    if not head:
        raise RunNotFoundError(f"no capacity search of profile {profile!r} at {where} {short(commit)} in "
                               f"{store.path}; run one with `perfgate capacity --slo ...`")
    env = environment_key(head[0].environment)
    if base_ref is not None:
        base_commit = commit_of(repo, base_ref, "--base")
        base = [r for r in store.capacity_records(commit=base_commit, profile=profile) if not r.git.dirty]
        if not base:
            raise RunNotFoundError(f"no capacity search of profile {profile!r} at --base {base_ref} "
                                   f"({short(base_commit)}); run one there: `git checkout {base_ref} && "
                                   "perfgate capacity --slo ...`")
        return head, f"head {short(commit)}", base, f"--base {base_ref} {short(base_commit)}"
    main = main_line(repo, main_branch, commit)
    if main.merge_base is None:
        raise RunNotFoundError(f"no baseline for the capacity: {main.reason}")
    for distance, ancestor in enumerate(first_parent_ancestors(repo, main.merge_base)):
        if ancestor == commit and not dirty:
            continue
        base = [r for r in store.capacity_records(commit=ancestor, profile=profile)
                if not r.git.dirty and environment_key(r.environment) == env]
        if base:
            label = "merge-base" if ancestor == main.merge_base else f"ancestor {distance} of the merge-base"
            return head, f"head {short(commit)}", base, f"{label} {short(ancestor)}"
    raise RunNotFoundError(f"no capacity search of profile {profile!r} at the merge-base {short(main.merge_base)} "
                           f"with {main.branch!r} or its ancestors; run one on the main branch: "
                           f"`git checkout {main.branch} && perfgate capacity --slo ...`")
