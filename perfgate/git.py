"""Every question perfgate asks git, answered here once: what code a run measured, which commit a ref names,
where the main branch and the merge-base with it are, what changed since then, and worktrees of other commits.

Read-only questions return ``None`` (or an empty answer) when git has none; :func:`commit_of` and the
worktree functions raise :class:`~perfgate.errors.UsageError` or :class:`~perfgate.errors.GitError`.
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

from perfgate.errors import GitError, UsageError
from perfgate.records import GitInfo


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` did not answer within 30s in {cwd}") from None
    return done.stdout.strip() if done.returncode == 0 else None


def read_git_info(cwd: Path, ignore: tuple[Path, ...] = ()) -> GitInfo:
    """HEAD's commit and branch, and whether tracked files changed; all empty outside git.

    ``ignore``: files or folders (perfgate's own config, ``baselines/``) whose changes do not make the tree
    dirty: they change how perfgate measures, which the comparison checks through the load parameters, not
    the code measured.
    """
    commit = _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD")
    if commit is None:
        return GitInfo(commit=None, branch=None, dirty=False)
    branch = _git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD")
    # Untracked files do not count: build output and the store itself must not mark a tree dirty.
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    changed = bool(status)
    if changed and ignore:
        # Tracked paths changed against HEAD (staged or not), from the repository's top, both sides of a rename.
        names = _git(cwd, "diff", "HEAD", "--name-only", "--no-renames", "-z")
        top = _git(cwd, "rev-parse", "--show-toplevel")
        if names is not None and top is not None:
            ignored = [p.resolve() for p in ignore]
            paths = [(Path(top) / name).resolve() for name in names.split("\0") if name]
            changed = any(not any(p == i or p.is_relative_to(i) for i in ignored) for p in paths)
    return GitInfo(commit=commit, branch=branch or None, dirty=bool(changed))


def _require_git(cwd: Path, *args: str) -> str:
    answer = _git(cwd, *args)
    if answer is None:
        raise GitError(f"`git {' '.join(args)}` failed in {cwd}")
    return answer


def repository_root(cwd: Path) -> Path | None:
    """The top folder of the work tree around ``cwd``, when it is a git repository with a commit."""
    if _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD") is None:
        return None
    top = _git(cwd, "rev-parse", "--show-toplevel")
    return Path(top).resolve() if top else None


def in_repository(cwd: Path) -> bool:
    return _git(cwd, "rev-parse", "--is-inside-work-tree") == "true"


def resolve_commit(cwd: Path, ref: str) -> str | None:
    """The full SHA a ref names, or ``None`` if it names no commit."""
    return _git(cwd, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def resolve_main_branch(cwd: Path, name: str) -> str | None:
    """The main branch's commit: the local branch, else its ``origin`` copy (as in a CI checkout)."""
    for ref in (f"refs/heads/{name}", f"refs/remotes/origin/{name}", name):
        commit = resolve_commit(cwd, ref)
        if commit:
            return commit
    return None


def merge_base(cwd: Path, a: str, b: str) -> str | None:
    return _git(cwd, "merge-base", a, b)


def first_parent_ancestors(cwd: Path, commit: str, limit: int = 200) -> list[str]:
    """``commit`` and its first-parent ancestors, nearest first."""
    return _require_git(cwd, "rev-list", "--first-parent", f"--max-count={limit}", commit).split()


def changed_files(repo: Path, base: str, folder: Path) -> list[Path]:
    """Files under ``folder`` that the work tree adds or modifies against commit ``base`` (deleted ones left out)."""
    answer = _git(repo, "diff", "--name-only", "--diff-filter=AM", base, "--", str(folder))
    top = _git(repo, "rev-parse", "--show-toplevel")
    if not answer or not top:
        return []
    return [Path(top) / line for line in answer.splitlines() if line.strip()]


def name_status(repo: Path, base: str, paths: list[str]) -> list[tuple[str, str, str | None]]:
    """``(status, path, renamed_from)`` of every file under ``paths`` that the work tree (committed or not)
    adds, modifies, renames or deletes against commit ``base``; untracked files count as added.

    Status is git's first letter (``A``, ``M``, ``R``, ``D``, ``T``, ``C``); paths are relative to the
    repository's top folder.
    """
    if not paths:
        return []
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top is None:
        return []
    answer = _git(Path(top), "diff", "--name-status", "-M", "-z", base, "--", *paths)
    found: list[tuple[str, str, str | None]] = []
    fields = (answer or "").split("\0")
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i][0]
        if status in "RC":
            found.append((status, fields[i + 2], fields[i + 1]))
            i += 3
        else:
            found.append((status, fields[i + 1], None))
            i += 2
    untracked = _git(Path(top), "ls-files", "--others", "--exclude-standard", "-z", "--", *paths)
    found += [("A", path, None) for path in (untracked or "").split("\0") if path]
    return found


