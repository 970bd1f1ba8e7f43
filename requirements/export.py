"""Export the pinned requirement files of the action and the comment job from ``uv.lock``.

Each file lists every package of one install with its exact version and the hashes of all its
files in the lock, so ``pip install --require-hashes --no-deps --only-binary :all: -r FILE``
installs exactly the locked set on any platform the lock covers. perfgate itself is installed on top with
``--no-deps --no-build-isolation --no-index``: it is built by the locked hatchling, offline.

    python requirements/export.py           # rewrite the files after changing uv.lock
    python requirements/export.py --check   # exit 1 when a file is out of date (the tests run this)

Standard library only, and ``uv`` (on PATH, or named by ``UV`` as ``uv run`` does).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "requirements"

BUILD = ["--group", "build"]
ACTION = ["--no-dev", *BUILD]
"""The gate: perfgate's dependencies without extras, and the build backend."""
COMMENT = ["--only-group", "comment", "--only-group", "build"]
"""Posting only (`perfgate comment`, `perfgate github`): no Locust, gevent, SciPy or NumPy."""


def exports() -> dict[str, list[str]]:
    """File name → ``uv export`` arguments: the action's set, one file per extra, and the comment job's set."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    files = {"action.txt": ACTION}
    for extra in sorted(project.get("optional-dependencies", {})):
        files[f"action-{extra}.txt"] = [*ACTION, "--extra", extra]
    files["comment.txt"] = COMMENT
    return files


def _uv() -> list[str]:
    found = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in UV
    if found:
        return [found]
    try:
        import uv  # type: ignore[import-not-found]  # the PyPI package of uv, when installed that way
    except ImportError:
        sys.exit("uv is needed to export the requirement files: https://docs.astral.sh/uv/")
    return [uv.find_uv_bin()]


def export(arguments: list[str]) -> str:
    command = [*_uv(), "export", "--frozen", "--no-emit-project", "--format", "requirements-txt", *arguments]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"uv export failed: {done.stderr.strip()}")
    return done.stdout


def requirements(text: str) -> dict[str, frozenset[str]]:
    """Pinned requirement with its marker → its hashes: what an install reads, without comments or layout.

    A package may appear once per marker (e.g. one NumPy for Python 3.11, another for 3.12 and later).
    """
    found = {}
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        entry = entry.split(" #", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        hashes = frozenset(re.findall(r"--hash=(\S+)", entry))
        found[re.sub(r"\s+", " ", re.sub(r"--hash=\S+", "", entry)).strip()] = hashes
    return found


def name_of(requirement: str) -> str:
    """The normalised project name of a pinned requirement (``Zope.Event==6.2 ; …`` → ``zope-event``)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~ ;\[]", requirement, maxsplit=1)[0]).lower()


def stale() -> list[str]:
    """Files whose requirements differ from a fresh export of ``uv.lock`` (missing files included)."""
    out_of_date = []
    for name, arguments in exports().items():
        path = HERE / name
        if not path.exists() or requirements(path.read_text(encoding="utf-8")) != requirements(export(arguments)):
            out_of_date.append(name)
    return out_of_date


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only check that the files match uv.lock")
    options = parser.parse_args()
    if options.check:
        out_of_date = stale()
        if out_of_date:
            sys.exit(f"out of date with uv.lock: {', '.join(out_of_date)}; run `python requirements/export.py`")
        return
    for name, arguments in exports().items():
        (HERE / name).write_text(export(arguments), encoding="utf-8")
        print(f"wrote requirements/{name}")


if __name__ == "__main__":
    main()
