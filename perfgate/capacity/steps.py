"""One capacity step, and a whole search against a service: serve it once, step the arrival rate, store the result.

A step is a bounded open-loop Locust run (:data:`~perfgate.measure.contract.ENV_ARRIVAL_RATE`): iterations of the
locustfile's tasks start on a fixed schedule, taken by a pool of users large enough that the schedule, not the
answers, sets the pace. A late start that found every user busy counts in the latency of the iteration's first
request (no coordinated omission). The step is judged by the objectives (the budgets' syntax and rules, per
endpoint) and is invalid when the generator fell behind its schedule or its CPU saturated: never a limit of the
service. An error storm (half the requests failing) is the service's limit, a broken objective.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perfgate.capacity.search import SearchOutcome, SearchPlan, search
from perfgate.config import Budget, ResolvedProfile, ServeConfig, parse_budget
from perfgate.decide.budgets import check_budgets
from perfgate.decide.sides import side_from_runs
from perfgate.environment import fingerprint
from perfgate.errors import ConfigError, PerfgateError, RunNotStoredError
from perfgate.git import read_git_info
from perfgate.measure.locust import prepare, run_locust
from perfgate.measure.record import measured_run
from perfgate.measure.service import RunningService, serve
from perfgate.measure.summary import blames_the_machine, measure
from perfgate.output import write_text_atomic
from perfgate.records import CapacityRecord, CapacityStep, GitInfo, RunPurpose
from perfgate.samples import LatencyHistogram
from perfgate.store import Store

POOL_SECONDS = (0.1, 1.0)
"""The user pool takes this many seconds of arrivals: four times the largest latency objective, within these
bounds (a second without one). A service slower than that holds every user, and each late start then counts in
the latency, which breaks the objective anyway; a bigger pool would only cost the generator its users' on_start."""
MAX_POOL = 5000
SETTLE_S = 1.0
"""A pause between steps, for the service to finish what the last step left queued."""


@dataclass(frozen=True)
class Objective:
    """An objective as written (``p95<60ms``, ``GET /items: p99<200ms``) and the budget that judges it."""

    text: str
    budget: Budget


SLO_FLAG = "--slo"


def objectives_of(config_texts: list[str], command_line: list[str], source: str) -> list[Objective]:
    """The objectives of the config (``[capacity] slo``) and of ``--slo``, parsed; at least one is needed."""
    parsed = []
    for text, where in [*((t, f"{source}: capacity.slo") for t in config_texts),
                        *((t, SLO_FLAG) for t in command_line)]:
        budget = parse_budget(text, where)
        if budget.rps is not None:
            raise ConfigError(f"{where} {text!r}: rps is what the search varies, not an objective; give latency "
                              "and failure objectives such as 'p95<60ms' or 'failures<1%'")
        parsed.append(Objective(text=" ".join(text.split()), budget=budget))
    if not parsed:
        raise ConfigError("no objective: a capacity is the highest rate meeting objectives; pass --slo 'p95<60ms' "
                          "--slo 'failures<1%' (or [capacity] slo in the config)")
    return parsed


@dataclass(frozen=True)
class CapacityRequest:
    profile: ResolvedProfile
    """The load of one step: locustfile, host, run time and warm-up; users and rate are the search's."""
    objectives: list[Objective]
    plan: SearchPlan
    repo_dir: Path
    serve: ServeConfig | None = None
    serve_cwd: Path | None = None
    ignore: tuple[Path, ...] = ()


StepCallback = Callable[[CapacityStep], None]


def pool_seconds(objectives: list[Objective]) -> float:
    """How many seconds of arrivals the user pool takes (see :data:`POOL_SECONDS`)."""
    limits = [limit for o in objectives for limit in (o.budget.p50, o.budget.p95, o.budget.p99) if limit]
    low, high = POOL_SECONDS
    return min(high, max(low, 4 * max(limits) / 1000)) if limits else high


def step_profile(profile: ResolvedProfile, rate: float, seconds: float = POOL_SECONDS[1]) -> ResolvedProfile:
    """The profile of one step at ``rate`` iterations per second: a pool of users, all spawned at once."""
    pool = min(MAX_POOL, math.ceil(rate * seconds) + 10)
    return profile.model_copy(update={"users": pool, "spawn_rate": float(pool), "arrival_rate": rate,
                                      "step": None, "target_rps": None})


