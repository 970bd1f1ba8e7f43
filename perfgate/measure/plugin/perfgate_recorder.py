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
perfgate's runner; every name it shares with perfgate is in
:mod:`perfgate.measure.contract`.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import LoadTestShape, events
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from perfgate.environment import fingerprint
from perfgate.measure.contract import (
    DUET_OPTION,
    ENV_DUET,
    HELLO_MESSAGE,
    MAX_LATE_SLOTS,
    PACING_TOLERANCE_S,
    SIDE_CONTEXT_KEY,
    EndpointRecording,
    PluginSettings,
    ProgressSnapshot,
    Recording,
    RecordingMeta,
    StepLoad,
    decode_duet,
    describe_error,
    refusal_path,
    write_progress,
    write_recording,
)

SETTINGS = PluginSettings.from_env(os.environ)
_duet_sides = SETTINGS.duet
"""The sides of a same-moment run: from the environment, or on a distributed run's worker from the master."""
_DUET = bool(_duet_sides)

# A worker's report to the master carries its requests, exception types and readiness under these keys.
_REPORT_RECORDINGS = "perfgate"
_REPORT_EXCEPTION_TYPES = "perfgate_exception_types"
_REPORT_USERS_READY = "perfgate_users_ready"
_REPORT_SIDE_USERS = "perfgate_side_users"

_recordings: dict[tuple[str, str, str], EndpointRecording] = {}
_meta = RecordingMeta(readiness_tracked=True)
_exception_types: dict[str, str] = {}
"""Formatted traceback → exception type: Locust keeps only ``str(exception)`` and the traceback."""


def _recording(request_type: str, name: str, side: str = "") -> EndpointRecording:
    key = (request_type, name, side)
    recording = _recordings.get(key)
    if recording is None:
        recording = _recordings[key] = EndpointRecording(request_type, name, side=side)
    return recording


@events.request.add_listener
def _on_request(request_type, name, response_time, exception=None, start_time=None, context=None, **_kwargs):
    # The hot path: three appends to packed arrays; everything else happens after the run.
    side = context.get(SIDE_CONTEXT_KEY, "") if _DUET and context else ""
    recording = _recordings.get((request_type, name, side))
    if recording is None:
        recording = _recording(request_type, name, side)
    recording.start_times.append(start_time if start_time is not None else time.time())
    if _waits:
        # Open-loop pacing: the first request of an iteration that started late carries the wait.
        response_time = (response_time or 0.0) + _waits.pop(gevent.getcurrent(), 0.0)
    recording.latencies_ms.append(response_time or 0.0)
    recording.outcomes.append(0 if exception is None else recording.failure_code(describe_error(exception)))


@events.user_error.add_listener
def _on_user_error(user_instance, exception, tb, **_kwargs):
    _exception_types.setdefault("".join(traceback.format_tb(tb)), type(exception).__name__)


# Warm-up readiness: the measured window may start only once every user has spawned (spawning_complete) and
# returned from on_start (a bcrypt login, a data fetch). Each User class's on_start is wrapped at init to count
# the users through it; users that raise in on_start never count, so a broken login never looks ready.
@dataclass
class _Readiness:
    users: int = 0
    """Users through on_start."""
    spawned: bool = False
    at: float | None = None
    """Epoch seconds when every user was spawned and through on_start."""


_ready = _Readiness()
_worker_ready: dict[str, float | None] = {}
_wrapped: set[Any] = set()
"""The on_start wrappers installed: a class inheriting one is not wrapped twice."""


def _wrap_on_start(user_class: Any) -> None:
    original = user_class.on_start
    if original in _wrapped:
        return

    def on_start(self: Any) -> None:
        original(self)
        _ready.users += 1
        _check_ready()
        if SETTINGS.arrival_rate:
            _await_slot()

    _wrapped.add(on_start)
    user_class.on_start = on_start


def _check_ready() -> None:
    runner = _environment.runner if _environment is not None else None
    if _ready.at is None and _ready.spawned and runner is not None and _ready.users >= runner.user_count:
        _ready.at = time.time()


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count, **_kwargs):
    _ready.spawned = True
    _check_ready()


