"""Files perfgate writes for people (verdicts, pinned baselines): whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from perfgate.errors import OutputError


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # its folder is not one (a file stands in the path) or is gone: there is nothing to remove
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable path") from None
