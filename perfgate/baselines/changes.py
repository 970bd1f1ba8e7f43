"""The pinned baselines a branch adds or changes: told in its verdict, so that reviewers approve them knowingly."""

from __future__ import annotations

from pathlib import Path

from perfgate.baselines.pinned import read_pinned
from perfgate.config import LoadedConfig
from perfgate.decide.verdict import BaselineChange, BaselineChangeKind
from perfgate.errors import BaselineError
from perfgate.git import MainLine, changed_files, main_line


def changed_baselines(loaded: LoadedConfig, repo: Path, main: MainLine | None = None) -> list[BaselineChange]:
    """Pinned baselines this branch adds or changes against its merge-base with the main branch.

    A pull request that accepts a new baseline says so in its verdict, with who accepted it and why,
    so that reviewers approve the new baseline knowingly.
    """
    base = (main or main_line(repo, loaded.config.main_branch)).merge_base
    if base is None:
        return []
    changed = changed_files(repo, base, loaded.baselines_dir)
    result = []
    for path in changed:
        try:
            pinned = read_pinned(path)
        except BaselineError as exc:
            result.append(
                BaselineChange(
                    file=_relative(path, repo), profile=path.stem, kind=BaselineChangeKind.UNREADABLE, reason=str(exc)
                )
            )
            continue
        if pinned is not None:
            result.append(
                BaselineChange(
                    file=_relative(path, repo),
                    profile=pinned.profile,
                    kind=BaselineChangeKind(pinned.kind),
                    accepted_by=pinned.accepted_by,
                    accepted_at=pinned.accepted_at,
                    reason=pinned.reason,
                    commit=pinned.commit,
                )
            )
    return result


def _relative(path: Path, repo: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(path)
