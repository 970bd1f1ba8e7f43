"""``perfgate calibrate``: measure this machine's noise with A/A pairs, and what the gate can see through it.

It runs pairs of runs of one build (a snapshot of the current tree, uncommitted
changes included), served fresh each time from two fresh worktrees with the same
setup and reset, as ``perfgate ab`` would run base and head. Per endpoint and metric
it reports:

- the run-to-run noise: the standard deviation of the per-run values (log scale,
  shown as a relative change);
- the within-pair correlation: how much of that noise two back-to-back runs share,
  which is what pairing cancels;
- the false regressions: the A/A pairs judged by the gate, where every REGRESSED is false;
- the smallest change the gate finds with 90 % power after 3, 6 and 10 pairs, at the
  current margins, α, α spending over the planned looks, and family size;
- a suggested margin per metric: the smallest margin whose own size the gate finds
  with 90 % power by the last planned look. ``write_margins`` puts them in the config.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import tempfile
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from perfgate.ab.pairs import AbPlan, Pair, Session, Version, check_served
from perfgate.ab.session import judge, settled_mode, spend_alpha
from perfgate.ab.trees import Notify, fresh_trees, head_snapshot, run_setup
from perfgate.config import (
    CONFIG_FILENAME,
    MAX_RELATIVE_MARGIN,
    AbConfig,
    AbMode,
    LoadedConfig,
    ResolvedProfile,
    ServeConfig,
)
from perfgate.decide.sides import block_differences, run_value
from perfgate.decide.stats import DUET_MIN_BLOCKS, duet_projection, t_ppf
from perfgate.decide.verdict import Metric, Outcome, Verdict
from perfgate.errors import ConfigError, UsageError
from perfgate.git import repository_root
from perfgate.output import write_text_atomic
from perfgate.records import Block, RunPurpose, RunRecord
from perfgate.store import Store

POWER = 0.9
WANTED_REQUESTS_FACTOR = 4
"""A run should give its rarest endpoint this many times compare.min_requests."""
REPORTED_PAIRS = {AbMode.ALTERNATE: (3, 6, 10), AbMode.DUET: (2, 4, 6)}
"""The pair (same-moment run) counts whose detectable change is reported, per mode."""
CALIBRATED_METRICS = (Metric.P50, Metric.P95, Metric.THROUGHPUT)


@dataclass(frozen=True)
class MetricNoise:
    endpoint: str
    metric: Metric
    noise: float
    """Standard deviation of the per-run values (log scale ≈ relative)."""
    correlation: float | None
    """Within-pair correlation of the per-run values."""
    pair_sd: float
    """Standard deviation of the within-pair differences."""
    false_regressions: int
    margin: float
    detectable: dict[int, float]
    """Pairs (same-moment runs) → smallest change found with 90 % power at the current settings (relative)."""
    needed_margin: float
    """Smallest margin whose own size is found with 90 % power at the last planned look."""


@dataclass(frozen=True)
class Calibration:
    pairs: int
    mode: AbMode
    """How the A/A was measured: the gate's ``ab`` mode whose noise these figures are."""
    reported: tuple[int, ...]
    """The pair (same-moment run) counts of each metric's ``detectable``."""
    profile: ResolvedProfile
    looks: list[int]
    family_size: int
    metrics: list[MetricNoise]
    suggested_margins: dict[str, float]
    """Metric → margin that the typical endpoint's noise allows."""
    endpoint_margins: dict[str, dict[str, float]]
    """Endpoint → metric → wider margin, for endpoints noisier than the typical one."""
    rarest_endpoint: str
    rarest_requests: int
    """Fewest measured requests of an endpoint in one run."""
    wanted_requests: int
    """Requests a run should give its rarest endpoint (a few times compare.min_requests)."""
    suggested_run_time: float | None
    """Seconds per run that give the rarest endpoint about :data:`WANTED_REQUESTS_FACTOR` × min_requests."""
    verdict: Verdict

    @property
    def false_regressions(self) -> int:
        return sum(m.false_regressions for m in self.metrics)

    def to_json(self) -> str:
        """``perfgate calibrate --format json``: every figure; the A/A verdict and the profile are left out."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("verdict", "profile")}
        return json.dumps(data, indent=2, default=str)


def _whole_percent(value: float) -> float:
    return max(0.01, math.ceil(round(value * 100, 6)) / 100)


def _reach(sd: float, pairs: int, alpha: float) -> float:
    """The one-sided paired test's reach: the shift found with 90 % power (log scale)."""
    df = pairs - 1
    return (t_ppf(1 - alpha, df) + t_ppf(POWER, df)) * sd / math.sqrt(pairs)


