"""The contract between perfgate and its plugin inside Locust: settings, progress and the recording.

perfgate's runner (:mod:`perfgate.measure.locust`) starts Locust with the plugin
(``plugin/perfgate_recorder.py``) and tells it what to do through environment
variables (:class:`PluginSettings`). While the test runs the plugin rewrites a
small progress file (:class:`ProgressSnapshot`); at the end it writes the
recording: every request as three packed arrays per endpoint (start time,
latency, outcome code) and the run's facts (:class:`RecordingMeta`), in a file
that only perfgate reads. Both sides use only the names defined here. This
module is standard library only, because the plugin imports it inside the
Locust process.

Recording file layout: ``MAGIC``, one line of JSON (metadata and, per endpoint,
the byte length of each array), then the arrays' bytes in that order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"PGREC1\n"
CHECK_REQUEST_TYPE = "CHECK"
"""Locustfiles report correctness checks as requests of this type (see the README)."""
MAX_ERROR_KINDS = 50
_URL = re.compile(r"https?://[^\s,;)'\"]*[^\s,;)'\":]")

ENV_RESULT = "PERFGATE_RESULT"
"""Path of the recording file the plugin writes once Locust quits."""
ENV_PROGRESS = "PERFGATE_PROGRESS"
"""Path of the progress file the plugin rewrites every second."""
ENV_RUN_TIME = "PERFGATE_RUN_TIME"
"""Seconds from the test's start to its end (Locust's own -t starts counting before the test does)."""
ENV_STEP = "PERFGATE_STEP"
"""``users,spawn_rate,step_users,step_time_s,run_time_s`` when the profile is a step load."""
ENV_DUET = "PERFGATE_DUET"
"""``side=URL,side=URL`` in a same-moment run: each user is bound to one side, alternately in this order."""
ENV_IDENTITY = "PERFGATE_IDENTITY"
"""``perfgate VERSION, locustfile SHA-256``: a distributed run's master refuses a worker whose identity differs."""
ENV_WORKER_GROUP = "PERFGATE_WORKER_GROUP"
"""A random id of one ``perfgate worker`` command, shared by the Locust processes it runs (``--processes``)."""
ENV_WORKER_MARKER = "PERFGATE_WORKER_MARKER"
"""A file a worker's plugin creates when its test starts: ``perfgate worker --stay`` knows a run came."""
ENV_ARRIVAL_RATE = "PERFGATE_ARRIVAL_RATE"
"""Open-loop pacing: task iterations per second this process starts on a fixed schedule, whatever the answers'
speed (``perfgate capacity``); unset: Locust's own closed loop."""
PACING_TOLERANCE_S = 0.050
"""A paced iteration that starts later than this after its time, although a user was waiting for it, is late:
the load generator stalled. Shorter lags (a busy machine wakes a sleeping user some milliseconds late) leave the
rate offered as planned: the schedule is absolute, so the next iterations start on time again."""
MAX_LATE_SLOTS = 100_000
"""The late iterations whose times a recording keeps."""
DUET_OPTION = "perfgate_duet"
"""The plugin's Locust option holding :data:`ENV_DUET` on the master: Locust forwards custom options to its
workers with each spawn, so a distributed run's workers learn the sides (a worker elsewhere has no such env)."""
HELLO_MESSAGE = "perfgate_hello"
"""The message a worker sends the master on connecting: its identity and its machine's fingerprint."""
SIDE_CONTEXT_KEY = "perfgate_side"
"""The key of a request's context that names its side in a same-moment run."""


@dataclass(frozen=True)
class StepLoad:
    """A step load as the plugin's LoadTestShape runs it."""

    users: float
    spawn_rate: float
    step_users: float
    step_time_s: float
    run_time_s: float

    def encode(self) -> str:
        return ",".join(f"{v:g}" for v in dataclasses.astuple(self))

    @classmethod
    def decode(cls, text: str) -> StepLoad:
        users, spawn_rate, step_users, step_time_s, run_time_s = (float(v) for v in text.split(","))
        return cls(users, spawn_rate, step_users, step_time_s, run_time_s)


