"""A distributed run on Locust's own engine: perfgate as Locust's master, ``perfgate worker`` processes as its
workers, here or on other machines.

The master is started with Locust's own flags and waits for the workers Locust-style (``--expect-workers``);
each worker runs the same locustfile beside perfgate's recorder, says hello with its identity (perfgate's
version and the locustfile's SHA-256) and its machine's fingerprint, and ships every request it made with each
of Locust's reports. The master refuses a worker whose identity differs (the recorder writes why and ends the
run), keeps the others' machines as the run's topology, and stores one run counted against Locust's own count.
This module holds the master's side of the command line and what a finished master run can have gone wrong
with; the recorder (``plugin/perfgate_recorder.py``) holds the messages.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from perfgate.config import ResolvedProfile
from perfgate.errors import WorkerRefusedError, WorkersMissingError
from perfgate.measure.contract import refusal_path

_WORKERS_CONNECTED = re.compile(rb"(\d+) workers connected")
_GAVE_UP = b"Gave up waiting for workers to connect"
"""What Locust's master logs when --expect-workers-max-wait ran out."""


def master_arguments(profile: ResolvedProfile) -> list[str]:
    """Locust's flags for the master of a distributed run of ``profile``."""
    return ["--master", "--expect-workers", str(profile.expect_workers),
            "--expect-workers-max-wait", f"{profile.expect_workers_max_wait:g}",
            "--master-bind-host", profile.master_bind_host, "--master-bind-port", str(profile.master_bind_port)]


def worker_command(locustfile: Path, plugin: Path, master_host: str, master_port: int,
                   processes: int = 1) -> list[str]:
    """A Locust worker (``processes`` of them, forked by Locust): the user's locustfile beside perfgate's
    recorder. Locust bounds it: it stops when the master quits, gives up after its connection retries, and quits
    60 s after the master's last heartbeat."""
    command = [sys.executable, "-m", "locust", "-f", f"{locustfile},{plugin}", "--worker",
               "--master-host", master_host, "--master-port", str(master_port)]
    return command + (["--processes", str(processes)] if processes > 1 else [])


def check_master_run(profile: ResolvedProfile, log_path: Path, result_path: Path) -> None:
    """A refused worker or workers that did not all come fail the run with one line (before its recording is
    read: neither leaves one worth storing)."""
    try:
        refused = refusal_path(result_path).read_text(encoding="utf-8").strip()[:600]
    except FileNotFoundError:
        refused = ""
    if refused:
        raise WorkerRefusedError(f"the run was stopped: {refused}; start every worker from a checkout of the "
                                 "master's commit with the same locustfile and perfgate")
    log = log_path.read_bytes() if log_path.exists() else b""
    if _GAVE_UP in log:
        arrived = max((int(n) for n in _WORKERS_CONNECTED.findall(log)), default=0)
        raise WorkersMissingError(
            f"{arrived} of {profile.expect_workers} worker(s) connected within {profile.expect_workers_max_wait:g} "
            f"s; start them with `perfgate worker --master-host HOST --master-port {profile.master_bind_port} -f "
            "LOCUSTFILE` (the same locustfile) or wait longer with --expect-workers-max-wait")