def _look_alpha(alpha: float, looks: list[int], pairs: int) -> float:
    """The α a look at ``pairs`` gets under the planned spending (its increment)."""
    plan = sorted({*looks, pairs}) if pairs < looks[-1] else [n for n in looks if n < pairs] + [pairs]
    return spend_alpha(alpha, plan)[plan.index(pairs)]


def _count(run: RunRecord, endpoint: str) -> int:
    result = run.endpoint(endpoint)
    return result.stats.count if result is not None else 0


def _value(run: RunRecord, endpoint: str, metric: Metric) -> float | None:
    result = run.endpoint(endpoint)
    return run_value(result.stats if result is not None else None, metric)


def _blocks_of(run: RunRecord, endpoint: str) -> tuple[float, list[Block]] | None:
    result = run.endpoint(endpoint)
    return (result.block_s, result.blocks) if result is not None and result.block_s is not None else None


def _duet_series(pairs: list[Pair], endpoint: str, metric: Metric) -> list[list[float]] | None:
    """The block differences of every same-moment A/A run, or ``None`` when one has too few to judge."""
    series = []
    for pair in pairs:
        diffs = block_differences(_blocks_of(pair.base, endpoint), _blocks_of(pair.head, endpoint), metric)
        if diffs is None or len(diffs) < DUET_MIN_BLOCKS:
            return None
        series.append(diffs)
    return series


def _reach_of(mode: AbMode, pairs: list[Pair], endpoint: str, metric: Metric,
              pair_sd: float) -> Callable[[int, float], float] | None:
    """The shift the gate finds with 90 % power after n pairs at level α, as a function of (n, α):
    the paired test on the pairs' spread, or the duet test on the runs' blocks (``None``: too few)."""
    if mode is AbMode.ALTERNATE:
        return lambda n, alpha: _reach(pair_sd, n, alpha)
    series = _duet_series(pairs, endpoint, metric)
    if series is None:
        return None
    return lambda n, alpha: duet_projection(series, n).detectable(alpha, POWER)