@dataclass(frozen=True)
class PluginSettings:
    """What the runner tells the plugin, through environment variables."""

    result_path: Path | None
    progress_path: Path | None
    run_time_s: float = 0.0
    """0: the plugin does not end the test itself."""
    step: StepLoad | None = None
    duet: tuple[tuple[str, str], ...] = ()
    """``(side, base URL)`` of each side of a same-moment run, in the order users are handed out."""
    identity: str = ""
    """See :data:`ENV_IDENTITY`; empty: not a distributed run."""
    worker_group: str = ""
    """See :data:`ENV_WORKER_GROUP`; empty on the master."""
    worker_marker: Path | None = None
    """See :data:`ENV_WORKER_MARKER`."""
    arrival_rate: float = 0.0
    """See :data:`ENV_ARRIVAL_RATE`; 0: closed loop."""

    def to_env(self) -> dict[str, str]:
        env = {ENV_RUN_TIME: f"{self.run_time_s:g}"}
        if self.arrival_rate:
            env[ENV_ARRIVAL_RATE] = repr(float(self.arrival_rate))
        if self.identity:
            env[ENV_IDENTITY] = self.identity
        if self.worker_group:
            env[ENV_WORKER_GROUP] = self.worker_group
        if self.duet:
            env[ENV_DUET] = encode_duet(self.duet)
        if self.worker_marker is not None:
            env[ENV_WORKER_MARKER] = str(self.worker_marker)
        if self.result_path is not None:
            env[ENV_RESULT] = str(self.result_path)
        if self.progress_path is not None:
            env[ENV_PROGRESS] = str(self.progress_path)
        if self.step is not None:
            env[ENV_STEP] = self.step.encode()
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PluginSettings:
        result, progress, step = environ.get(ENV_RESULT), environ.get(ENV_PROGRESS), environ.get(ENV_STEP)
        marker = environ.get(ENV_WORKER_MARKER)
        return cls(result_path=Path(result) if result else None, progress_path=Path(progress) if progress else None,
                   run_time_s=float(environ.get(ENV_RUN_TIME) or 0), step=StepLoad.decode(step) if step else None,
                   duet=decode_duet(environ.get(ENV_DUET) or ""), identity=environ.get(ENV_IDENTITY) or "",
                   worker_group=environ.get(ENV_WORKER_GROUP) or "", worker_marker=Path(marker) if marker else None,
                   arrival_rate=float(environ.get(ENV_ARRIVAL_RATE) or 0))


def encode_duet(sides: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{side}={url}" for side, url in sides)


def decode_duet(text: str) -> tuple[tuple[str, str], ...]:
    """``side=URL,side=URL`` as ``(side, URL)`` pairs; empty: not a same-moment run."""
    return tuple((side, url) for side, _, url in (item.partition("=") for item in text.split(",") if item))


@dataclass(frozen=True)
class ProgressSnapshot:
    """One line of the progress file, from Locust's own (rounded) statistics."""

    time: float
    """Epoch seconds when it was written."""
    test_start: float | None
    users: int
    requests: int
    failures: int
    current_rps: float
    current_p95_ms: float | None


def write_progress(path: Path, snapshot: ProgressSnapshot) -> None:
    """Write atomically: a reader sees the whole file or the previous one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(snapshot)))
    os.replace(tmp, path)


def read_progress(path: Path) -> ProgressSnapshot | None:
    """The latest snapshot, or ``None`` while there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text())
        return ProgressSnapshot(**data)
    except (OSError, ValueError, TypeError):
        return None


