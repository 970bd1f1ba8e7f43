"""A commit checked out beside the current tree, for as long as an A/B needs it.

The base version of ``perfgate ab`` lives in a git worktree in a temporary folder:
it shares the repository's objects, leaves the user's tree, index and branches
alone, and is removed afterwards, also when the A/B fails or is interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perfgate.errors import GitError, SetupError
from perfgate.service import log_tail, stop_process_group


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise GitError("git is not installed; perfgate ab needs git to check out the base commit") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` did not finish within 120s in {cwd}") from None


@contextmanager
def checked_out(repo: Path, commit: str) -> Iterator[Path]:
    """``commit`` in a detached worktree of ``repo``'s repository; removed when the block ends."""
    parent = Path(tempfile.mkdtemp(prefix="perfgate-ab-"))
    tree = parent / f"base-{commit[:12]}"
    try:  # the clean-up also covers a failed or interrupted `worktree add`
        added = _git(repo, "worktree", "add", "--detach", "--force", str(tree), commit)
        if added.returncode != 0:
            reason = (added.stderr.strip().splitlines() or ["no message"])[-1]
            raise GitError(f"cannot check out {commit[:12]} into a worktree ({reason}); "
                           "check that --base names a commit of this repository")
        yield tree
    finally:
        # A stop signal during clean-up (a second Ctrl-C, a CI's SIGTERM after its SIGINT) must not leave a
        # half-removed worktree behind. Ignored, not handled: git runs in perfgate's process group and
        # inherits the ignoring, so a terminal's Ctrl-C cannot kill it half-way either.
        stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in stop_signals}
        try:
            _git(repo, "worktree", "remove", "--force", "--force", str(tree))
            shutil.rmtree(parent, ignore_errors=True)
            _git(repo, "worktree", "prune")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_setup(command: str, tree: Path, log_path: Path, *, what: str, timeout_s: float = 1800.0) -> None:
    """Run a setup command (``uv sync``, a build) in ``tree``; a failure names the tree and shows its log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(command, shell=True, cwd=tree, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env={**os.environ, "PERFGATE_TREE": str(tree)})
        except OSError as exc:
            raise SetupError(f"cannot start the setup command for the {what} ({exc}); check --setup") from None
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_process_group(process)
            raise SetupError(f"the setup command for the {what} did not finish within {timeout_s:g}s; "
                             f"check --setup. Last log lines:\n{log_tail(log_path)}") from None
        except BaseException:  # Ctrl-C, SIGTERM and SIGHUP arrive as perfgate's Interrupted
            stop_process_group(process)  # its own process group: the command and all it started
            raise
    if code != 0:
        raise SetupError(f"the setup command for the {what} failed with exit code {code}; fix it or --setup. "
                         f"Last log lines:\n{log_tail(log_path)}")