def numstat(repo: Path, base: str, path: str) -> tuple[int, int] | None:
    """Lines added and removed in ``path`` (relative to the top folder) against ``base``; ``None`` for binary."""
    top = _git(repo, "rev-parse", "--show-toplevel")
    answer = _git(Path(top), "diff", "--numstat", base, "--", path) if top else None
    if not answer:
        return None
    added, removed, *_ = answer.split("\t")
    return (int(added), int(removed)) if added.isdigit() and removed.isdigit() else None


def show_file(repo: Path, commit: str, path: str) -> str | None:
    """The text of ``path`` (relative to the top folder) at ``commit``; ``None`` when it did not exist."""
    top = _git(repo, "rev-parse", "--show-toplevel")
    return _git(Path(top), "show", f"{commit}:{path}") if top else None


def top_folder(repo: Path) -> Path | None:
    top = _git(repo, "rev-parse", "--show-toplevel")
    return Path(top).resolve() if top else None


def user_identity(cwd: Path) -> str | None:
    """``Name <email>`` from git config, for the record of who accepted a baseline."""
    name, email = _git(cwd, "config", "user.name"), _git(cwd, "config", "user.email")
    if not name and not email:
        return None
    return f"{name or ''} <{email}>".strip() if email else name


def commit_of(repo: Path, ref: str, what: str) -> str:
    """The full SHA ``ref`` names; a :class:`UsageError` naming the option (``what``, e.g. ``--base``) if none."""
    commit = resolve_commit(repo, ref)
    if commit is None:
        raise UsageError(f"{what} {ref!r} names no commit in {repo}; pass a branch, tag or SHA")
    return commit


@dataclass(frozen=True)
class MainLine:
    """Where a head stands against the main branch: the branch's tip and the merge-base, or why there is none.

    Asked once per command and passed to everything that needs it (the default baseline, the history,
    the baseline files and gate inputs a branch changed).
    """

    branch: str
    """The main branch's name, as configured."""
    tip: str | None
    """The branch's commit (local, else ``origin/<branch>``)."""
    merge_base: str | None
    """The merge-base of the head with the tip."""
    reason: str = ""
    """Why ``merge_base`` is ``None``: one sentence for a message."""


def main_line(repo: Path, branch: str, head: str | None = "HEAD") -> MainLine:
    """The main branch's tip and the merge-base of ``head`` with it (``None`` each, with the reason, if not)."""
    if not in_repository(repo):
        return MainLine(branch, None, None, "not in a git repository")
    tip = resolve_main_branch(repo, branch)
    if tip is None:
        return MainLine(branch, None, None, f"no branch {branch!r} (nor origin/{branch}): set main_branch in the "
                                            "config or pass --base REF")
    if head is None:
        return MainLine(branch, tip, None, "the head has no commit")
    base = merge_base(repo, head, tip)
    if base is None:
        return MainLine(branch, tip, None, f"HEAD has no merge-base with {branch!r}; pass --base REF")
    return MainLine(branch, tip, base)


# -- worktrees of other commits, and the work tree as a commit ------------------------------------------

def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise GitError("git is not installed; perfgate needs git for this") from None
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
    ``git status`` does), and the untracked files are added into a private index in a temporary folder.
    ``leave_out`` names files that must not be taken along even when not ignored (the store, and files beside
    it that start with its name, such as ``-wal`` and ``-shm``).
    """
    head = _run(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").stdout.strip()
    if not head:
        raise GitError(f"{repo} has no commit to take the head from; commit first")
    stash = _run(repo, "stash", "create")
    if stash.returncode != 0:
        reason = (stash.stderr.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"cannot take the uncommitted changes of {repo} along to the head's worktree ({reason}); "
                       "resolve conflicts, or commit or stash your changes, and try again")
    tracked = stash.stdout.strip() or head
    listed = _run(repo, "ls-files", "--others", "--exclude-standard", "-z")
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


@contextmanager
def checked_out(repo: Path, commit: str, *, name: str | None = None) -> Iterator[Path]:
    """``commit`` in a detached worktree of ``repo``'s repository; removed when the block ends.

    ``name`` is the worktree's folder name (default ``base-<commit>``), shown in messages.
    """
    parent = Path(tempfile.mkdtemp(prefix="perfgate-ab-"))
    tree = parent / (name or f"base-{commit[:12]}")
    try:  # the clean-up also covers a failed or interrupted `worktree add`
        added = _run(repo, "worktree", "add", "--detach", "--force", str(tree), commit)
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
            _run(repo, "worktree", "remove", "--force", "--force", str(tree))
            shutil.rmtree(parent, ignore_errors=True)
            _run(repo, "worktree", "prune")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
