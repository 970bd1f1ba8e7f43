"""Typed records that cross module boundaries: what a run measured and where it ran."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from enum import StrEnum

from pydantic import AwareDatetime, ConfigDict, Field

from perfgate.boundary import BoundaryModel, CommitSha
from perfgate.config import LoadParameters, ResolvedProfile
from perfgate.config.schema import METRIC_NAME
from perfgate.environment import EnvironmentFingerprint, Topology  # noqa: F401 - re-exported; they live where NumPy is not
from perfgate.samples import LatencyHistogram


class RunPurpose(StrEnum):
    """Why a run was made; stored and serialised as its value."""

    RUN = "run"
    """A plain ``perfgate run``."""
    AB = "ab"
    """A run of an A/B pair (``perfgate ab``)."""
    CALIBRATE = "calibrate"
    """A run of a pair measured by ``perfgate calibrate``."""
    CONFIRM = "confirm"
    """A run of a pair re-measuring a REGRESSED A/B verdict; never a baseline."""
    DUET = "duet"
    """One side of a same-moment A/B run (both versions under load at once); never a baseline for runs alone."""


class GitInfo(BoundaryModel):
    """The code a run measured."""

    model_config = ConfigDict(frozen=True)

    commit: CommitSha | None
    """Full SHA of HEAD, or ``None`` outside a git repository."""
    branch: str | None
    """Current branch, or ``None`` when detached or outside git."""
    dirty: bool
    """Tracked files differ from HEAD."""


class EndpointStats(BoundaryModel):
    """Summary of one endpoint's measured requests (warm-up excluded).

    Latency figures are in milliseconds over successful requests; failures are
    counted apart so that fast errors cannot make an endpoint look faster.
    """

    model_config = ConfigDict(frozen=True)

    method: str
    name: str
    count: int
    """Measured requests, failures included."""
    failures: int
    failures_by_type: dict[str, int] = Field(default_factory=dict)
    rps: float
    min: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @property
    def key(self) -> str:
        """``METHOD name``; a name that already starts with its method (``GET /books``) is not prefixed again."""
        prefix = f"{self.method} "
        return self.name if self.name.startswith(prefix) else prefix + self.name

    @property
    def failure_rate(self) -> float:
        return self.failures / self.count if self.count else 0.0


def median_over_runs(values: Iterable[float | None]) -> float | None:
    """The median of one value over runs, skipping runs without it: the one "typical run" of every report and
    budget (the decision's own estimate is the geometric mean its test is about, :mod:`perfgate.decide.compare`)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_of_runs(stats: Iterable[EndpointStats], field: str) -> float | None:
    """:func:`median_over_runs` of one statistic of an endpoint's per-run stats."""
    return median_over_runs(getattr(s, field) for s in stats)


class SecondBucket(BoundaryModel):
    """One second of one endpoint, for charts; ``t`` counts from the measurement start."""

    model_config = ConfigDict(frozen=True)

    t: int
    requests: int
    failures: int
    p50: float | None
    p95: float | None


class Block(BoundaryModel):
    """A few seconds of one endpoint on one side of a same-moment run, aligned with the other side's blocks."""

    model_config = ConfigDict(frozen=True)

    t: float
    """Start, in seconds from the measurement start."""
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    p50: float | None
    p95: float | None
    p99: float | None


class EndpointResult(BoundaryModel):
    """Everything recorded for one endpoint in one run."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    stats: EndpointStats
    histogram: LatencyHistogram = Field(exclude=True)
    """Latencies of successful measured requests (ms)."""
    series: list[SecondBucket] = Field(default_factory=list)
    block_s: float | None = Field(default=None, gt=0)
    """Length of the blocks of a same-moment run (``None``: the run was alone)."""
    blocks: list[Block] = Field(default_factory=list, max_length=100_000)


class CheckResult(BoundaryModel):
    """A correctness check reported by the locustfile (request type ``CHECK``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    message: str = ""


class ResourceSample(BoundaryModel):
    """The service's process tree at one moment."""

    model_config = ConfigDict(frozen=True)

    t: float
    cpu_percent: float
    rss_mb: float


class ServiceUsage(BoundaryModel):
    """CPU and memory of the service under test during the run."""

    model_config = ConfigDict(frozen=True)

    cpu_mean: float
    cpu_max: float
    rss_mean_mb: float
    rss_max_mb: float
    rss_growth_mb: float
    """Last sample minus first: a hint of a leak when large."""
    samples: list[ResourceSample] = Field(default_factory=list)


class MasterUsage(BoundaryModel):
    """A distributed run's master: its CPU in % of one core (it is one thread: 100 % is saturated)."""

    model_config = ConfigDict(frozen=True)

    cpu_mean: float = Field(ge=0)
    cpu_max: float = Field(ge=0)
    samples: int = Field(ge=0)
    """Seconds of the test sampled."""

    @classmethod
    def of_samples(cls, samples: Iterable[float]) -> MasterUsage | None:
        values = [float(v) for v in samples]
        if not values:
            return None
        return cls(cpu_mean=round(statistics.fmean(values), 1), cpu_max=round(max(values), 1), samples=len(values))


MAX_METRIC_SERIES = 50
"""Series kept per run: a service's endpoint can expose thousands (a label per user id, say)."""
MAX_METRIC_SAMPLES = 7200
"""Samples kept per series: two hours at one a second."""


class MetricSeries(BoundaryModel):
    """One series of the service's own metrics (a name and its labels), scraped once a second."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=METRIC_NAME)
    labels: dict[str, str] = Field(default_factory=dict, max_length=20)
    kind: str = Field(default="unknown", max_length=20)
    """The family's type as the endpoint declares it: ``gauge``, ``counter``, ``unknown``…"""
    samples: list[tuple[float, float]] = Field(default_factory=list, max_length=MAX_METRIC_SAMPLES)
    """``(seconds since the first scrape, value)``."""

    @property
    def key(self) -> str:
        """``name{label="value",…}``, as Prometheus writes a series."""
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}" if inner else self.name

    @property
    def growth(self) -> float | None:
        """Last value minus first; ``None`` without two samples."""
        return self.samples[-1][1] - self.samples[0][1] if len(self.samples) >= 2 else None


class ServiceMetrics(BoundaryModel):
    """The service's own metrics endpoint during a run: what was asked for and what it answered."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(max_length=2000)
    scrapes: int = Field(ge=0)
    """Scrapes attempted."""
    failed: int = Field(ge=0)
    """Scrapes that got no answer, a non-2xx answer, or text the parser refused."""
    last_error: str | None = Field(default=None, max_length=500)
    missing: list[str] = Field(default_factory=list, max_length=MAX_METRIC_SERIES)
    """Series names asked for that the endpoint never exposed."""
    dropped: int = Field(default=0, ge=0)
    """Matching series beyond :data:`MAX_METRIC_SERIES`, not kept."""
    series: list[MetricSeries] = Field(default_factory=list, max_length=MAX_METRIC_SERIES)


class RunRecord(BoundaryModel):
    """One load run, as stored."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    """Assigned by the store."""
    started_at: AwareDatetime
    duration_s: float
    """Measured window (after warm-up), seconds."""
    profile: ResolvedProfile
    git: GitInfo
    environment: EnvironmentFingerprint
    endpoints: list[EndpointResult]
    checks: list[CheckResult] = Field(default_factory=list)
    total_requests: int
    """Measured requests over all endpoints (warm-up excluded)."""
    total_failures: int
    achieved_rps: float
    locust_request_count: int
    """Locust's own request count over the whole run, warm-up included."""
    recorded_request_count: int
    """perfgate's count over the whole run; must equal Locust's."""
    warmup_excluded: int
    valid: bool
    invalid_reasons: list[str] = Field(default_factory=list)
    service: ServiceUsage | None = None
    pair_id: str | None = None
    trial_id: str | None = None
    purpose: RunPurpose = RunPurpose.RUN
    """Confirmation runs never serve as a baseline."""
    warmup_end_s: float | None = None
    """Seconds from the test's start to the start of the measured window: the later of the profile's warm-up
    and the moment every user had spawned and finished ``on_start`` (``None``: recorded before this existed)."""
    warnings: list[str] = Field(default_factory=list)
    """What makes the run doubtful without making it invalid (latency drifting in the measured window)."""
    topology: Topology = Field(default_factory=Topology)
    """Where the load came from: a distributed run's workers (none: this machine alone)."""
    master: MasterUsage | None = None
    """A distributed run's master CPU (none: not distributed, or recorded before it was kept)."""
    metrics: ServiceMetrics | None = None
    """The service's own metrics (none: no metrics URL was given, or recorded before they were kept)."""

    @property
    def load_parameters(self) -> LoadParameters:
        """What must match for another run to be comparable with this one."""
        return LoadParameters.of(self.profile)

    @property
    def checks_passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def endpoint(self, key: str) -> EndpointResult | None:
        return next((e for e in self.endpoints if e.stats.key == key), None)


MAX_CAPACITY_STEPS = 200
"""The most steps one capacity search may hold (a search plans far fewer)."""


class CapacityStep(BoundaryModel):
    """One step of a capacity search: a steady arrival rate offered for a while, and what came of it."""

    model_config = ConfigDict(frozen=True)

    offered: float = Field(gt=0)
    """Iterations of the locustfile's tasks started per second, on a fixed schedule (open loop)."""
    achieved: float = Field(ge=0)
    """Requests per second measured (an iteration may make several)."""
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    """Over every endpoint's successful requests, in ms, each from the moment its iteration was due."""
    service_cpu: float | None = None
    """The served service's mean CPU during the step, in % of one core (none: perfgate did not serve it)."""
    repeat: int = Field(default=0, ge=0)
    """0: the search up to the first broken objective; 1…: the refinements near the knee."""
    valid: bool = True
    invalid_reasons: list[str] = Field(default_factory=list, max_length=50)
    """Why the step says nothing about the service (the generator could not offer the rate): never a limit."""
    broken: list[str] = Field(default_factory=list, max_length=200)
    """The objectives the step broke, each as ``objective: what was measured``."""

    @property
    def passed(self) -> bool:
        return self.valid and not self.broken


class CapacityRecord(BoundaryModel):
    """A capacity search: the highest arrival rate meeting every objective, with its interval and its steps."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    started_at: AwareDatetime
    duration_s: float = Field(ge=0)
    profile: ResolvedProfile
    """The load of one step: locustfile, run time, warm-up (its users and rate change from step to step)."""
    git: GitInfo
    environment: EnvironmentFingerprint
    objectives: list[str] = Field(min_length=1, max_length=50)
    capacity: float | None = None
    """The estimate, in iterations per second; ``None``: the search could not tell (see ``reasons``)."""
    low: float | None = None
    high: float | None = None
    """The interval around ``capacity``."""
    repeats: list[float] = Field(default_factory=list, max_length=50)
    """Each refinement's own estimate: the centre of its final bracket."""
    brackets: list[tuple[float, float]] = Field(default_factory=list, max_length=50)
    """Each refinement's final bracket: the highest rate that met every objective, the lowest that broke one."""
    first_broken: str | None = None
    """The objective the first failing step broke first."""
    steps: list[CapacityStep] = Field(default_factory=list, max_length=MAX_CAPACITY_STEPS)
    valid: bool = True
    reasons: list[str] = Field(default_factory=list, max_length=50)
    """Why there is no capacity, or why it is only a bound."""