def describe_error(exception: BaseException | str) -> str:
    """A short failure kind, as Locust groups its failures."""
    if isinstance(exception, str):
        text = exception
    else:
        message = str(exception)
        text = f"{type(exception).__name__}: {message}" if message else type(exception).__name__
    # URLs differ per request (ids, ports); the endpoint name already says where it failed.
    text = _URL.sub("<url>", text)
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass
class EndpointRecording:
    """Every request of one endpoint: packed arrays, index-aligned."""

    request_type: str
    name: str
    start_times: array = field(default_factory=lambda: array("d"))
    """Epoch seconds at which each request started."""
    latencies_ms: array = field(default_factory=lambda: array("d"))
    outcomes: array = field(default_factory=lambda: array("H"))
    """0 for success; n > 0 for a failure of kind ``kinds[n - 1]``."""
    kinds: list[str] = field(default_factory=list)
    side: str = ""
    """The side of a same-moment run these requests went to (empty in a plain run)."""

    def failure_code(self, kind: str) -> int:
        """The outcome code of a failure kind, adding the kind if new (bounded in number)."""
        try:
            return self.kinds.index(kind) + 1
        except ValueError:
            if len(self.kinds) >= MAX_ERROR_KINDS:
                kind = "other failures"
                if kind in self.kinds:
                    return self.kinds.index(kind) + 1
            self.kinds.append(kind)
            return len(self.kinds)

    def extend(self, other: EndpointRecording) -> None:
        self.start_times.extend(other.start_times)
        self.latencies_ms.extend(other.latencies_ms)
        codes = [0, *(self.failure_code(kind) for kind in other.kinds)]
        if codes == list(range(len(codes))):
            self.outcomes.extend(other.outcomes)
        else:
            self.outcomes.extend(array("H", (codes[o] for o in other.outcomes)))

    def __len__(self) -> int:
        return len(self.latencies_ms)

    def to_message(self) -> list[Any]:
        """A msgpack-friendly form, for a worker's report to the master."""
        return [self.request_type, self.name, self.start_times.tobytes(),
                self.latencies_ms.tobytes(), self.outcomes.tobytes(), list(self.kinds), self.side]

    @classmethod
    def from_message(cls, message: list[Any]) -> EndpointRecording:
        request_type, name, starts, latencies, outcomes, kinds, side = message
        recording = cls(request_type, name, kinds=list(kinds), side=str(side))
        recording.start_times.frombytes(starts)
        recording.latencies_ms.frombytes(latencies)
        recording.outcomes.frombytes(outcomes)
        return recording


@dataclass
class RecordingMeta:
    """The run's facts beside its requests: when it ran, Locust's own counts, what went wrong."""

    test_start: float | None = None
    """Epoch seconds; ``None``: the test never started."""
    test_stop: float | None = None
    workers: int = 0
    """Locust worker processes (0 for a single local process)."""
    peak_users: int | None = None
    """The most users running at once (a LoadTestShape changes the count as it goes)."""
    users_ready: float | None = None
    """Epoch seconds when every user had spawned and returned from on_start; ``None``: never."""
    readiness_tracked: bool = False
    """``users_ready`` is known: recordings from before readiness tracking lack it (it is not in the file)."""
    locust_request_count: int | None = None
    """Locust's own request count over the whole run, to check that nothing was lost."""
    locust_failure_count: int | None = None
    locust_exit_code: int | None = None
    runner: str | None = None
    """Locust's runner class: LocalRunner or MasterRunner."""
    cpu_warning: bool = False
    """Locust warned that this process's CPU (a single local process, or a distributed run's master) crossed 90 %."""
    worker_cpu_warning: bool = False
    """Locust warned that a worker's CPU (of ``--processes`` or of a distributed run) crossed 90 %."""
    master_cpu: list[float] = field(default_factory=list)
    """A distributed run's master: its CPU, in % of one core, each second of the test."""
    exceptions: int = 0
    process_exit_code: int | None = None
    """The locustfile's own verdict (``environment.process_exit_code``), if it set one."""
    unhandled_exceptions: list[tuple[str, int]] = field(default_factory=list)
    """Kind and count of each exception that crashed a user."""
    lost_workers: list[tuple[str, float]] = field(default_factory=list)
    """A distributed run's workers lost during the test: id and seconds after the test's start."""
    worker_machines: list[dict[str, Any]] = field(default_factory=list)
    """A distributed run's workers as they said hello: ``id`` and their machine's fingerprint."""
    side_users: dict[str, int] = field(default_factory=dict)
    """A same-moment run: users bound to each side, over every process (each binds its own alternately)."""
    paced: int = 0
    """Open-loop pacing: iterations started on the schedule (0: not paced)."""
    paced_late: int = 0
    """Of those, started late although a user was waiting for them: the generator fell behind."""
    paced_late_at: list[float] = field(default_factory=list)
    """The epoch seconds each late one was due (the first :data:`MAX_LATE_SLOTS`): only those in the measured
    window count against the run."""
    paced_backlog: int = 0
    """Of those, started late because every user was still busy: the service's answers held them (their wait is
    part of their first request's latency, as a client arriving on time would see it)."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not data.pop("readiness_tracked"):
            del data["users_ready"]
        data["unhandled_exceptions"] = [list(item) for item in self.unhandled_exceptions]
        data["lost_workers"] = [list(item) for item in self.lost_workers]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingMeta:
        """The facts of a recording's header; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)} - {"readiness_tracked"}
        values = {k: v for k, v in data.items() if k in known}
        values["unhandled_exceptions"] = [(str(kind), int(count))
                                          for kind, count in values.get("unhandled_exceptions") or ()]
        values["lost_workers"] = [(str(worker), float(at)) for worker, at in values.get("lost_workers") or ()]
        values["side_users"] = {str(side): int(n) for side, n in dict(values.get("side_users") or {}).items()}
        values["paced_late_at"] = [float(at) for at in list(values.get("paced_late_at") or ())[:MAX_LATE_SLOTS]]
        return cls(**values, readiness_tracked="users_ready" in data)


