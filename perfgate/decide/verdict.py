"""The verdict: computed once by :mod:`perfgate.decide.compare`, rendered by every report, never recomputed.

Posting a verdict loads this module, the report and the GitHub client only: nothing here may import
NumPy, SciPy or Locust (the comment job does not install them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

# In JSON each outcome is called "verdict" (what machines read); in Python it is `outcome`.
from perfgate.boundary import BoundaryModel, CommitSha
from perfgate.environment import EnvironmentFingerprint
from perfgate.errors import ExitCode


class Outcome(StrEnum):
    """Per test, per endpoint and for the whole comparison."""

    REGRESSED = "regressed"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"
    INVALID = "invalid"
    BROKEN = "broken"
    """The head broke the service: its own runs are invalid (error storm, missed rate, lost samples)
    where the baseline's are not. Only the whole comparison is ever BROKEN; it fails the gate."""


SEVERITY = {Outcome.BROKEN: 0, Outcome.REGRESSED: 1, Outcome.INVALID: 2, Outcome.INCONCLUSIVE: 3,
            Outcome.IMPROVED: 4, Outcome.UNCHANGED: 5}
"""Worst first: tables are sorted by it."""


class Metric(StrEnum):
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    FAILURE_RATE = "failure_rate"
    THROUGHPUT = "throughput"

    @property
    def relative(self) -> bool:
        """Relative (a ratio, tested on logs) or absolute (failure rate, in percentage points)."""
        return self is not Metric.FAILURE_RATE

    @property
    def higher_is_worse(self) -> bool:
        return self is not Metric.THROUGHPUT


class Quantity(StrEnum):
    """A metric by the name users write where they set limits and read trends (budgets, ``perfgate history``):
    throughput is ``rps`` there, as in k6 and Locust. :attr:`metric` is the same quantity in the tests."""

    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    FAILURE_RATE = "failure_rate"
    RPS = "rps"

    @property
    def metric(self) -> Metric:
        return Metric.THROUGHPUT if self is Quantity.RPS else Metric(self.value)


class StopReason(StrEnum):
    """Why a same-job A/B stopped."""

    DECIDED = "decided"
    """Every test is UNCHANGED or IMPROVED: more pairs cannot change that."""
    REGRESSED = "regressed"
    BROKEN = "broken"
    INVALID = "invalid"
    """What is left undecided is invalid (too few requests per run): more pairs cannot help."""
    MAX_PAIRS = "max-pairs"
    MAX_TIME = "max-time"


class BaselineChangeKind(StrEnum):
    """What a pinned baseline file that a branch adds or changes holds."""

    ACCEPTED = "accepted"
    """A baseline accepted from runs (``perfgate baseline accept``)."""
    EXPECTED = "expected"
    """Expectations imported from a table (``perfgate baseline import``): budgets, not a baseline."""
    UNREADABLE = "unreadable"
    """A file that cannot be read as a pinned baseline."""


class MetricTest(BoundaryModel):
    """One endpoint × metric test across runs.

    Changes are relative (``0.12`` = 12 % higher) for latency and throughput and
    absolute (``0.01`` = one percentage point) for the failure rate.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    metric: Metric
    outcome: Outcome = Field(alias="verdict")
    method: str
    """``welch``, ``pooled`` (one side has one run), ``paired``, or ``none`` when not tested."""
    base_value: float | None
    """Typical value of the baseline (geometric mean of runs for latency and throughput, ms or req/s)."""
    head_value: float | None
    change: float | None
    """Estimated change, head against base."""
    ci_low: float | None
    ci_high: float | None
    confidence: float
    """Two-sided level of [ci_low, ci_high]."""
    p_value: float | None
    """One-sided p for a change beyond half the margin in the worse direction, before correction."""
    p_adjusted: float | None
    """Holm-adjusted over every test of the comparison (in the direction of the outcome)."""
    margin: float
    """Practical margin: smaller changes do not count as regressions or improvements."""
    detectable: float | None
    """Smallest true change in the worse direction that this data calls REGRESSED with 80 % power
    (at the Bonferroni level of the family; never below the margin)."""
    base_runs: int
    head_runs: int
    note: str = ""
    """Why the test was not decided, in plain words."""


class DistributionEvidence(BoundaryModel):
    """Descriptive, request-level evidence of a distribution shift (not what gates)."""

    model_config = ConfigDict(frozen=True)

    mann_whitney_u: float
    p_value: float
    prob_superiority: float
    """P(head request slower than base request), ties counted half."""
    hodges_lehmann_shift: float
    """Median relative shift of head against base latencies (0.05 = 5 % slower)."""
    base_requests: int
    head_requests: int


MAX_FAILURE_KINDS = 3
"""Failure kinds kept per endpoint in a verdict: the most frequent ones of the head."""


class FailureKind(BoundaryModel):
    """How often the head's requests to an endpoint failed in one way (``503 Service Unavailable``, say)."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(max_length=500)
    """As recorded from the service's answer or the client's exception: outside input, escaped when shown."""
    count: int = Field(ge=1)


