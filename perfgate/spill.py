"""Unsaved runs: a finished run the store could not take, kept whole in a JSON file.

A load run takes minutes; a store that is locked too long, a full disk or a
read-only folder must not throw it away. :func:`write_spill` writes the complete
run (every endpoint's statistics, per-second series and sample histogram, the
latter as base64 of :meth:`~perfgate.samples.LatencyHistogram.to_bytes`) beside
the store, in ``unsaved/``, or in a new temporary folder when that fails too;
``perfgate import`` reads it back with :func:`read_spill` and stores it unchanged.

A spill file is outside input when it is read: its size is bounded, its JSON may
hold no NaN, Infinity or number too large for a float, and every part is
validated by the models.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from perfgate.boundary import strict_json
from perfgate.errors import SpillFileError
from perfgate.records import EndpointResult, EndpointStats, RunRecord, SecondBucket
from perfgate.samples import LatencyHistogram, SampleDecodeError

FORMAT = "perfgate-unsaved-run"
FORMAT_VERSION = 1
MAX_SPILL_BYTES = 256 * 2**20
"""Far above any real run (a 30-minute run of 200 endpoints is about 30 MB), far below a memory problem."""


class SpilledEndpoint(BaseModel):
    """One endpoint of a spilled run, its samples as base64 of the histogram blob."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stats: EndpointStats
    series: list[SecondBucket]
    histogram: str


class SpillFile(BaseModel):
    """The file's whole content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["perfgate-unsaved-run"]
    version: int
    written_at: AwareDatetime
    reason: str
    """Why the store did not take the run."""
    store: str
    """The store the run was meant for."""
    run: RunRecord
    """The run without its endpoints (``endpoints`` is empty here); they follow."""
    endpoints: list[SpilledEndpoint]


def spill_folder(store_path: Path) -> Path:
    """Where a run the store at ``store_path`` could not take is written first."""
    return store_path.absolute().parent / "unsaved"


def _file_name(run: RunRecord) -> str:
    started = run.started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = (run.git.commit or "nocommit")[:12]
    return f"run-{started}-{commit}-{uuid.uuid4().hex[:6]}.json"


def _encode(run: RunRecord, store_path: Path, reason: str) -> bytes:
    spill = SpillFile(
        format=FORMAT, version=FORMAT_VERSION, written_at=datetime.now(UTC), reason=reason, store=str(store_path),
        run=run.model_copy(update={"id": None, "endpoints": []}),
        endpoints=[SpilledEndpoint(stats=e.stats, series=e.series,
                                   histogram=base64.b64encode(e.histogram.to_bytes()).decode("ascii"))
                   for e in run.endpoints])
    return spill.model_dump_json(indent=1).encode("utf-8")


def _write_into(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/name`` durably and atomically: the file is whole or absent."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix="perfgate-", suffix=".partial", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        target = folder / name
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # the file is written; a folder that cannot be synced is no reason to write it elsewhere
    return target


def write_spill(run: RunRecord, store_path: Path, reason: str) -> tuple[Path | None, list[str]]:
    """Write the whole run to a spill file; its path (``None`` if nowhere would take it) and the failures.

    First beside the store (``unsaved/``), then in a new temporary folder
    (``perfgate-unsaved-*``). Each written file is read back and compared with the
    run, so a file that exists holds the run losslessly.
    """
    data = _encode(run, store_path, reason)
    name = _file_name(run)
    failures: list[str] = []
    for folder in (spill_folder(store_path), None):
        made: Path | None = None
        try:
            if folder is None:
                folder = made = Path(tempfile.mkdtemp(prefix="perfgate-unsaved-"))
            path = _write_into(folder, name, data)
            if read_spill(path).run != run.model_copy(update={"id": None}):
                path.unlink()
                raise OSError("the file read back differs from the run")
            return path, failures
        except (OSError, SpillFileError) as exc:
            failures.append(f"{folder or 'a temporary folder'}: {getattr(exc, 'strerror', None) or exc}")
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)  # our own empty folder
    return None, failures


class Spilled(BaseModel):
    """A spill file, read back: the run as it was measured, and why it was not stored."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    reason: str
    store: str
    written_at: datetime


def _check_numbers(value: Any, where: str) -> None:
    """Every number storable: floats finite (``parse_float`` saw to that), integers within SQLite's 64 bits."""
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        raise ValueError(f"{where}: integer out of range")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{where}[{index}]")


def read_spill(path: Path) -> Spilled:
    """Read and validate a spill file; :class:`SpillFileError` (one line) for anything wrong with it."""
    def bad(why: str) -> SpillFileError:
        return SpillFileError(f"{path}: not a usable unsaved-run file ({why}); pass a file that perfgate "
                              "wrote when the store could not take a run")

    try:
        size = path.stat().st_size
        if size > MAX_SPILL_BYTES:
            raise bad(f"{size} bytes, more than the {MAX_SPILL_BYTES} a run can need")
        with path.open("rb") as source:
            raw = source.read(MAX_SPILL_BYTES + 1)
    except FileNotFoundError:
        raise SpillFileError(f"{path}: no such file; pass the path printed when the run was not stored") from None
    except IsADirectoryError:
        raise SpillFileError(f"{path}: is a folder; pass the unsaved-run files inside it") from None
    except OSError as exc:
        raise SpillFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_SPILL_BYTES:
        raise bad(f"more than {MAX_SPILL_BYTES} bytes")
    try:
        data = strict_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except RecursionError:
        raise bad("nested too deeply") from None
    except ValueError as exc:
        raise bad(f"invalid JSON: {exc}") from None
    try:
        _check_numbers(data, "file")
    except ValueError as exc:
        raise bad(str(exc)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f"no \"format\": \"{FORMAT}\"")
    if data.get("version") != FORMAT_VERSION:
        raise bad(f"format version {data.get('version')!r}; this perfgate reads version {FORMAT_VERSION}, "
                  "so import it with the perfgate that wrote it")
    try:
        spill = SpillFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise bad(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    run = spill.run
    if run.endpoints:
        raise bad("run.endpoints must be empty; the endpoints are listed beside the run")
    if run.started_at.tzinfo is None:
        raise bad("run.started_at has no time zone")
    endpoints = []
    for index, spilled in enumerate(spill.endpoints):
        try:
            histogram = LatencyHistogram.from_bytes(base64.b64decode(spilled.histogram, validate=True))
        except (binascii.Error, ValueError, SampleDecodeError) as exc:
            raise bad(f"endpoints[{index}].histogram: {exc}") from None
        endpoints.append(EndpointResult(stats=spilled.stats, histogram=histogram, series=spilled.series))
    return Spilled(run=run.model_copy(update={"endpoints": endpoints}), reason=spill.reason, store=spill.store,
                   written_at=spill.written_at)