# Open-loop pacing (perfgate capacity): iterations start on a fixed schedule, one every 1/rate seconds, whatever
# the answers' speed, so that queueing shows in the latencies instead of slowing the load (coordinated omission).
# Each user, before its first iteration and after each one, takes the next slot of the schedule and sleeps until
# it. A slot already past when taken found every user busy: its wait (from the slot's time to the actual start)
# is added to the first request the iteration makes, the latency a client arriving on time would have seen. A
# user that slept for its slot and woke late was held by the generator: that lag is not the service's.
@dataclass
class _Schedule:
    start: float | None = None
    next_slot: int = 0


_schedule = _Schedule()
_waits: dict[Any, float] = {}
"""Greenlet → milliseconds its iteration started after its slot (open-loop pacing)."""


def _await_slot() -> float:
    rate = SETTINGS.arrival_rate
    now = time.time()
    if _schedule.start is None:
        _schedule.start = now
    slot = _schedule.start + _schedule.next_slot / rate
    _schedule.next_slot += 1
    _meta.paced += 1
    if slot > now:
        # A user was waiting: a late wake-up is the generator's lag, not the service's, and stays out of the
        # latency; a long one makes the run invalid (see measure.summary).
        gevent.sleep(slot - now)
        if time.time() - slot > PACING_TOLERANCE_S:
            _meta.paced_late += 1
            if len(_meta.paced_late_at) < MAX_LATE_SLOTS:
                _meta.paced_late_at.append(round(slot, 4))
    else:
        # Every user was busy with the service when this iteration was due: its wait is the service's doing.
        late = now - slot
        if late > PACING_TOLERANCE_S:
            _meta.paced_backlog += 1
        _waits[gevent.getcurrent()] = late * 1000.0
    return 0.0


def _pace(user_class: Any) -> None:
    # The class's own wait_time is replaced; on_start (already wrapped for readiness) takes the first slot.
    def wait_time(self: Any) -> float:
        return _await_slot()

    user_class.wait_time = wait_time


@events.report_to_master.add_listener
def _on_report_to_master(client_id, data, **_kwargs):
    # Hand over what was recorded since the last report; the master keeps it all.
    data[_REPORT_RECORDINGS] = [r.to_message() for r in _recordings.values() if len(r)]
    data[_REPORT_EXCEPTION_TYPES] = dict(_exception_types)
    data[_REPORT_USERS_READY] = _ready.at
    if _side_users:
        data[_REPORT_SIDE_USERS] = dict(_side_users)
    _recordings.clear()


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kwargs):
    _exception_types.update(data.get(_REPORT_EXCEPTION_TYPES, {}))
    if _REPORT_USERS_READY in data:
        _worker_ready[client_id] = data[_REPORT_USERS_READY]
    if data.get(_REPORT_SIDE_USERS):
        _worker_side_users[client_id] = dict(data[_REPORT_SIDE_USERS])
    for message in data.get(_REPORT_RECORDINGS, ()):
        incoming = EndpointRecording.from_message(message)
        _recording(incoming.request_type, incoming.name, incoming.side).extend(incoming)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        _on_worker_test_start(environment)
        return
    if _meta.test_start is None:
        _meta.test_start = time.time()
    # Counted now: by the time Locust quits, the workers have already left.
    _meta.workers = len(environment.runner.clients) if isinstance(environment.runner, MasterRunner) else 0
    if SETTINGS.run_time_s:
        gevent.spawn_later(SETTINGS.run_time_s, _end_test, environment)
    if SETTINGS.progress_path is not None:
        gevent.spawn(_write_progress, environment, SETTINGS.progress_path)
    gevent.spawn(_track_peak_users, environment)
    if isinstance(environment.runner, MasterRunner) and SETTINGS.identity:
        gevent.spawn(_watch_workers, environment, time.time())
        gevent.spawn(_watch_master_cpu)


_ending = False
"""The run is ending by perfgate's or Locust's own stop: workers leaving now are not lost."""


