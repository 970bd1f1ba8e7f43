"""The two sides of a comparison: each one's runs reduced to what the decision needs, and where they came from.

A side is built from stored runs (:func:`side_from_runs`) or from a pinned baseline file; the decision
(:mod:`perfgate.decide.compare`) and the budgets (:mod:`perfgate.decide.budgets`) read nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from perfgate.decide.verdict import Metric, SideInfo
from perfgate.measure.summary import own_fault_reasons
from perfgate.records import Block, CheckResult, EndpointStats, EnvironmentFingerprint, RunRecord, Topology
from perfgate.samples import LatencyHistogram


@dataclass(frozen=True)
class RunValues:
    """One run reduced to what the decision needs."""

    run_id: int | None
    pair_id: str | None
    valid: bool
    invalid_reasons: list[str]
    endpoints: dict[str, EndpointStats]
    checks: list[CheckResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Doubts that do not invalidate the run (latency drifting in its measured window)."""
    blocks: dict[str, tuple[float, list[Block]]] = field(default_factory=dict)
    """Per endpoint of a same-moment run, the block length and the blocks (aligned with the other side's)."""
    metric_growth: dict[str, float] = field(default_factory=dict)
    """The service's metrics: each series name's growth over the run per request (its label sets summed); a
    name the run did not record is absent."""


@dataclass(frozen=True)
class Side:
    """The runs on one side of a comparison, and where they came from."""

    info: SideInfo
    profile: str
    load_parameters: dict
    environment: EnvironmentFingerprint | None
    runs: list[RunValues]
    histograms: dict[str, LatencyHistogram] = field(default_factory=dict)
    """Requests pooled over the valid runs, per endpoint (absent for a pinned baseline)."""
    all_histograms: dict[str, LatencyHistogram] = field(default_factory=dict)
    """Requests pooled over every run, valid or not: what budgets judge."""
    topologies: set[Topology] = field(default_factory=set)
    """Where the runs' load came from (empty for a pinned baseline, which does not record it)."""

    @property
    def valid_runs(self) -> list[RunValues]:
        return [r for r in self.runs if r.valid]


def side_from_runs(label: str, runs: list[RunRecord]) -> Side:
    """A side from stored runs (all of one profile); ``label`` says where they came from."""
    if not runs:
        raise ValueError("a side needs at least one run")
    first = runs[0]
    info = SideInfo(label=label, commit=first.git.commit, branch=first.git.branch, dirty=first.git.dirty,
                    run_ids=[r.id for r in runs if r.id is not None], runs=len(runs),
                    newest_run_at=max(r.started_at for r in runs), environment=first.environment)
    values = [RunValues(run_id=r.id, pair_id=r.pair_id, valid=r.valid, invalid_reasons=r.invalid_reasons,
                        endpoints={e.stats.key: e.stats for e in r.endpoints}, checks=r.checks,
                        warnings=r.warnings,
                        blocks={e.stats.key: (e.block_s, e.blocks) for e in r.endpoints if e.block_s is not None},
                        metric_growth=metric_growth(r))
              for r in runs]
    return Side(info=info, profile=first.profile.name, load_parameters=first.profile.load_parameters(),
                environment=first.environment, runs=values, histograms=_pooled(r for r in runs if r.valid),
                all_histograms=_pooled(runs), topologies={r.topology for r in runs})


def metric_growth(run: RunRecord) -> dict[str, float]:
    """Each recorded series name's growth over the run per request Locust counted, label sets summed."""
    if run.metrics is None or not run.locust_request_count:
        return {}
    grown: dict[str, float] = {}
    for series in run.metrics.series:
        if series.growth is not None:
            grown[series.name] = grown.get(series.name, 0.0) + series.growth
    return {name: value / run.locust_request_count for name, value in grown.items()}


def load_of(*topologies: Topology | None) -> str | None:
    """What a side's reports say of where its load came from: ``None`` for this machine alone (or not known);
    the topologies in turn when its runs mix them (such a comparison is invalid)."""
    known = sorted({t.describe() for t in topologies if t is not None})
    return None if known in ([], [Topology().describe()]) else " and ".join(known)


def _pooled(runs: Iterable[RunRecord]) -> dict[str, LatencyHistogram]:
    per_endpoint: dict[str, list[LatencyHistogram]] = {}
    for run in runs:
        for endpoint in run.endpoints:
            per_endpoint.setdefault(endpoint.stats.key, []).append(endpoint.histogram)
    return {key: LatencyHistogram.merge_all(hists) for key, hists in per_endpoint.items()}


def with_validity(side: Side) -> SideInfo:
    """The side's provenance with its runs' validity counted (what :func:`head_broke` decides on) and where its
    load came from."""
    own_fault = [reasons for r in side.runs if (reasons := own_fault_reasons(r.valid, r.invalid_reasons))]
    return side.info.model_copy(update={
        "topology": load_of(*side.topologies),
        "runs": len(side.runs), "invalid_runs": sum(not r.valid for r in side.runs),
        "own_fault_runs": len(own_fault), "own_fault_reasons": sorted({x for reasons in own_fault for x in reasons})})


def block_differences(base: tuple[float, list[Block]] | None, head: tuple[float, list[Block]] | None,
                      metric: Metric) -> list[float] | None:
    """Head minus base per block of one same-moment run, on the test's scale, over the blocks where both sides
    have a value; ``None`` unless both sides were cut into the same blocks."""
    if base is None or head is None or base[0] != head[0]:
        return None
    theirs = {b.t: b for b in base[1]}
    if metric is Metric.THROUGHPUT:
        # Counts differ linearly, scaled by the run's typical count a block: a block with few requests weighs
        # as much as it tells (the log of a small count would not), and an empty block is kept.
        counts = [(block.requests, theirs[block.t].requests) for block in head[1] if block.t in theirs]
        scale = sum(h + b for h, b in counts) / (2 * len(counts)) if counts else 0.0
        return [(h - b) / scale for h, b in counts] if scale > 0 else []
    out = []
    for block in head[1]:
        if (other := theirs.get(block.t)) is not None:
            h, b = block_value(block, metric), block_value(other, metric)
            if h is not None and b is not None:
                out.append(h - b)
    return out


def block_value(block: Block, metric: Metric) -> float | None:
    """A block's latency statistic (on the log scale) or failure rate."""
    if block.requests == 0:
        return None
    if metric is Metric.FAILURE_RATE:
        return block.failures / block.requests
    raw = getattr(block, metric.value)
    return math.log(raw) if raw is not None and raw > 0 else None


def run_value(stats: EndpointStats | None, metric: Metric) -> float | None:
    """The per-run statistic on the test's scale (log for ratios)."""
    if stats is None or stats.count == 0:
        return None
    if metric is Metric.FAILURE_RATE:
        return stats.failures / stats.count
    raw = stats.rps if metric is Metric.THROUGHPUT else getattr(stats, metric.value)
    return math.log(raw) if raw is not None and raw > 0 else None
