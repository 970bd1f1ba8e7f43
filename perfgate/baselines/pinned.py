"""Pinned baselines: ``baselines/<profile>.json``, a reviewable text record of an accepted baseline (or of
imported expectations), read and written here.

Pinned files are JSON with sorted keys, so that accepting a baseline is a reviewable change in a pull request
like any other. A damaged file is a :class:`~perfgate.errors.BaselineError`, never a silent default.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, ValidationError

from perfgate.boundary import BoundaryModel, CommitSha
from perfgate.config import LoadedConfig
from perfgate.environment import Topology
from perfgate.errors import BaselineError
from perfgate.output import write_text_atomic
from perfgate.records import EndpointStats, EnvironmentFingerprint

FILE_FORMAT = 1


class PinnedRun(BoundaryModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: int | None
    started_at: AwareDatetime
    endpoints: dict[str, EndpointStats]


class Expectation(BoundaryModel):
    """Expected values of one endpoint, imported from a table: checked as absolute budgets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p50: float | None = Field(default=None, gt=0)
    p95: float | None = Field(default=None, gt=0)
    p99: float | None = Field(default=None, gt=0)
    rps: float | None = Field(default=None, gt=0)


class PinnedBaseline(BoundaryModel):
    """``baselines/<profile>.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FILE_FORMAT
    kind: Literal["accepted", "expected"]
    profile: str
    commit: CommitSha | None = None
    accepted_by: str | None = None
    accepted_at: AwareDatetime
    reason: str
    expires: AwareDatetime | None = None
    environment: EnvironmentFingerprint | None = None
    load_parameters: dict | None = None
    topology: Topology | None = None
    """Where the accepted runs' load came from; ``None``: a file written before perfgate kept it (not checked)."""
    runs: list[PinnedRun] = Field(default_factory=list)
    """Per-run statistics of the accepted runs: the run-level spread the decision needs."""
    expected: dict[str, Expectation] = Field(default_factory=dict)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or datetime.now(UTC))


def baseline_path(loaded: LoadedConfig, profile: str) -> Path:
    return loaded.baselines_dir / f"{profile}.json"


class NonFiniteNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON file: Python's parser accepts them, JSON does not."""


def _refuse_constant(name: str) -> float:
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 overflows to infinity
        raise NonFiniteNumber(text)
    return value


def read_pinned(path: Path) -> PinnedBaseline | None:
    """The pinned baseline at ``path``, ``None`` if there is none; a damaged file is an error."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except NonFiniteNumber as exc:
        raise BaselineError(f"{path}: {exc} is not a number a baseline can hold (NaN and infinities would turn "
                            "a regression into an undecided test); fix the file or write it again with "
                            "`perfgate baseline accept`") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: invalid JSON ({exc}); fix the file or write it again with "
                            "`perfgate baseline accept`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read ({exc})") from None
    try:
        pinned = PinnedBaseline.model_validate(data)
    except ValidationError as exc:
        item = exc.errors()[0]
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        raise BaselineError(f"{path}: {where}: {item['msg']}; fix the file or write it again with "
                            "`perfgate baseline accept`") from None
    if pinned.format != FILE_FORMAT:
        raise BaselineError(f"{path}: format {pinned.format} is not known to this perfgate; upgrade perfgate")
    return pinned


def write_pinned(path: Path, pinned: PinnedBaseline) -> None:
    """Stable key order and a final newline; written atomically."""
    write_text_atomic(path, json.dumps(pinned.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")


def list_pinned(loaded: LoadedConfig) -> list[tuple[Path, PinnedBaseline]]:
    folder = loaded.baselines_dir
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        pinned = read_pinned(path)
        if pinned is not None:
            found.append((path, pinned))
    return found