def _watch_workers(environment, started: float) -> None:
    # A worker lost mid-run (Locust marks it missing after a few missed heartbeats, or it quit) takes its users
    # and their requests with it: the run is invalid, naming the worker and when.
    expected = set(environment.runner.clients.keys())
    lost: set[str] = set()
    while not _ending and _meta.test_stop is None:
        clients = environment.runner.clients
        for worker in sorted(expected - lost):
            node = clients.get(worker)
            if node is None or node.state == STATE_MISSING:
                lost.add(worker)
                _meta.lost_workers.append((str(worker)[:200], round(time.time() - started, 1)))
        gevent.sleep(0.5)


def _watch_master_cpu() -> None:
    # The master is one thread taking every worker's reports: it saturates first, and is watched each second.
    process = psutil.Process()
    process.cpu_percent()
    while not _ending and _meta.test_stop is None:
        gevent.sleep(1.0)
        _meta.master_cpu.append(round(process.cpu_percent(), 1))


def _track_peak_users(environment) -> None:
    # A LoadTestShape changes the user count as it goes: the run is recorded with the peak it reached.
    while True:
        _meta.peak_users = max(_meta.peak_users or 0, int(environment.runner.user_count))
        gevent.sleep(0.2)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs):
    if not isinstance(environment.runner, WorkerRunner):
        _meta.test_stop = time.time()


def _end_test(environment) -> None:
    # The same path as Locust's own --run-time limit in a headless run.
    global _ending
    _ending = True
    environment.runner.quit()


def _write_progress(environment, path: Path) -> None:
    while True:
        total = environment.runner.stats.total
        write_progress(path, ProgressSnapshot(
            time=time.time(), test_start=_meta.test_start, users=environment.runner.user_count,
            requests=total.num_requests, failures=total.num_failures, current_rps=total.current_rps,
            current_p95_ms=total.get_current_response_time_percentile(0.95)))
        gevent.sleep(1.0)


@events.quit.add_listener
def _on_quit(exit_code, **_kwargs):
    environment = _environment
    if SETTINGS.result_path is None or environment is None or isinstance(environment.runner, WorkerRunner):
        return
    runner = environment.runner
    total = runner.stats.total
    if isinstance(runner, MasterRunner):
        times = list(_worker_ready.values())
        _meta.users_ready = max(t for t in times if t is not None) if times and None not in times else None
    else:
        _meta.users_ready = _ready.at
    if _DUET:
        _meta.side_users = _count_side_users(runner)
    _meta.locust_request_count = total.num_requests
    _meta.locust_failure_count = total.num_failures
    _meta.locust_exit_code = exit_code
    _meta.runner = type(runner).__name__
    _meta.cpu_warning = bool(getattr(runner, "cpu_warning_emitted", False))
    _meta.worker_cpu_warning = bool(getattr(runner, "worker_cpu_warning_emitted", False))
    _meta.exceptions = len(runner.exceptions)
    # The locustfile's own verdict (the threshold pattern, locust-plugins' --check-*).
    _meta.process_exit_code = environment.process_exit_code
    _meta.unhandled_exceptions = [(_exception_name(row), int(row["count"])) for row in runner.exceptions.values()]
    write_recording(SETTINGS.result_path, Recording(meta=_meta, endpoints=list(_recordings.values())))


def _exception_name(row) -> str:
    kind = _exception_types.get(str(row.get("traceback") or ""), "an exception")
    message = str(row.get("msg") or "")
    return f"{kind}: {message}" if message else kind


_environment: Any = None


# A same-moment run: both versions are served at once and every user is bound to one of them, alternately per
# User class (so that each class's users split evenly), the order set by perfgate (it swaps between repeats).
# The user's host is set before its client is built, and its context names the side, which the request event
# carries for every request of Locust's HTTP clients. Each process binds its own users; a worker starts at the
# side of its index's parity, so that workers given an odd number of users each still split them evenly in all,
# and the users bound to each side are counted over every process for the run to check.
_handed_out: dict[str, int] = {}
_side_users: dict[str, int] = {}
_worker_side_users: dict[str, dict[str, int]] = {}


