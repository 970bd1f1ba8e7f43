"""The base of every model that crosses a boundary: config files, the store, baseline files, verdict artifacts.

What comes from outside is checked where it comes in. ``NaN`` and infinities are refused (JSON from a
hand-edited file or a forged artifact can hold them, TOML has ``inf`` and ``nan``, ``1e400`` overflows
to infinity), so that no comparison downstream meets a number that compares false with everything.
Datetimes are declared ``AwareDatetime`` where they are fields: a naive one cannot be compared with the
UTC times perfgate writes.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints


class BoundaryModel(BaseModel):
    """A pydantic model that refuses non-finite numbers; subclasses add their own settings."""

    model_config = ConfigDict(allow_inf_nan=False)


CommitSha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{4,64}$")]
"""A git commit's SHA (or a prefix of at least 4 hex digits), wherever one is read from outside: a stored
run, a verdict artifact, a pinned baseline file. Anything else in its place is refused where it comes in."""


def _no_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} out of range")
    return value


def strict_json(text: str | bytes) -> Any:
    """JSON from outside, strictly: no ``NaN`` or ``Infinity``, no number too large for a float (``ValueError``)."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
