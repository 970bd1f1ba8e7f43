"""State a service leaves in the tree it is served from, noticed between the runs of an A/B.

A service that writes into its own folder (a SQLite file, uploads, a cache) makes
each run of that tree start where the previous one ended: the version that ran
more often, or wrote more, gets slower for its state, not its code. perfgate
lists the served tree's files (their sizes) before each serve and after each run;
a file that is new, or has grown, after a run and is still there when the tree
is served next was carried into that run. It is reported once per tree, with a
suggestion to remove it before each serve with a reset command (``[ab] reset``).

Bytecode caches (``__pycache__``) and ``.git`` are not state and are left out.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

LEFT_OUT_DIRS = frozenset({".git", "__pycache__"})
SHOWN_PATHS = 5
"""Paths named in a note or progress line; the rest are counted."""
MAX_FILES = 200_000
"""A tree with more files is not watched: listing it twice a run would cost more than it tells."""


def tree_files(root: Path, limit: int = MAX_FILES) -> dict[str, int] | None:
    """Every file under ``root`` (relative POSIX path → size in bytes), ``.git`` and bytecode caches left out;
    ``None`` when there are more than ``limit``."""
    files: dict[str, int] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in LEFT_OUT_DIRS]
        for name in names:
            if name == ".git":  # a worktree's .git is a file
                continue
            if len(files) >= limit:
                return None
            path = Path(folder, name)
            try:
                files[path.relative_to(root).as_posix()] = path.lstat().st_size
            except OSError:
                continue  # gone while listing
    return files


def shown(paths: list[str]) -> str:
    """A bounded list of paths for one line."""
    head = ", ".join(paths[:SHOWN_PATHS])
    return head + (f" and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else "")


@dataclass
class TreeWatch:
    """The files of one served tree, before each serve and after each run."""

    label: str
    """Which version the tree serves (``base``, ``head``)."""
    root: Path
    reset: str | None = None
    """The reset command run before each serve, if any (it changes the advice)."""
    _before: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _written: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    """Path → its size before the last run (-1: it did not exist), for the files that run created or grew."""
    carried: dict[str, str] = field(default_factory=dict, init=False)
    """Path → ``new`` or ``grew``: written during a run and still there at the next serve, in the order seen."""
    watched: bool = field(default=True, init=False)
    """False once the tree proved too big to list."""

    def before_serve(self) -> str | None:
        """List the tree (after the reset command); a progress line when files written before were carried over."""
        if not self.watched:
            return None
        listed = tree_files(self.root)
        if listed is None:
            self.watched = False
            return f"  the {self.label} tree has more than {MAX_FILES} files: files its service writes are not watched"
        self._before = listed
        # Carried: still larger than before the run that wrote it (a reset that truncates it clears it too).
        found = [p for p, size in self._written.items()
                 if self._before.get(p, -1) > size and p not in self.carried]
        for path in found:
            self.carried[path] = "new" if self._written[path] < 0 else "grew"
        self._written = {}
        if not found:
            return None
        described = shown([f"{p} ({self.carried[p]})" for p in found])
        return f"  the {self.label} tree keeps files its service wrote in the previous run: {described}; " + \
            self._advice(found)

    def after_run(self) -> None:
        after = tree_files(self.root) if self.watched else None
        if after is None:
            self._written = {}
            return
        self._written = {p: self._before.get(p, -1) for p, size in after.items() if size > self._before.get(p, -1)}

    def _advice(self, paths: list[str]) -> str:
        if self.reset:
            return "the reset command leaves them in place; make it remove them if they are state"
        example = next((p for p in paths if self.carried.get(p) == "new"), paths[0])
        return ("if that is state, remove it before each serve with --reset or [ab] reset "
                f"(e.g. rm -f {shlex.quote(example)})")

    def note(self) -> str | None:
        """For the verdict: what the tree carried from run to run, if anything."""
        if not self.carried:
            return None
        paths = list(self.carried)
        described = shown([f"{p} ({self.carried[p]})" for p in paths])
        return (f"the {self.label} tree gained files during its runs that the next run started with (state the "
                f"service writes, which can make a version slower for its data, not its code): {described}; "
                + self._advice(paths))
