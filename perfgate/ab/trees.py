"""A commit checked out beside the current tree, for as long as an A/B needs it.

Both versions of ``perfgate ab`` live in git worktrees in temporary folders: the
base at its commit, the head at a snapshot of the user's work tree (HEAD with the
uncommitted changes, see :func:`snapshot_of_tree`), so that both start alike, with
no ignored files and no data from earlier runs. A worktree shares the repository's
objects, leaves the user's tree, index and branches alone, and is removed
afterwards, also when the A/B fails or is interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from perfgate.errors import GitError, SetupError
from perfgate.measure.service import log_tail, stop_process_group

RESET_TIMEOUT_S = 120.0
"""A reset command (``[ab] reset``) that takes longer is stopped: it runs before every serve."""


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise GitError("git is not installed; perfgate ab needs git to check out the base commit") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` did not finish within 120s in {cwd}") from None


SNAPSHOT_IDENTITY = {"GIT_AUTHOR_NAME": "perfgate", "GIT_AUTHOR_EMAIL": "perfgate@localhost",
                     "GIT_COMMITTER_NAME": "perfgate", "GIT_COMMITTER_EMAIL": "perfgate@localhost"}


@dataclass(frozen=True)
class TreeSnapshot:
    """The user's work tree as a commit, to check out and serve like any other."""

    commit: str
    """HEAD itself when nothing differs from it; otherwise a commit (on no branch) whose parent is HEAD."""
    head: str
    """The commit the work tree is on; runs are recorded under this one."""
    tracked_changes: bool
    """Staged or unstaged changes of tracked files are in the snapshot."""
    untracked: tuple[str, ...]
    """Untracked files that are not ignored, taken into the snapshot (relative to the repository's top)."""


def _snapshot_git(repo: Path, index: Path, *args: str, input: str | None = None) -> str:
    """A git command on a private index (``GIT_INDEX_FILE``), never the user's; pathspecs are literal."""
    env = {**os.environ, **SNAPSHOT_IDENTITY, "GIT_INDEX_FILE": str(index), "GIT_LITERAL_PATHSPECS": "1"}
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=300, env=env,
                              input=input)
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {args[0]}` did not finish within 300s while taking a snapshot of {repo}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"cannot take a snapshot of the work tree {repo} for the head (`git {args[0]}`: {reason}); "
                       "commit or stash your changes and try again")
    return done.stdout.strip()


def snapshot_of_tree(repo: Path, *, leave_out: Iterable[Path] = ()) -> TreeSnapshot:
    """The work tree of ``repo`` as it is now, as a commit: HEAD with its tracked changes (staged and
    unstaged) and its untracked files that are not ignored; ignored files (data, a ``.venv``) left behind.

    The user's tree, stash, branches and the content of the index are not changed: ``git stash create``
    makes a commit of the tracked changes without storing it (it refreshes the index's file stats, as
    ``git status`` does), and the untracked files are added into a private index in a temporary folder. ``leave_out`` names files that must not be taken along even when not ignored
    (the store, and files beside it that start with its name, such as ``-wal`` and ``-shm``).
    """
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").stdout.strip()
    if not head:
        raise GitError(f"{repo} has no commit to take the head from; commit first")
    stash = _git(repo, "stash", "create")
    if stash.returncode != 0:
        reason = (stash.stderr.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"cannot take the uncommitted changes of {repo} along to the head's worktree ({reason}); "
                       "resolve conflicts, or commit or stash your changes, and try again")
    tracked = stash.stdout.strip() or head
    listed = _git(repo, "ls-files", "--others", "--exclude-standard", "-z")
    if listed.returncode != 0:
        raise GitError(f"cannot list the untracked files of {repo}: {listed.stderr.strip()}")
    top = repo.resolve()
    left_out = []
    for path in leave_out:
        try:
            left_out.append(path.resolve().relative_to(top).as_posix())
        except ValueError:
            continue  # outside the repository: nothing to leave out
    untracked = tuple(p for p in listed.stdout.split("\0")
                      if p and not any(p == name or p.startswith(name + "-") for name in left_out))
    if not untracked:
        return TreeSnapshot(commit=tracked, head=head, tracked_changes=tracked != head, untracked=())
    with tempfile.TemporaryDirectory(prefix="perfgate-index-") as private:
        index = Path(private) / "index"
        _snapshot_git(repo, index, "read-tree", tracked)
        _snapshot_git(repo, index, "add", "--pathspec-from-file=-", "--pathspec-file-nul",
                      input="\0".join(untracked))
        tree = _snapshot_git(repo, index, "write-tree")
        commit = _snapshot_git(repo, index, "commit-tree", tree, "-p", head,
                               "-m", f"perfgate: the work tree of {head[:12]}, uncommitted changes included")
    return TreeSnapshot(commit=commit, head=head, tracked_changes=tracked != head, untracked=untracked)


def run_reset(command: str, tree: Path, *, what: str, timeout_s: float = RESET_TIMEOUT_S) -> None:
    """Run the reset command (``[ab] reset``, e.g. ``rm -f app.db``) in ``tree`` before a serve."""
    with tempfile.TemporaryDirectory(prefix="perfgate-reset-") as logs:
        _run_in_tree("reset", command, tree, Path(logs) / "reset.log", where=f"in the {what} tree {tree}",
                     flag="--reset or [ab] reset", timeout_s=timeout_s)


@contextmanager
def checked_out(repo: Path, commit: str, *, name: str | None = None) -> Iterator[Path]:
    """``commit`` in a detached worktree of ``repo``'s repository; removed when the block ends.

    ``name`` is the worktree's folder name (default ``base-<commit>``), shown in messages.
    """
    parent = Path(tempfile.mkdtemp(prefix="perfgate-ab-"))
    tree = parent / (name or f"base-{commit[:12]}")
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
