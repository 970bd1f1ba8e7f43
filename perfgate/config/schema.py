"""The configuration file's schema: the pydantic models of each table and the resolved profile.

``[compare]`` (margins, α), ``[[budgets]]``, ``[profiles.*]``, ``[serve]``, ``[ab]`` and ``[report]``,
gathered in :class:`PerfgateConfig`; :class:`ResolvedProfile` is a profile with every value concrete.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)

from perfgate.boundary import BoundaryModel
from perfgate.config.budgets import Budget
from perfgate.config.units import Duration, Processes, parse_fraction

DEFAULT_DB = Path(".perfgate/perfgate.db")

METRICS = ("p50", "p95", "p99", "failure_rate", "throughput")
DEFAULT_MARGINS = {"p50": 0.05, "p95": 0.10, "p99": 0.10, "failure_rate": 0.01, "throughput": 0.10}
"""Practical margins: relative for latency and throughput, absolute (percentage points) for failures."""


MAX_RELATIVE_MARGIN = 1.0
"""A latency or throughput margin above 100 % would wave through a service twice as slow: a config (which a
pull request can edit) cannot switch the gate off that way."""
MAX_FAILURE_MARGIN = 0.5
"""50 percentage points: the most a failure-rate margin may be."""

RelativeMargin = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0, le=MAX_RELATIVE_MARGIN)]
FailureMargin = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0, le=MAX_FAILURE_MARGIN)]


class Margins(BoundaryModel):
    """Changes smaller than these are neither regressions nor improvements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p50: RelativeMargin | None = None
    p95: RelativeMargin | None = None
    p99: RelativeMargin | None = None
    failure_rate: FailureMargin | None = None
    """Absolute: 0.01 is one percentage point."""
    throughput: RelativeMargin | None = None