def measure_step(request: CapacityRequest, profile: ResolvedProfile, git: GitInfo, rate: float, repeat: int,
                 service: RunningService | None) -> CapacityStep:
    """Offer ``rate`` for one step and judge it."""
    step = step_profile(profile, rate, pool_seconds(request.objectives))
    if service is not None:
        service.start_sampling()
    with tempfile.TemporaryDirectory(prefix="perfgate-") as tmp:
        recording = run_locust(step, Path(tmp))
    usage = service.usage() if service is not None else None
    if service is not None:
        service.check_alive()
    measured = measure(recording, step)
    run = measured_run(measured, step, git, usage, None, None, RunPurpose.RUN)
    machine = [r for r in measured.invalid_reasons if blames_the_machine(r)]
    storm = [r for r in measured.invalid_reasons if "error storm" in r]
    other = [r for r in measured.invalid_reasons if r not in machine and r not in storm]
    broken = [f"failures: {r}" for r in storm]
    if measured.endpoints:
        side = side_from_runs("step", [run])
        for objective in request.objectives:
            for result in check_budgets(side, [objective.budget], "--slo"):
                if not result.passed:
                    broken.append(f"{objective.text}: {_measured(result.endpoint, str(result.metric), result.value)}")
    # A broken objective outweighs what else went wrong (users whose on_start waited for a saturated service),
    # unless the generator is to blame: its timings are then no evidence either way.
    invalid = machine or ([] if broken else other)
    histogram = LatencyHistogram.merge_all(e.histogram for e in measured.endpoints)
    p50, p95, p99 = histogram.quantiles([0.5, 0.95, 0.99]) if histogram.count else (None, None, None)
    return CapacityStep(
        offered=rate, achieved=round(measured.achieved_rps, 3), requests=measured.total_requests,
        failures=measured.total_failures, p50=_ms(p50), p95=_ms(p95), p99=_ms(p99),
        service_cpu=usage.cpu_mean if usage is not None else None, repeat=repeat,
        valid=not invalid, invalid_reasons=invalid[:50], broken=[] if machine else broken[:200])


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _measured(endpoint: str, metric: str, value: float | None) -> str:
    if value is None:
        return f"{endpoint} {metric} not measured"
    if metric == "failure_rate":
        return f"{endpoint} failure rate {value:.1%}"
    return f"{endpoint} {metric} {value:.1f} ms"


def run_capacity(request: CapacityRequest, store: Store, *, on_step: StepCallback | None = None) -> CapacityRecord:
    """Serve the service once (when asked), search its capacity, store the result and return it with its id."""
    profile = prepare(request.profile, Path.cwd())
    if profile.processes > 1 or profile.expect_workers:
        raise ConfigError("perfgate capacity paces the load from one Locust process; leave out --processes and "
                          "--expect-workers")
    store.check_writable()
    git = read_git_info(request.repo_dir, request.ignore)
    started = datetime.now(tz=UTC)
    clock = time.monotonic()

    def searched(service: RunningService | None) -> SearchOutcome:
        served = profile if service is None else profile.model_copy(
            update={"host": profile.host.replace("{port}", str(service.port))})
        measured: list[CapacityStep] = []

        def one(rate: float, repeat: int) -> CapacityStep:
            if measured:
                time.sleep(SETTLE_S)
            step = measure_step(request, served, git, rate, repeat, service)
            measured.append(step)
            if on_step is not None:
                on_step(step)
            return step
        return search(request.plan, one)

    if request.serve is None:
        outcome = searched(None)
    else:
        spec = request.serve
        with tempfile.TemporaryDirectory(prefix="perfgate-") as tmp:
            with serve(spec.command, spec.ready_url, port=spec.port, ready_timeout_s=spec.ready_timeout,
                       log_path=Path(tmp) / "service.log", cwd=request.serve_cwd) as service:
                outcome = searched(service)
    record = CapacityRecord(
        started_at=started, duration_s=round(time.monotonic() - clock, 3), profile=profile, git=git,
        environment=fingerprint(), objectives=[o.text for o in request.objectives], capacity=outcome.capacity,
        low=outcome.low, high=outcome.high, repeats=outcome.repeats, brackets=outcome.brackets,
        first_broken=outcome.first_broken, steps=outcome.steps, valid=outcome.valid, reasons=outcome.reasons)
    return save_capacity(store, record)


def save_capacity(store: Store, record: CapacityRecord) -> CapacityRecord:
    """Store a capacity search; when the store cannot take it, keep it in a file beside the store and say where."""
    try:
        return store.save_capacity(record)
    except Exception as exc:  # the search took minutes: whatever went wrong with the store, keep it
        reason = str(exc) if isinstance(exc, PerfgateError) else f"{type(exc).__name__}: {exc}"
        stamp = record.started_at.strftime("%Y%m%dT%H%M%S")
        for folder in (store.path.parent, Path(tempfile.gettempdir())):
            path = folder / f"perfgate-capacity-{stamp}.json"
            try:
                write_text_atomic(path, record.model_dump_json(indent=1))
            except OSError:
                continue
            raise RunNotStoredError(f"the capacity search was not stored ({reason}); it is kept in {path}",
                                    spill_path=path) from exc
        raise RunNotStoredError(f"the capacity search was not stored ({reason}), and no file could take it "
                                "either: free some disk space") from exc
