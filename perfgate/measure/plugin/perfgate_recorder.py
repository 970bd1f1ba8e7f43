"""perfgate's listener-only Locust plugin, passed beside the user's locustfile.

Locust loads it with ``-f user.py,perfgate_recorder.py``; it defines no users,
so any locustfile runs unmodified. It records every request (no sampling) into
packed arrays per endpoint, ships a worker's arrays to the master with each
report, and on the master (or a single local process) writes the whole
recording once Locust quits, beside Locust's own request count so perfgate can
check that nothing was lost. While the test runs it writes a small progress file
each second for perfgate's live display.

It lives alone in its folder because Locust puts a locustfile's folder on
``sys.path``. It reads its instructions from environment variables set by
perfgate's runner.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

import gevent
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from perfgate.measure.contract import EndpointRecording, Recording, describe_error, write_recording

RESULT_PATH = os.environ.get("PERFGATE_RESULT")
PROGRESS_PATH = os.environ.get("PERFGATE_PROGRESS")
RUN_TIME = float(os.environ.get("PERFGATE_RUN_TIME") or 0)
"""Seconds from the test's start to its end (Locust's own -t starts counting before the test does)."""
STEP = os.environ.get("PERFGATE_STEP")
"""``users,spawn_rate,step_users,step_time_s,run_time_s`` when the profile is a step load."""

_recordings: dict[tuple[str, str], EndpointRecording] = {}
_meta: dict[str, float | int | str | bool | None] = {}
_exception_types: dict[str, str] = {}
"""Formatted traceback → exception type: Locust keeps only ``str(exception)`` and the traceback."""


def _recording(request_type: str, name: str) -> EndpointRecording:
    key = (request_type, name)
    recording = _recordings.get(key)
    if recording is None:
        recording = _recordings[key] = EndpointRecording(request_type, name)
    return recording


@events.request.add_listener
def _on_request(request_type, name, response_time, exception=None, start_time=None, **_kwargs):
    # The hot path: three appends to packed arrays; everything else happens after the run.
    recording = _recordings.get((request_type, name))
    if recording is None:
        recording = _recording(request_type, name)
    recording.start_times.append(start_time if start_time is not None else time.time())
    recording.latencies_ms.append(response_time or 0.0)
    recording.outcomes.append(0 if exception is None else recording.failure_code(describe_error(exception)))


@events.user_error.add_listener
def _on_user_error(user_instance, exception, tb, **_kwargs):
    _exception_types.setdefault("".join(traceback.format_tb(tb)), type(exception).__name__)


# Warm-up readiness: the measured window may start only once every user has spawned (spawning_complete) and
# returned from on_start (a bcrypt login, a data fetch). Each User class's on_start is wrapped at init to count
# the users through it; users that raise in on_start never count, so a broken login never looks ready.
_ready = {"users": 0, "spawned": False, "at": None}
_worker_ready: dict[str, float | None] = {}


def _wrap_on_start(user_class) -> None:
    original = user_class.on_start
    if getattr(original, "_perfgate_wrapped", False):
        return

    def on_start(self):
        original(self)
        _ready["users"] += 1
        _check_ready()

    on_start._perfgate_wrapped = True
    user_class.on_start = on_start


def _check_ready() -> None:
    runner = _environment.runner if _environment is not None else None
    if _ready["at"] is None and _ready["spawned"] and runner is not None and _ready["users"] >= runner.user_count:
        _ready["at"] = time.time()


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count, **_kwargs):
    _ready["spawned"] = True
    _check_ready()


@events.report_to_master.add_listener
def _on_report_to_master(client_id, data, **_kwargs):
    # Hand over what was recorded since the last report; the master keeps it all.
    data["perfgate"] = [r.to_message() for r in _recordings.values() if len(r)]
    data["perfgate_exception_types"] = dict(_exception_types)
    data["perfgate_users_ready"] = _ready["at"]
    _recordings.clear()


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kwargs):
    _exception_types.update(data.get("perfgate_exception_types", {}))
    if "perfgate_users_ready" in data:
        _worker_ready[client_id] = data["perfgate_users_ready"]
    for message in data.get("perfgate", ()):
        incoming = EndpointRecording.from_message(message)
        _recording(incoming.request_type, incoming.name).extend(incoming)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    _meta.setdefault("test_start", time.time())
    # Counted now: by the time Locust quits, the workers have already left.
    _meta["workers"] = len(environment.runner.clients) if isinstance(environment.runner, MasterRunner) else 0
    if RUN_TIME:
        gevent.spawn_later(RUN_TIME, _end_test, environment)
    if PROGRESS_PATH:
        gevent.spawn(_write_progress, environment)
    gevent.spawn(_track_peak_users, environment)


def _track_peak_users(environment) -> None:
    # A LoadTestShape changes the user count as it goes: the run is recorded with the peak it reached.
    while True:
        _meta["peak_users"] = max(int(_meta.get("peak_users") or 0), environment.runner.user_count)
        gevent.sleep(0.2)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs):
    if not isinstance(environment.runner, WorkerRunner):
        _meta["test_stop"] = time.time()


def _end_test(environment) -> None:
    # The same path as Locust's own --run-time limit in a headless run.
    environment.runner.quit()


def _write_progress(environment) -> None:
    path = Path(PROGRESS_PATH)
    tmp = path.with_name(path.name + ".tmp")
    while True:
        total = environment.runner.stats.total
        progress = {
            "time": time.time(),
            "test_start": _meta.get("test_start"),
            "users": environment.runner.user_count,
            "requests": total.num_requests,
            "failures": total.num_failures,
            "current_rps": total.current_rps,
            "current_p95_ms": total.get_current_response_time_percentile(0.95),
        }
        tmp.write_text(json.dumps(progress))
        os.replace(tmp, path)
        gevent.sleep(1.0)


@events.quit.add_listener
def _on_quit(exit_code, **_kwargs):
    environment = _environment
    if RESULT_PATH is None or environment is None or isinstance(environment.runner, WorkerRunner):
        return
    runner = environment.runner
    total = runner.stats.total
    meta = dict(_meta)
    if isinstance(runner, MasterRunner):
        times = list(_worker_ready.values())
        meta["users_ready"] = max(times) if times and None not in times else None
    else:
        meta["users_ready"] = _ready["at"]
    meta.update(
        locust_request_count=total.num_requests,
        locust_failure_count=total.num_failures,
        locust_exit_code=exit_code,
        runner=type(runner).__name__,
        cpu_warning=bool(getattr(runner, "cpu_warning_emitted", False)
                         or getattr(runner, "worker_cpu_warning_emitted", False)),
        exceptions=len(runner.exceptions),
        # The locustfile's own verdict (the threshold pattern, locust-plugins' --check-*).
        process_exit_code=environment.process_exit_code,
        unhandled_exceptions=[[_exception_name(row), int(row["count"])] for row in runner.exceptions.values()],
    )
    write_recording(Path(RESULT_PATH), Recording(meta=meta, endpoints=list(_recordings.values())))


def _exception_name(row) -> str:
    kind = _exception_types.get(str(row.get("traceback") or ""), "an exception")
    message = str(row.get("msg") or "")
    return f"{kind}: {message}" if message else kind


_environment = None


@events.init.add_listener
def _on_init(environment, **_kwargs):
    global _environment
    _environment = environment
    for user_class in environment.user_classes or ():
        _wrap_on_start(user_class)


if STEP:
    _users, _spawn_rate, _step_users, _step_time, _run_time = (float(v) for v in STEP.split(","))

    class PerfgateStepShape(LoadTestShape):
        """Adds ``step_users`` every ``step_time`` seconds up to the profile's users."""

        def tick(self):
            elapsed = self.get_run_time()
            if elapsed >= _run_time:
                return None
            users = min(_users, _step_users * (int(elapsed // _step_time) + 1))
            return int(users), _spawn_rate