def analyse(pairs: list[Pair], verdict: Verdict, profile: ResolvedProfile, looks: list[int],
            loaded: LoadedConfig, mode: AbMode = AbMode.ALTERNATE) -> Calibration:
    """The figures of the A/A pairs. In the duet mode what the gate can see comes from the block differences
    within each same-moment run and the spread between runs, as the duet test judges them."""
    config = loaded.config.compare
    reported = REPORTED_PAIRS[mode]
    used = [p for p in pairs if p.valid]
    family = max(verdict.family_size, 1)
    regressed = {(e.endpoint, t.metric) for e in verdict.endpoints for t in e.tests if t.outcome is Outcome.REGRESSED}
    keys = sorted({e.stats.key for p in used for r in (p.base, p.head) for e in r.endpoints})
    counts = {k: min(_count(r, k) for p in used for r in (p.base, p.head)) for k in keys}
    rows: list[MetricNoise] = []
    for key in keys:
        for metric in CALIBRATED_METRICS:
            first_values = [_value(p.base, key, metric) for p in used]
            second_values = [_value(p.head, key, metric) for p in used]
            first = [v for v in first_values if v is not None]
            second = [v for v in second_values if v is not None]
            if len(first) < len(used) or len(second) < len(used) or len(used) < 3:
                continue
            diffs = [b - a for a, b in zip(first, second, strict=True)]
            pair_sd = statistics.stdev(diffs)
            noise = statistics.stdev([*first, *second])
            try:
                correlation = statistics.correlation(first, second)
            except statistics.StatisticsError:
                correlation = None
            if (reach := _reach_of(mode, used, key, metric, pair_sd)) is None:
                continue
            margin = config.margin(key, metric.value)
            limit = math.log1p(margin)
            detectable = {n: math.expm1(max(limit, limit / 2 + reach(n, _look_alpha(config.alpha, looks, n) / family)))
                          for n in reported}
            last = looks[-1]
            needed_margin = math.expm1(2 * reach(last, _look_alpha(config.alpha, looks, last) / family))
            rows.append(MetricNoise(endpoint=key, metric=metric, noise=noise, correlation=correlation,
                                    pair_sd=pair_sd, false_regressions=int((key, metric) in regressed),
                                    margin=margin, detectable=detectable, needed_margin=needed_margin))
    suggested: dict[str, float] = {}
    overrides: dict[str, dict[str, float]] = {}
    for metric in CALIBRATED_METRICS:
        # Never beyond what the config accepts: a service that noisy gets the widest margin there is.
        needed = {r.endpoint: min(_whole_percent(r.needed_margin), MAX_RELATIVE_MARGIN) for r in rows
                  if r.metric is metric}
        if not needed:
            continue
        # The typical endpoint sets the margin; a noisier one gets its own, rather than widening everyone's.
        suggested[metric.value] = typical = _whole_percent(statistics.median(needed.values()))
        for endpoint, value in needed.items():
            if value > typical:
                overrides.setdefault(endpoint, {})[metric.value] = value
    rarest = min(counts, key=lambda k: counts[k]) if counts else "-"
    wanted = WANTED_REQUESTS_FACTOR * config.min_requests
    run_time = None
    if counts and counts[rarest] < wanted:
        measured = profile.run_time - profile.warmup
        run_time = profile.warmup + math.ceil(measured * wanted / max(counts[rarest], 1))
    return Calibration(pairs=len(used), mode=mode, reported=reported, profile=profile, looks=looks,
                       family_size=verdict.family_size, metrics=rows, suggested_margins=suggested,
                       endpoint_margins=overrides, rarest_endpoint=rarest, rarest_requests=counts.get(rarest, 0),
                       wanted_requests=wanted, suggested_run_time=run_time, verdict=verdict)


def calibrate(loaded: LoadedConfig, settings: AbConfig, profile: ResolvedProfile, serve: ServeConfig | None,
              cwd: Path, pairs: int, store: Store, notify: Notify = lambda _: None) -> Calibration:
    """Run ``pairs`` A/A pairs of the current tree and analyse them."""
    if pairs < 3:
        raise UsageError(f"--pairs {pairs}: calibration needs at least 3 pairs (6 or more give steadier figures)")
    serve = check_served(serve, profile, "calibrate", notify)
    settings = settled_mode(settings, profile, notify)
    store.check_writable()
    with ExitStack() as stack:
        repo = repository_root(cwd)
        if repo is None:
            notify(f"{cwd} is not in a git repository: both sides are served from this folder itself, "
                   "with its files and data as they are")
            if settings.setup:
                notify(f"setting up {cwd}: {settings.setup}")
                logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="perfgate-calibrate-")))
                run_setup(settings.setup, cwd, logs / "setup.log", what=f"folder ({cwd})")
            first, second = Version("A", cwd, cwd), Version("B", cwd, cwd)
        else:
            # Two worktrees of one snapshot: each side keeps its own state, as base and head do in an A/B.
            snapshot = head_snapshot(repo, store, notify)
            where = cwd.resolve().relative_to(repo)
            trees = stack.enter_context(fresh_trees(repo, where, {"A": snapshot.commit, "B": snapshot.commit},
                                                    settings.setup, notify))
            first, second = (Version(label, repo, trees[label] / where, checkout=trees[label]) for label in "AB")
        plan = AbPlan(profile=profile, serve=serve, base=first, head=second, compare=loaded.config.compare,
                      looks=[pairs], max_time_s=math.inf, reset=settings.reset, mode=settings.mode,
                      metrics=loaded.metrics())
        session = Session(plan, store, notify)
        measured = [session.pair(n, RunPurpose.CALIBRATE) for n in range(1, pairs + 1)]
    verdict = judge(plan, measured, loaded.config.compare.alpha)
    verdict = verdict.model_copy(update={"notes": [*verdict.notes, *session.state_notes()]})
    return analyse(measured, verdict, profile, settings.planned_looks(), loaded, settings.mode)