def _bind_to_side(user_class: Any) -> None:
    original = user_class.__init__
    if original in _wrapped:
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if _duet_sides and not hasattr(self, "_perfgate_side"):
            name = type(self).__name__
            number = _handed_out.get(name, 0)
            _handed_out[name] = number + 1
            side, url = _duet_sides[(number + _worker_offset()) % len(_duet_sides)]
            _side_users[side] = _side_users.get(side, 0) + 1
            self._perfgate_side = side
            self.host = url
            own_context = self.context
            self.context = lambda: {**own_context(), SIDE_CONTEXT_KEY: side}
        original(self, *args, **kwargs)

    _wrapped.add(__init__)
    user_class.__init__ = __init__


def _worker_offset() -> int:
    runner = _environment.runner if _environment is not None else None
    index = getattr(runner, "worker_index", 0) if isinstance(runner, WorkerRunner) else 0
    return max(int(index), 0)


def _count_side_users(runner: Any) -> dict[str, int]:
    counts = [*_worker_side_users.values()] if isinstance(runner, MasterRunner) else [_side_users]
    return {side: sum(c.get(side, 0) for c in counts) for side, _ in _duet_sides}


def _on_worker_test_start(environment) -> None:
    # A distributed run's worker learns the sides from the master's options, forwarded with the spawn message
    # before this event (and before any user is made).
    global _duet_sides, _DUET
    if SETTINGS.identity:
        _duet_sides = decode_duet(str(getattr(environment.parsed_options, DUET_OPTION, "") or ""))
        _DUET = bool(_duet_sides)
    if SETTINGS.worker_marker is not None:
        SETTINGS.worker_marker.touch()


@events.init_command_line_parser.add_listener
def _on_parser(parser, **_kwargs):
    parser.add_argument(f"--{DUET_OPTION.replace('_', '-')}", default=os.environ.get(ENV_DUET, ""),
                        help=argparse.SUPPRESS)


@events.init.add_listener
def _on_init(environment, **_kwargs):
    global _environment
    _environment = environment
    # Only a run perfgate started as a master with remote workers has an identity: the workers of --processes
    # are forks of the master and part of one machine's run. A remote worker binds users once it knows the sides.
    runner = environment.runner
    for user_class in environment.user_classes or ():
        _wrap_on_start(user_class)
        if SETTINGS.arrival_rate:
            _pace(user_class)
        if SETTINGS.duet or (SETTINGS.identity and isinstance(runner, WorkerRunner)):
            _bind_to_side(user_class)
    if SETTINGS.identity and isinstance(runner, MasterRunner):
        runner.register_message(HELLO_MESSAGE, _on_hello)
    elif SETTINGS.identity and isinstance(runner, WorkerRunner):
        runner.send_message(HELLO_MESSAGE, {"identity": SETTINGS.identity, "group": SETTINGS.worker_group,
                                            **fingerprint().model_dump()})


# A distributed run: each worker says hello on connecting; the master keeps its machine's fingerprint (the run's
# topology) and refuses, by ending the run, a worker whose locustfile or perfgate differs from its own.
def _on_hello(environment, msg, **_kwargs):
    data = msg.data if isinstance(msg.data, dict) else {}
    theirs = str(data.get("identity", "an unknown perfgate"))[:200]
    if theirs != SETTINGS.identity:
        reason = f"worker {str(msg.node_id)[:200]} runs {theirs}; the master runs {SETTINGS.identity}"
        if SETTINGS.result_path is not None:
            refusal_path(SETTINGS.result_path).write_text(reason + "\n", encoding="utf-8")
        # Locust's master would wait for a replacement until --expect-workers-max-wait: the workers are told to
        # quit, and the master ends a moment later.
        environment.runner.quit()
        gevent.spawn_later(1.0, os._exit, 1)
        return
    machine = {k: str(data.get(k))[:200] for k in ("group", "cpu_model", "cores", "os", "python", "locust")}
    _meta.worker_machines.append({"id": str(msg.node_id)[:200], **machine})


if SETTINGS.step is not None:
    _step: StepLoad = SETTINGS.step

    class PerfgateStepShape(LoadTestShape):
        """Adds ``step_users`` every ``step_time`` seconds up to the profile's users."""

        def tick(self):
            elapsed = self.get_run_time()
            if elapsed >= _step.run_time_s:
                return None
            users = min(_step.users, _step.step_users * (int(elapsed // _step.step_time_s) + 1))
            return int(users), _step.spawn_rate