class EndpointVerdict(BoundaryModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    endpoint: str
    """``METHOD name``."""
    outcome: Outcome = Field(alias="verdict")
    tests: list[MetricTest] = Field(default_factory=list)
    evidence: DistributionEvidence | None = None
    reasons: list[str] = Field(default_factory=list)
    """Why the endpoint is invalid or inconclusive."""
    judged: bool = True
    """False for an endpoint on one side only: listed, but not part of the overall outcome."""
    top_failures: list[FailureKind] = Field(default_factory=list, max_length=MAX_FAILURE_KINDS)
    """When the head failed more often than the base: its most frequent failure kinds, most frequent first
    (absent from verdicts written before it existed)."""


class BudgetResult(BoundaryModel):
    """An absolute budget checked on the head's runs."""

    model_config = ConfigDict(frozen=True)

    endpoint: str
    metric: Quantity
    """``p50``, ``p95``, ``p99`` (ms, at most), ``failure_rate`` (at most), ``rps`` (at least)."""
    limit: float
    value: float | None
    passed: bool
    source: str
    """Where the budget came from: the config file, or an imported baseline."""
    note: str = ""
    """Why the budget failed without a value (its endpoint pattern matches no endpoint of the head)."""


class MetricGateResult(BoundaryModel):
    """A service metric's growth per request, head against base (``[compare.metric_gates]``)."""

    model_config = ConfigDict(frozen=True)

    series: str = Field(max_length=200)
    base: float | None
    """The baseline's largest growth per request over its valid runs; ``None``: not recorded there."""
    head: float | None
    """The head's smallest: every head run grew more than ``limit`` when the gate fails on values."""
    limit: float | None
    passed: bool
    note: str = Field(default="", max_length=500)
    """Why the gate failed without values."""


class CheckSummary(BoundaryModel):
    """A correctness check over the head's runs."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    failures: int
    runs: int
    message: str = ""


"""A commit as git names it: reports put it in code spans, where no escaping applies."""


class SideInfo(BoundaryModel):
    """Provenance of one side of the comparison."""

    model_config = ConfigDict(frozen=True)

    label: str
    """``head``, ``merge-base``, ``ancestor``, ``pinned baseline``, ``--base``, ``runs``..."""
    commit: CommitSha | None
    branch: str | None = None
    dirty: bool = False
    run_ids: list[int] = Field(default_factory=list)
    runs: int
    invalid_runs: int = 0
    """Runs that are invalid, for any reason."""
    own_fault_runs: int = 0
    """Invalid runs for a reason of this side's own service (error storm, missed rate, lost samples),
    not of the machine (a saturated load generator)."""
    own_fault_reasons: list[str] = Field(default_factory=list)
    """Those runs' reasons, each once."""
    newest_run_at: AwareDatetime | None = None
    environment: EnvironmentFingerprint | None = None
    topology: str | None = Field(default=None, max_length=1000)
    """Where the side's load came from when not from this machine alone: ``3 worker(s): 3 × CPU, N cores, OS``."""
    baseline_file: str | None = None
    accepted_by: str | None = None
    reason: str | None = None


class Settings(BoundaryModel):
    """The decision's settings, as used."""

    model_config = ConfigDict(frozen=True)

    alpha: float
    margins: dict[str, float]
    endpoint_margins: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per-endpoint margins where the config sets its own (``compare.endpoints``): every test's margin is
    one of these or of ``margins``."""
    min_requests: int
    p99_min_requests: int
    strict: bool


class Confirmation(BoundaryModel):
    """A REGRESSED decision measured again in fresh pairs."""

    model_config = ConfigDict(frozen=True)

    pairs: int
    tests: list[str]
    """``endpoint metric`` of each test that was flagged."""
    confirmed: list[str]
    """The flagged tests that held."""
    run_ids: list[int] = Field(default_factory=list)


class Sequential(BoundaryModel):
    """How a same-job A/B got to its verdict."""

    model_config = ConfigDict(frozen=True)

    pairs: int
    """Complete valid pairs the verdict rests on."""
    planned_looks: list[int]
    looks_taken: list[int]
    """Pair counts at which the data were judged, the last one giving this verdict."""
    alpha: float
    """The gate's α, spent across the looks."""
    alpha_spent: list[float]
    """α given to each look taken."""
    stopped: StopReason
    """Why the A/B stopped."""
    invalid_pairs: int
    """Pairs re-run once because a run was invalid."""
    dropped_pairs: int
    """Pairs still invalid after the re-run, left out of the tests."""
    elapsed_s: float
    confirmation: Confirmation | None = None
    mode: str = "alternate"
    """``duet``: base and head measured at the same moments (a pair is one run of both); ``alternate``: pairs of
    runs one after the other."""


class TrendPoint(BoundaryModel):
    """One commit of a branch's history: the median over its runs."""

    model_config = ConfigDict(frozen=True)

    commit: CommitSha
    at: AwareDatetime
    """When its newest run was recorded."""
    value: float
    runs: int


class EndpointTrend(BoundaryModel):
    """An endpoint's metric over the commits of a branch, oldest first."""

    model_config = ConfigDict(frozen=True)

    endpoint: str
    metric: Quantity
    branch: str
    points: list[TrendPoint]
    change_points: list[int] = Field(default_factory=list)
    """Indexes of points where the level shifted."""


class BaselineChange(BoundaryModel):
    """A pinned baseline that the change under review adds or modifies."""

    model_config = ConfigDict(frozen=True)

    file: str
    profile: str
    kind: BaselineChangeKind
    accepted_by: str | None = None
    accepted_at: AwareDatetime | None = None
    reason: str = ""
    commit: CommitSha | None = None


class GateInputChange(BoundaryModel):
    """A change of one of the gate's own inputs (its config, a locustfile, a pinned baseline) against the
    merge-base: what decides the verdict is part of the change under review, and shown with it."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(max_length=500)
    """Relative to the repository's top folder."""
    kind: Literal["added", "modified", "renamed", "deleted"]
    what: Literal["config", "locustfile", "baseline"]
    renamed_from: str | None = Field(default=None, max_length=500)
    detail: str = Field(default="", max_length=600)
    """What changed, briefly: the config keys (``compare.margins.p50``), or the lines added and removed."""


SCHEMA_VERSION = 1
"""The verdict JSON's version: raised when a field changes meaning or is removed (adding one does not)."""


class Verdict(BoundaryModel):
    """Everything a report needs; reports only render it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
    """The version of this JSON shape; a reader refuses a verdict newer than it knows."""
    outcome: Outcome = Field(alias="verdict")
    headline: str
    profile: str
    base: SideInfo | None
    head: SideInfo
    load_parameters: dict
    settings: Settings
    endpoints: list[EndpointVerdict] = Field(default_factory=list)
    budgets: list[BudgetResult] = Field(default_factory=list)
    checks: list[CheckSummary] = Field(default_factory=list)
    metric_gates: list[MetricGateResult] = Field(default_factory=list, max_length=40)
    reasons: list[str] = Field(default_factory=list)
    """Why the whole comparison is invalid."""
    notes: list[str] = Field(default_factory=list)
    """What the reader should know that does not change the outcome (an expired pinned file, dropped pairs)."""
    family_size: int
    """Number of tests the Holm correction covered."""
    created_at: AwareDatetime
    sequential: Sequential | None = None
    """Set by ``perfgate ab``: pairs, looks and α spent."""
    baseline_changes: list[BaselineChange] = Field(default_factory=list)
    """Pinned baselines this change adds or modifies: reviewers approve them with the change."""
    gate_changes: list[GateInputChange] = Field(default_factory=list, max_length=200)
    """Every change of the gate's own inputs against the merge-base (config, budgets, locustfiles,
    ``baselines/`` additions, edits, renames and deletions), committed or not."""
    history: list[EndpointTrend] = Field(default_factory=list)
    """The profile's trend on the main branch, per endpoint, when the store has one."""

    def to_json(self) -> str:
        """The verdict for machines: ``verdict`` fields at the top, per endpoint and per test."""
        return self.model_dump_json(indent=2, by_alias=True) + "\n"

    @property
    def budgets_passed(self) -> bool:
        return all(b.passed for b in self.budgets)

    @property
    def checks_passed(self) -> bool:
        return all(c.passed for c in self.checks)


def exit_code(verdict: Verdict, *, strict: bool) -> ExitCode:
    """0 pass; 1 regression, a broken head, a failed budget, check or service-metric gate; 3 invalid (always)
    or inconclusive under ``strict``: a gate that cannot tell never passes as if it could."""
    if verdict.outcome in (Outcome.REGRESSED, Outcome.BROKEN) or not verdict.budgets_passed \
            or not verdict.checks_passed or not all(g.passed for g in verdict.metric_gates):
        return ExitCode.REGRESSION
    if verdict.outcome is Outcome.INVALID or (strict and verdict.outcome is Outcome.INCONCLUSIVE):
        return ExitCode.UNDECIDED
    return ExitCode.OK