class EndpointSettings(BoundaryModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    margins: Margins = Margins()


METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
"""A Prometheus metric name."""


class MetricGate(BoundaryModel):
    """A service metric judged by ``compare``: its growth per request during a run (resident memory that does not
    come back, a counter such as database queries), head against base."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin: RelativeMargin = 0.5
    """How much more than the baseline's growth per request the head may show, relative."""
    floor: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """And absolute, in the series' unit per request (bytes for memory): growth this small is never a finding."""


class CompareConfig(BoundaryModel):
    """How ``perfgate compare`` decides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """False-regression rate per comparison, over all endpoint × metric tests (Holm)."""
    margins: Margins = Margins()
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    """Per endpoint (``"METHOD name"``) settings, e.g. wider margins for a noisy endpoint."""
    min_requests: int = Field(default=50, ge=1)
    """Fewer measured requests per run make an endpoint invalid."""
    p99_min_requests: int = Field(default=10_000, ge=1)
    """p99 is tested only when every run has this many requests for the endpoint."""
    strict: bool = False
    """Inconclusive or invalid comparisons fail (exit 3)."""
    baselines_dir: str = "baselines"
    metric_gates: dict[Annotated[str, StringConstraints(pattern=METRIC_NAME)], MetricGate] = Field(
        default_factory=dict, max_length=40)
    """Service metrics (``[metrics]``) judged per request, by series name, e.g. ``process_resident_memory_bytes``."""

    def margin(self, endpoint: str, metric: str) -> float:
        override = self.endpoints.get(endpoint)
        if override is not None and getattr(override.margins, metric) is not None:
            return getattr(override.margins, metric)
        value = getattr(self.margins, metric)
        return DEFAULT_MARGINS[metric] if value is None else value

    def default_margins(self) -> dict[str, float]:
        return {m: self.margin("", m) for m in METRICS}


class StepShape(BoundaryModel):
    """A step load: add ``step_users`` every ``step_time`` until the profile's users are reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step_users: int = Field(ge=1)
    """Users added at each step."""
    step_time: Duration = Field(gt=0)
    """Seconds between steps."""


DEFAULT_MASTER_PORT = 5557
"""Locust's own default port for workers to connect to."""
DEFAULT_WORKERS_MAX_WAIT_S = 120.0
"""How long a distributed run waits for its workers by default."""


class LoadFields(BoundaryModel):
    """The load settings a profile in a config file and the command line both give; ``None``: not given."""

    model_config = ConfigDict(extra="forbid")

    locustfile: str | None = None
    host: str | None = None
    users: int | None = Field(default=None, ge=1)
    spawn_rate: float | None = Field(default=None, gt=0)
    run_time: Duration | None = Field(default=None, gt=0)
    warmup: Duration | None = None
    tags: list[str] | None = None
    exclude_tags: list[str] | None = None
    processes: Processes | None = None
    expect_workers: int | None = Field(default=None, ge=1)
    """Distributed: run as Locust's master and wait for this many workers (``perfgate worker``)."""
    expect_workers_max_wait: Duration | None = Field(default=None, gt=0)
    """How long the master waits for them before the run fails."""
    master_bind_host: str | None = Field(default=None, min_length=1, max_length=255)
    """The interface the master listens on for workers (Locust's default: every interface)."""
    master_bind_port: int | None = Field(default=None, ge=1, le=65535)
    """The port the master listens on for workers."""


class ProfileOverlay(LoadFields):
    """A profile as written in a config file: every field optional."""

    extends: str | None = None
    """Built-in profile this one starts from (required for a new profile name)."""
    user_classes: dict[str, Annotated[int, Field(ge=1)]] | None = None
    step: StepShape | None = None
    stop_timeout: Duration | None = None
    target_rps: float | None = Field(default=None, gt=0)
    """Requests per second the profile should achieve; a run below 90 % of it is invalid."""


class ServeConfig(BoundaryModel):
    """How to start the service under test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str
    """Shell command; ``{port}`` is replaced by the port to listen on."""
    ready_url: str | None = None
    """URL that answers 2xx once the service is ready; ``{port}`` allowed."""
    ready_timeout: Duration = 30.0
    """Seconds to wait for the ready URL."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Fixed port for ``{port}``; a free one is chosen when unset."""


class MetricsConfig(BoundaryModel):
    """The service's own Prometheus or OpenMetrics endpoint, scraped once a second during each run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    """``{port}`` allowed: the served service's port."""
    series: list[Annotated[str, StringConstraints(pattern=METRIC_NAME)]] = Field(default_factory=list,
                                                                                max_length=40)
    """Series kept besides the defaults (resident memory, CPU seconds, open file descriptors), e.g.
    ``app_db_queries_total``."""


class CapacityConfig(BoundaryModel):
    """``perfgate capacity``: the objectives a step must meet and how the search steps the arrival rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slo: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(default_factory=list,
                                                                                       max_length=50)
    """Objectives in the budgets' syntax: ``"p95<60ms"``, ``"failures<1%"``, ``"GET /items*: p99<200ms"``."""
    start_rate: float = Field(default=10.0, gt=0, le=1_000_000, allow_inf_nan=False)
    growth: float = Field(default=1.5, gt=1.05, le=10, allow_inf_nan=False)
    max_rate: float = Field(default=2000.0, gt=0, le=1_000_000, allow_inf_nan=False)
    repeats: int = Field(default=3, ge=1, le=10)
    resolution: Annotated[float, BeforeValidator(parse_fraction), Field(ge=0.01, le=0.5)] = 0.05
    margin: RelativeMargin = 0.10
    """A capacity drop smaller than this is not a regression."""


class EnduranceConfig(BoundaryModel):
    """What a run of an endurance profile must hold over its length: memory that stops growing, latency that does
    not drift."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: ["endurance"], max_length=50)
    """The profiles whose runs are judged so."""
    memory_mb_per_min: float = Field(default=1.0, ge=0, le=10_000, allow_inf_nan=False)
    """The service's memory may grow at most this fast (MB a minute) over the measured window."""
    latency_drift: RelativeMargin = 0.20
    """The last fifth of the window's p50 may be at most this much above the first fifth's."""


class AbMode(StrEnum):
    """How ``perfgate ab`` measures the two versions."""

    DUET = "duet"
    """Both served at once, under one load run, users split between them: the machine's noise cancels."""
    ALTERNATE = "alternate"
    """One after the other, in balanced pairs of runs."""


DEFAULT_LOOKS = {AbMode.ALTERNATE: [3, 6, 10], AbMode.DUET: [2, 4, 6]}
"""The planned looks of each mode: pairs of runs, or same-moment runs."""


class AbConfig(BoundaryModel):
    """``perfgate ab``: how many pairs, when to look, what to run first."""

    model_config = ConfigDict(extra="forbid")

    mode: AbMode = AbMode.DUET
    """The default, duet, falls back to alternate for a profile it cannot split (a step load or a load shape)."""
    looks: list[Annotated[int, Field(ge=1)]] | None = None
    """Numbers of pairs (same-moment runs in the duet mode) after which the data are judged (increasing);
    default: :data:`DEFAULT_LOOKS`."""
    max_pairs: int | None = Field(default=None, ge=1)
    """Stop after this many pairs (default: the last look)."""
    max_time: Duration = 900.0
    """Start no pair that would end after this many seconds; judge what was measured."""
    setup: str | None = None
    """Shell command run once in each tree before serving it (``uv sync``, a build)."""
    reset: str | None = None
    """Shell command run in each tree before every serve (``rm -f app.db``): every run starts from the same state."""
    confirm: bool = False
    """Re-measure a REGRESSED verdict in fresh pairs; report it only if it holds."""
    confirm_pairs: int = Field(default=5, ge=2)
    """Pairs of the confirmation."""

    @field_validator("looks")
    @classmethod
    def _increasing(cls, looks: list[int] | None) -> list[int] | None:
        if looks is not None and (not looks or any(b <= a for a, b in zip(looks, looks[1:], strict=False))):
            raise ValueError("must be a non-empty, increasing list of pair counts, e.g. [3, 6, 10]")
        return looks

    @model_validator(mode="after")
    def _pairs_in_alternate_mode(self) -> AbConfig:
        if self.mode is AbMode.ALTERNATE and ((self.looks and self.looks[0] < 2) or self.max_pairs == 1):
            raise ValueError("the alternate mode needs at least 2 pairs at the first look (looks, max_pairs)")
        return self

    def planned_looks(self) -> list[int]:
        """The looks up to the pair budget; the budget itself is always the last look."""
        looks = self.looks or DEFAULT_LOOKS[self.mode]
        budget = self.max_pairs or looks[-1]
        return [n for n in looks if n < budget] + [budget]


class ReportConfig(BoundaryModel):
    """How verdicts are presented."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    """Added to the sticky comment's marker, for several gates of one profile on one pull request."""
    full_report: str | None = Field(default=None, max_length=300)
    """Where readers find the full report (a URL or a phrase), named when the comment had to be cut."""


class PerfgateConfig(BoundaryModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid")

    db: Path = DEFAULT_DB
    """SQLite store, relative to the config file's folder."""
    main_branch: str = "main"
    profile: str = "smoke"
    """Profile used when none is named on the command line."""
    locustfile: str | None = None
    """Default locustfile for every profile."""
    host: str | None = None
    """Default host for every profile."""
    serve: ServeConfig | None = None
    metrics: MetricsConfig | None = None
    profiles: dict[str, ProfileOverlay] = Field(default_factory=dict)
    compare: CompareConfig = CompareConfig()
    ab: AbConfig = AbConfig()
    report: ReportConfig = ReportConfig()
    capacity: CapacityConfig = CapacityConfig()
    endurance: EnduranceConfig = EnduranceConfig()
    budgets: list[Budget] = Field(default_factory=list)


class ResolvedProfile(BoundaryModel):
    """A profile with every value concrete: what is run and what is recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    locustfile: str
    """Absolute path of the locustfile."""
    host: str
    host_from_user_classes: bool = False
    """The host is the User classes' own ``host``: Locust gets no ``-H``, so no class's host is replaced."""
    users: int
    spawn_rate: float
    run_time: float
    """Seconds of load, warm-up included."""
    warmup: float
    """Seconds at the start whose requests are not measured."""
    user_classes: dict[str, int] = Field(default_factory=dict)
    """User class name → weight; empty means every class in the locustfile."""
    tags: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    processes: int = 1
    expect_workers: int = 0
    """Workers of a distributed run (perfgate as Locust's master); 0: load from this machine alone."""
    expect_workers_max_wait: float = DEFAULT_WORKERS_MAX_WAIT_S
    master_bind_host: str = "*"
    master_bind_port: int = DEFAULT_MASTER_PORT
    step: StepShape | None = None
    stop_timeout: float = 0.0
    target_rps: float | None = None
    """Requests per second the load should achieve; a run below 90 % of it is invalid."""
    locust_args: list[str] = Field(default_factory=list)
    """Extra Locust arguments given after ``--``, passed through unchanged."""
    run_time_given: bool = False
    """``-t`` was given on the command line: it also bounds a locustfile's own LoadTestShape."""
    load_shape: str | None = None
    """The locustfile's own LoadTestShape class; ``users`` is then the peak it reached."""
    arrival_rate: float | None = Field(default=None, gt=0)
    """Open loop (``perfgate capacity``): task iterations started per second on a fixed schedule, ``users`` being
    the pool that takes them; ``None``: Locust's closed loop."""

    def load_parameters(self) -> dict[str, Any]:
        """The parameters that must match for two runs to be comparable, as a plain dict.

        The dict form of :class:`LoadParameters` (``LoadParameters.of(profile)``,
        ``RunRecord.load_parameters``), kept for the callers that compare, print or store it as a dict.
        """
        return LoadParameters.of(self).as_dict()


class LoadParameters(BoundaryModel):
    """The parameters of a profile that must match for two runs to be comparable.

    Where the load runs (host, processes, locustfile path) is left out. Serialised as the dict perfgate has
    always written into baseline files and verdicts: ``locust_args`` and ``load_shape`` appear only when set,
    because runs and baseline files from before they existed lack the keys.
    """

    model_config = ConfigDict(frozen=True)

    users: int
    spawn_rate: float
    run_time: float
    warmup: float
    user_classes: dict[str, int] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    step: StepShape | None = None
    target_rps: float | None = None
    locust_args: list[str] | None = None
    """Extra Locust arguments after ``--``; ``None`` when none were given."""
    load_shape: str | None = None
    """The locustfile's own LoadTestShape class, if any."""

    @classmethod
    def of(cls, profile: ResolvedProfile) -> LoadParameters:
        return cls(users=profile.users, spawn_rate=profile.spawn_rate, run_time=profile.run_time,
                   warmup=profile.warmup, user_classes=dict(profile.user_classes), tags=list(profile.tags),
                   exclude_tags=list(profile.exclude_tags), step=profile.step, target_rps=profile.target_rps,
                   locust_args=list(profile.locust_args) or None, load_shape=profile.load_shape or None)

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("locust_args", "load_shape"):
            if data.get(key) is None:
                data.pop(key, None)
        return data

    def as_dict(self) -> dict[str, Any]:
        """The plain dict, for code that compares or prints the parameters as one."""
        return self.model_dump()
