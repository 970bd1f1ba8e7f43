"""One-line error messages out of pydantic's validation errors, by place in the file or by flag."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def describe_source(source: Path | None) -> str:
    """Where a value came from: the file's path, or the command line."""
    return str(source) if source else "command line"


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
"""What pydantic puts before the message of a validator's own ``ValueError``: noise to a user."""


def _message(item: Mapping[str, Any]) -> str:
    message = str(item["msg"])
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def validation_message(source: Path | None, error: ValidationError, prefix: str = "") -> str:
    """Every error of a file's validation, each by its place in the file (``prefix``: the table's own)."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in (*([prefix] if prefix else []), *item["loc"]))
        message = _message(item)
        if "input" in item and item["type"] not in ("missing",) and not isinstance(item["input"], dict):
            message += f" (got {item['input']!r})"
        parts.append(f"{location}: {message}")
    return f"{describe_source(source)}: " + "; ".join(parts)


def flag_message(error: ValidationError, typed: Mapping[str, Any], flags: Mapping[str, str],
                 source: Path | None, table: str) -> str:
    """Errors of command-line values by the flag and the value as typed; the others by their place in the file."""
    parts = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if field in typed and field in flags:
            value = typed[field]
            shown = value if isinstance(value, str) else repr(value)
            parts.append(f"{flags[field]} {shown}: {_message(item)}")
        else:
            location = ".".join(str(p) for p in (table, *item["loc"]))
            got = f" (got {item['input']!r})" if "input" in item and item["type"] != "missing" \
                and not isinstance(item["input"], dict) else ""
            parts.append(f"{describe_source(source)}: {location}: {_message(item)}{got}")
    return "; ".join(parts)
