"""Record one load run end to end: check, serve, load, measure, store.

Everything that can be checked before the load starts is checked first (the
locustfile, the store's writability), so that a mistake costs seconds rather than
a whole run, and nothing is stored unless the run completed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from perfgate.config import ResolvedProfile, ServeConfig
from perfgate.environment import fingerprint
from perfgate.errors import ExitCode
from perfgate.gitinfo import read_git_info
from perfgate.measure import measure
from perfgate.models import RunRecord
from perfgate.runner import ProgressCallback, check_locustfile, run_locust
from perfgate.service import serve
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
    purpose: str = "run"


def record_run(request: RunRequest, store: Store, *, on_progress: ProgressCallback | None = None) -> RunRecord:
    """Run the profile (starting the service first when asked), store the run, return it with its id."""
    profile = request.profile
    check_locustfile(Path(profile.locustfile))
    store.check_writable()
    git = read_git_info(request.repo_dir)
    with tempfile.TemporaryDirectory(prefix="perfgate-") as tmp:
        workdir = Path(tmp)
        service_usage = None
        if request.serve is None:
            recording = run_locust(profile, workdir, on_progress=on_progress)
        else:
            spec = request.serve
            with serve(spec.command, spec.ready_url, port=spec.port, ready_timeout_s=spec.ready_timeout,
                       log_path=workdir / "service.log", cwd=request.serve_cwd) as service:
                profile = profile.model_copy(update={"host": profile.host.replace("{port}", str(service.port))})
                recording = run_locust(profile, workdir, on_progress=on_progress)
                service.check_alive()
                service_usage = service.usage()
    measured = measure(recording, profile)
    run = RunRecord(
        started_at=datetime.fromtimestamp(measured.test_start or 0, tz=UTC),
        duration_s=measured.duration_s, profile=profile, git=git, environment=fingerprint(),
        endpoints=measured.endpoints, checks=measured.checks,
        total_requests=measured.total_requests, total_failures=measured.total_failures,
        achieved_rps=measured.achieved_rps, locust_request_count=measured.locust_request_count,
        recorded_request_count=measured.recorded_request_count, warmup_excluded=measured.warmup_excluded,
        valid=not measured.invalid_reasons, invalid_reasons=measured.invalid_reasons,
        service=service_usage, pair_id=request.pair_id, trial_id=request.trial_id,
        purpose=request.purpose,
    )
    return store.save(run)


def exit_code(run: RunRecord) -> ExitCode:
    """A recorded run's outcome: a failed correctness check fails; an invalid run is undecided."""
    if not run.checks_passed:
        return ExitCode.REGRESSION
    return ExitCode.OK if run.valid else ExitCode.UNDECIDED