@dataclass
class Recording:
    """What one Locust run recorded, plus Locust's own view of it."""

    meta: RecordingMeta
    endpoints: list[EndpointRecording]

    @property
    def request_count(self) -> int:
        return sum(len(e) for e in self.endpoints)


class RecordingFormatError(ValueError):
    """The recording file is missing pieces or is not a recording."""


def write_recording(path: Path, recording: Recording) -> None:
    """Write atomically: a reader sees the whole file or none."""
    header = recording.meta.to_dict()
    header["endpoints"] = [
        {"request_type": e.request_type, "name": e.name, "kinds": e.kinds, "side": e.side,
         "lengths": [len(e.start_times) * 8, len(e.latencies_ms) * 8, len(e.outcomes) * 2]}
        for e in recording.endpoints
    ]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(MAGIC)
        out.write(json.dumps(header).encode("utf-8") + b"\n")
        for e in recording.endpoints:
            e.start_times.tofile(out)
            e.latencies_ms.tofile(out)
            e.outcomes.tofile(out)
    os.replace(tmp, path)


def read_recording(path: Path) -> Recording:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise RecordingFormatError(f"{path} is not a perfgate recording")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise RecordingFormatError(f"{path} has no header")
    header = json.loads(data[len(MAGIC):end])
    offset = end + 1
    endpoints = []
    for entry in header.pop("endpoints"):
        recording = EndpointRecording(entry["request_type"], entry["name"], kinds=entry["kinds"],
                                      side=str(entry.get("side") or ""))
        for target, length in zip((recording.start_times, recording.latencies_ms, recording.outcomes),
                                  entry["lengths"], strict=True):
            chunk = data[offset:offset + length]
            if len(chunk) != length:
                raise RecordingFormatError(f"{path} is truncated")
            target.frombytes(chunk)
            offset += length
        endpoints.append(recording)
    try:
        meta = RecordingMeta.from_dict(header)
    except (TypeError, ValueError) as exc:
        raise RecordingFormatError(f"{path} has a damaged header ({exc})") from None
    return Recording(meta=meta, endpoints=endpoints)


def run_identity(locustfile: Path, perfgate_version: str) -> str:
    """What master and workers of one distributed run must share: perfgate's version and the locustfile's bytes."""
    digest = hashlib.sha256(locustfile.read_bytes()).hexdigest()[:16]
    return f"perfgate {perfgate_version}, locustfile sha256 {digest}"


def refusal_path(result_path: Path) -> Path:
    """Where a distributed run's master writes, at once, why it refused a worker (its run ends there)."""
    return result_path.with_name(result_path.name + ".refused")
