"""Record one load run end to end: check, serve, load, measure, store.

Everything that can be checked before the load starts is checked first (the
locustfile, the store's writability), so that a mistake costs seconds rather than
a whole run, and nothing is stored unless the run completed. A completed run the
store cannot take is written to a spill file (:mod:`perfgate.spill`) rather than
lost.
"""

from __future__ import annotations

import math
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perfgate.config import MetricsConfig, ResolvedProfile, ServeConfig
from perfgate.environment import fingerprint
from perfgate.errors import ConfigError, Interrupted, PerfgateError, RunNotStoredError
from perfgate.git import read_git_info
from perfgate.measure.locust import ProgressCallback, prepare, run_locust
from perfgate.measure.metrics import MetricsScraper
from perfgate.measure.service import serve
from perfgate.measure.summary import Measurement, measure
from perfgate.records import GitInfo, RunPurpose, RunRecord, ServiceMetrics, ServiceUsage
from perfgate.spill import write_spill
from perfgate.store import Store


@dataclass(frozen=True)
class RunRequest:
    """What to run and where its result belongs."""

    profile: ResolvedProfile
    repo_dir: Path
    """Work tree whose commit the run is recorded under."""
    serve: ServeConfig | None = None
    serve_cwd: Path | None = None
    pair_id: str | None = None
    trial_id: str | None = None
    purpose: RunPurpose = RunPurpose.RUN
    """One of :class:`RunPurpose` (a plain string too, for the callers that pass one)."""
    ignore: tuple[Path, ...] = ()
    """perfgate's own config files: their edits do not make the tree dirty."""
    metrics: MetricsConfig | None = None
    """The service's own metrics endpoint, scraped once a second during the run."""


def record_run(request: RunRequest, store: Store, *, on_progress: ProgressCallback | None = None) -> RunRecord:
    """Run the profile (starting the service first when asked), store the run, return it with its id."""
    profile = prepare(request.profile, Path.cwd())
    store.check_writable()
    git = read_git_info(request.repo_dir, request.ignore)
    if request.metrics is not None and request.serve is None and "{port}" in request.metrics.url:
        raise ConfigError(f"the metrics URL {request.metrics.url!r} has {{port}}, but perfgate serves nothing "
                          "here: give the service's own port, or let perfgate serve it with --serve")
    with tempfile.TemporaryDirectory(prefix="perfgate-") as tmp:
        workdir = Path(tmp)
        service_usage = None
        if request.serve is None:
            with scraping(request.metrics, None) as scraped:
                recording = run_locust(profile, workdir, on_progress=on_progress)
        else:
            spec = request.serve
            with serve(spec.command, spec.ready_url, port=spec.port, ready_timeout_s=spec.ready_timeout,
                       log_path=workdir / "service.log", cwd=request.serve_cwd) as service:
                profile = profile.model_copy(update={"host": profile.host.replace("{port}", str(service.port))})
                with scraping(request.metrics, service.port) as scraped:
                    recording = run_locust(profile, workdir, on_progress=on_progress)
                service.check_alive()
                service_usage = service.usage()
    if profile.load_shape and recording.meta.peak_users:
        profile = profile.model_copy(update={"users": int(recording.meta.peak_users)})
    measured = measure(recording, profile)
    run = measured_run(measured, profile, git, service_usage, request.pair_id, request.trial_id, request.purpose)
    if scraped:
        run = with_metrics(run, scraped[0], request.metrics.series if request.metrics else [])
    return store_run(store, run)


@contextmanager
def scraping(metrics: MetricsConfig | None, port: int | None) -> Iterator[list[ServiceMetrics]]:
    """Scrape the service's metrics while the block runs; the list holds what was kept once it ends."""
    kept: list[ServiceMetrics] = []
    if metrics is None:
        yield kept
        return
    url = metrics.url if port is None else metrics.url.replace("{port}", str(port))
    scraper = MetricsScraper(url, metrics.series)
    scraper.start()
    try:
        yield kept
    finally:
        kept.append(scraper.finish())


