"""What code a run measured: the commit, branch and dirty flag of a git work tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from perfgate.errors import GitError
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
