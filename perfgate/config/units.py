"""Units of the configuration: durations, shares, milliseconds and process counts.

Each is a plain parser (usable on a command-line value) and an annotated type for
the pydantic models of :mod:`perfgate.config.schema`; every parser refuses NaN and
infinities, which TOML and the command line both accept.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

EVERY_CORE = -1
"""``--processes -1``: one Locust process per core, as in Locust."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
MAX_DURATION_S = 7 * 24 * 3600.0
"""No time perfgate waits or loads for is longer than a week: a longer one is a typo (or ``inf``)."""


def finite(value: float, what: str) -> float:
    """``value``, unless it is NaN or infinite (``inf``, ``nan``, ``1e400`` in TOML or on the command line)."""
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return value


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Locust-style time string (``90``, ``"90s"``, ``"1h30m"``)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '5m' or '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _DURATION_PART.sub("", text) == "":
            factors = {"h": 3600.0, "m": 60.0, "s": 1.0}
            seconds = sum(float(n) * factors[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration such as 90, '90s', '5m' or '1h30m'")
    else:
        raise ValueError("expected a duration such as 90, '90s', '5m' or '1h30m'")
    finite(seconds, "a duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration cannot be longer than 7 days (got {seconds:g}s)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def parse_fraction(value: Any) -> float:
    """A share from ``0.05`` or ``"5%"``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return finite(float(value.strip()[:-1]) / 100, "a percentage")
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage such as '5%'") from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a share such as 0.05 or '5%'")
    try:
        return finite(float(value), "a share")
    except ValueError:
        raise ValueError(f"{value!r} is not a share such as 0.05 or '5%'") from None


def parse_milliseconds(value: Any) -> float:
    """Milliseconds from a number (ms) or ``"100ms"`` / ``"0.1s"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        for suffix, factor in (("ms", 1.0), ("s", 1000.0)):
            if text.endswith(suffix):
                try:
                    return finite(float(text[: -len(suffix)]) * factor, "a latency")
                except ValueError:
                    break
        raise ValueError(f"{value!r} is not a latency such as 100, '100ms' or '0.1s'")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a latency such as 100, '100ms' or '0.1s'")
    return finite(float(value), "a latency")


def check_processes(value: int) -> int:
    """Locust's ``--processes``: a count, or -1 for every core."""
    if value == 0 or value < EVERY_CORE:
        raise ValueError(f"must be at least 1, or -1 for one process per core (got {value})")
    return value


Processes = Annotated[int, AfterValidator(check_processes)]
Fraction = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0)]
Milliseconds = Annotated[float, BeforeValidator(parse_milliseconds), Field(gt=0)]