def with_metrics(run: RunRecord, metrics: ServiceMetrics, named: list[str]) -> RunRecord:
    """The run with the service's metrics, and a warning for what the endpoint never gave."""
    warnings = list(run.warnings)
    if metrics.scrapes and metrics.failed == metrics.scrapes:
        warnings.append(f"the service's metrics were not recorded: every scrape of {metrics.url} failed "
                        f"({metrics.last_error}); check --metrics-url")
    elif missing := sorted(set(named) & set(metrics.missing)):
        warnings.append(f"the service's metrics endpoint never exposed {', '.join(missing[:5])}; check the names")
    if metrics.dropped:
        warnings.append(f"{metrics.dropped} more matching metric series were not kept (at most "
                        f"{len(metrics.series)} a run); name fewer series")
    return run.model_copy(update={"metrics": metrics, "warnings": warnings})


def measured_run(measured: Measurement, profile: ResolvedProfile, git: GitInfo, service: ServiceUsage | None,
                 pair_id: str | None, trial_id: str | None, purpose: RunPurpose) -> RunRecord:
    """The run record of a measurement, as it is stored."""
    return RunRecord(
        started_at=datetime.fromtimestamp(measured.test_start or 0, tz=UTC),
        duration_s=measured.duration_s, profile=profile, git=git, environment=fingerprint(),
        endpoints=measured.endpoints, checks=measured.checks,
        total_requests=measured.total_requests, total_failures=measured.total_failures,
        achieved_rps=measured.achieved_rps, locust_request_count=measured.locust_request_count,
        recorded_request_count=measured.recorded_request_count, warmup_excluded=measured.warmup_excluded,
        valid=not measured.invalid_reasons, invalid_reasons=measured.invalid_reasons,
        service=service, pair_id=pair_id, trial_id=trial_id,
        purpose=purpose, warmup_end_s=measured.warmup_end_s, warnings=list(measured.warnings),
        topology=measured.topology, master=measured.master,
    )


def store_run(store: Store, run: RunRecord) -> RunRecord:
    """Save a finished run; when the store cannot take it, keep it in a spill file and say where.

    Raises :class:`RunNotStoredError` (exit 4) naming the file and the command that
    stores it later, or :class:`Interrupted` (with the file) when stopped while saving.
    """
    try:
        return store.save(run)
    except Exception as exc:  # the run took minutes to measure: whatever went wrong with the store, keep it
        reason = str(exc) if isinstance(exc, PerfgateError) else f"{type(exc).__name__}: {exc}"
        path, failures = write_spill(run, store.path, reason)
        if path is None:
            raise RunNotStoredError(f"the run was not stored ({reason}), and no file could take it either "
                                    f"({'; '.join(failures)}): the run is lost; free some disk space") from exc
        later = f"store it later with `perfgate import {shlex.quote(str(path))} --db {shlex.quote(str(store.path))}`"
        if isinstance(exc, Interrupted):
            raise Interrupted(f"interrupted while storing the run; it is kept in {path}: {later}") from exc
        raise RunNotStoredError(f"the run was not stored: {reason}; it is kept in {path}: {later}",
                                spill_path=path) from exc


@dataclass(frozen=True)
class SparseEndpoint:
    """An endpoint with too few requests in a run for ``compare`` to judge it."""

    endpoint: str
    requests: int
    run_time_s: float
    """The run time (warm-up included) that would give it ``min_requests`` at the rate this run saw."""


def sparse_endpoints(run: RunRecord, min_requests: int) -> list[SparseEndpoint]:
    """Endpoints of ``run`` with fewer than ``min_requests`` measured requests, and the run time that would do."""
    sparse = []
    for e in run.endpoints:
        if e.stats.count < min_requests and run.duration_s > 0:
            needed = run.profile.warmup + run.duration_s * min_requests / max(e.stats.count, 1)
            sparse.append(SparseEndpoint(e.stats.key, e.stats.count, math.ceil(needed / 5) * 5))
    return sparse