def suggestions_toml(calibration: Calibration, pyproject: bool) -> str:
    """The suggested margins as config lines (under ``[tool.perfgate]`` in a pyproject)."""
    prefix = f"{'tool.perfgate.' if pyproject else ''}compare"
    lines = [f"# Suggested by perfgate calibrate from {calibration.pairs} A/A pairs "
             f"({calibration.profile.run_time:g} s runs, {calibration.profile.users} users).", f"[{prefix}.margins]"]
    lines += [f"{metric} = {value:g}" for metric, value in sorted(calibration.suggested_margins.items())]
    for endpoint, margins in sorted(calibration.endpoint_margins.items()):
        lines += ["", f"[{prefix}.endpoints.{json.dumps(endpoint)}.margins]"]
        lines += [f"{metric} = {value:g}" for metric, value in sorted(margins.items())]
    return "\n".join(lines) + "\n"


def _config_file(loaded: LoadedConfig) -> tuple[Path, str, dict]:
    """The config file to write to (a new ``perfgate.toml`` when there is none), its text, and perfgate's table."""
    path = loaded.source or (loaded.root / CONFIG_FILENAME)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = tomllib.loads(text) if text else {}
    return path, text, data.get("tool", {}).get("perfgate", {}) if path.name == "pyproject.toml" else data


def _sets_margins(section: dict) -> bool:
    compare = section.get("compare", {})
    return "margins" in compare or "endpoints" in compare


def check_writable_config(loaded: LoadedConfig) -> None:
    """Before measuring: a config that already sets margins cannot take the suggestions (``--write``)."""
    path, _, section = _config_file(loaded)
    if _sets_margins(section):
        raise ConfigError(f"{path} already sets compare margins, so --write cannot add the suggestions; "
                          "run without --write and edit them by hand")


def write_suggestions(loaded: LoadedConfig, calibration: Calibration) -> tuple[Path | None, str]:
    """Add the suggestions to the config file (a new ``perfgate.toml`` when there is none); the file written (or
    None) and one line for the user saying what went in.

    Runs too short for the rarest endpoint overstate the noise, so margins measured on them would be wider than
    the gate needs: then only the run length goes in, and the margins wait for a calibration at that length. A
    run length goes in only for a profile the file does not define yet, and nothing that is set is overwritten:
    a file that sets margins is refused with the lines to paste.
    """
    path, text, section = _config_file(loaded)
    pyproject = path.name == "pyproject.toml"
    root = "tool.perfgate." if pyproject else ""
    p = calibration.profile
    if calibration.suggested_run_time is not None:
        run_time = f'run_time = "{calibration.suggested_run_time:g}s"'
        if p.name in section.get("profiles", {}):
            return None, (f"wrote nothing: runs of {p.run_time:g} s are too short for margins; set {run_time} in "
                          f"[{root}profiles.{json.dumps(p.name)}] of {path} and run perfgate calibrate again")
        addition = (f"# Suggested by perfgate calibrate: {json.dumps(calibration.rarest_endpoint)} had "
                    f"{calibration.rarest_requests} requests in a {p.run_time:g} s run; margins come from a "
                    f"calibration at this length.\n[{root}profiles.{json.dumps(p.name)}]\n{run_time}\n")
        told = (f"wrote the run length to {path} ({run_time} for profile {p.name}); run perfgate calibrate again "
                "for margins at that length (runs this short overstate the noise)")
    else:
        if _sets_margins(section):
            raise ConfigError(f"{path} already sets compare margins; edit them by hand with these values:\n"
                              + suggestions_toml(calibration, pyproject))
        addition = suggestions_toml(calibration, pyproject)
        told = f"wrote the suggested margins to {path}"
    new = text + ("\n" if text and not text.endswith("\n\n") else "") + addition
    tomllib.loads(new)  # never write a file that no longer parses
    write_text_atomic(path, new)
    return path, told
