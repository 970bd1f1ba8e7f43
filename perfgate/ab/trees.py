"""The two trees of an A/B: each version fresh in its own worktree, set up, and reset before every serve.

Both versions of ``perfgate ab`` live in git worktrees in temporary folders (:func:`perfgate.git.checked_out`):
the base at its commit, the head at a snapshot of the user's work tree (HEAD with the uncommitted changes,
:func:`perfgate.git.snapshot_of_tree`), so that both start alike, with no ignored files and no data from
earlier runs. The user's setup command runs once in each; the reset command before every serve.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from perfgate.errors import SetupError, UsageError
from perfgate.git import TreeSnapshot, checked_out, snapshot_of_tree
from perfgate.measure.service import log_tail, stop_process_group
from perfgate.store import Store

Notify = Callable[[str], None]

RESET_TIMEOUT_S = 120.0
"""A reset command (``[ab] reset``) that takes longer is stopped: it runs before every serve."""


def run_reset(command: str, tree: Path, *, what: str, timeout_s: float = RESET_TIMEOUT_S) -> None:
    """Run the reset command (``[ab] reset``, e.g. ``rm -f app.db``) in ``tree`` before a serve."""
    with tempfile.TemporaryDirectory(prefix="perfgate-reset-") as logs:
        _run_in_tree("reset", command, tree, Path(logs) / "reset.log", where=f"in the {what} tree {tree}",
                     flag="--reset or [ab] reset", timeout_s=timeout_s)


def run_setup(command: str, tree: Path, log_path: Path, *, what: str, timeout_s: float = 1800.0) -> None:
    """Run a setup command (``uv sync``, a build) in ``tree``; a failure names the tree and shows its log."""
    _run_in_tree("setup", command, tree, log_path, where=f"for the {what}", flag="--setup", timeout_s=timeout_s)


def _run_in_tree(kind: str, command: str, tree: Path, log_path: Path, *, where: str, flag: str,
                 timeout_s: float) -> None:
    """A user's command in its own process group in ``tree``, bounded in time; a failure shows its log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(command, shell=True, cwd=tree, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env={**os.environ, "PERFGATE_TREE": str(tree)})
        except OSError as exc:
            raise SetupError(f"cannot start the {kind} command {where} ({exc}); check {flag}") from None
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_process_group(process)
            raise SetupError(f"the {kind} command {where} did not finish within {timeout_s:g}s; check {flag}. "
                             f"Last log lines:\n{log_tail(log_path)}") from None
        except BaseException:  # Ctrl-C, SIGTERM and SIGHUP arrive as perfgate's Interrupted
            stop_process_group(process)  # its own process group: the command and all it started
            raise
        stop_process_group(process, grace_s=1.0)  # whatever it left running in its group
    if code != 0:
        raise SetupError(f"the {kind} command failed with exit code {code} {where}; fix it or {flag}. "
                         f"Last log lines:\n{log_tail(log_path)}")


def head_snapshot(repo: Path, store: Store, notify: Notify) -> TreeSnapshot:
    """The current tree as a commit to serve the head from (the store left out); says what it holds."""
    snapshot = snapshot_of_tree(repo, leave_out=[store.path])
    taken = [what for what, present in (("its uncommitted changes", snapshot.tracked_changes),
                                        (f"{len(snapshot.untracked)} untracked file(s) that are not ignored",
                                         bool(snapshot.untracked))) if present]
    notify(f"head: {snapshot.head[:10]}{' with ' + ' and '.join(taken) if taken else ''}, served from a fresh "
           "worktree; ignored files and data of your tree stay behind")
    return snapshot


@contextmanager
def fresh_trees(repo: Path, where: Path, commits: dict[str, str], setup: str | None,
                notify: Notify) -> Iterator[dict[str, Path]]:
    """Each labelled commit in its own fresh worktree, set up by ``setup``; all removed when the block ends."""
    with ExitStack() as stack:
        trees = {label: stack.enter_context(checked_out(repo, commit, name=f"{label.lower()}-{commit[:12]}"))
                 for label, commit in commits.items()}
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="perfgate-ab-")))
        for label, tree in trees.items():
            if not (tree / where).is_dir():
                raise UsageError(f"the {label}'s commit has no folder {where.as_posix()} (where perfgate runs "
                                  "and serves from); run perfgate from a folder that both versions have")
        if setup:
            for label, tree in trees.items():
                notify(f"setting up the {label} tree: {setup}")
                run_setup(setup, tree / where, logs / f"setup-{label}.log", what=f"{label} ({tree})")
        yield trees
