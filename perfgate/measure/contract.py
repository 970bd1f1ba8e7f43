"""The raw recording a Locust process hands back to perfgate, and its file format.

The plugin inside Locust keeps every request as three packed arrays per endpoint
(start time, latency, outcome code) and writes them once, at the end, to a file
that only perfgate reads. This module is standard library only, because the
plugin imports it inside the Locust process.

File layout: ``MAGIC``, one line of JSON (metadata and, per endpoint, the byte
length of each array), then the arrays' bytes in that order.
"""

from __future__ import annotations

import json
import os
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"PGREC1\n"
CHECK_REQUEST_TYPE = "CHECK"
"""Locustfiles report correctness checks as requests of this type (see the README)."""
MAX_ERROR_KINDS = 50
_URL = re.compile(r"https?://[^\s,;)'\"]*[^\s,;)'\":]")


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
                self.latencies_ms.tobytes(), self.outcomes.tobytes(), list(self.kinds)]

    @classmethod
    def from_message(cls, message: list[Any]) -> EndpointRecording:
        request_type, name, starts, latencies, outcomes, kinds = message
        recording = cls(request_type, name, kinds=list(kinds))
        recording.start_times.frombytes(starts)
        recording.latencies_ms.frombytes(latencies)
        recording.outcomes.frombytes(outcomes)
        return recording


@dataclass
class Recording:
    """What one Locust run recorded, plus Locust's own view of it."""

    meta: dict[str, Any]
    """test_start/test_stop epoch seconds, Locust's request count, runner facts."""
    endpoints: list[EndpointRecording]

    @property
    def request_count(self) -> int:
        return sum(len(e) for e in self.endpoints)


class RecordingFormatError(ValueError):
    """The recording file is missing pieces or is not a recording."""


def write_recording(path: Path, recording: Recording) -> None:
    """Write atomically: a reader sees the whole file or none."""
    header = dict(recording.meta)
    header["endpoints"] = [
        {"request_type": e.request_type, "name": e.name, "kinds": e.kinds,
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
        recording = EndpointRecording(entry["request_type"], entry["name"], kinds=entry["kinds"])
        for target, length in zip((recording.start_times, recording.latencies_ms, recording.outcomes),
                                  entry["lengths"], strict=True):
            chunk = data[offset:offset + length]
            if len(chunk) != length:
                raise RecordingFormatError(f"{path} is truncated")
            target.frombytes(chunk)
            offset += length
        endpoints.append(recording)
    return Recording(meta=header, endpoints=endpoints)
