"""Editing perfgate's own config does not make a tree dirty; changed load parameters are still caught."""

from __future__ import annotations

from pathlib import Path

from perfgate.config import load_config
from perfgate.git import read_git_info

from conftest import git


def test_config_and_baselines_edits_leave_the_tree_clean_but_code_edits_do_not(git_repo: Path) -> None:
    (git_repo / "perfgate.toml").write_text('[profiles.smoke]\nusers = 5\n')
    (git_repo / "baselines").mkdir()
    (git_repo / "baselines" / "smoke.json").write_text("{}\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "perfgate config")
    loaded = load_config(start=git_repo)
    (git_repo / "perfgate.toml").write_text('[profiles.smoke]\nusers = 6\n')
    (git_repo / "baselines" / "smoke.json").write_text('{"x": 1}\n')
    assert read_git_info(git_repo).dirty is True
    assert read_git_info(git_repo, loaded.own_paths()).dirty is False
    # The load they describe still differs: a comparison checks that through the load parameters.
    assert load_config(start=git_repo).resolve("smoke").users == 6
    (git_repo / "service.txt").write_text("v2\n")
    assert read_git_info(git_repo, loaded.own_paths()).dirty is True


def test_a_dirty_head_with_only_committed_runs_is_offered_head_head(git_repo: Path) -> None:
    import pytest

    from perfgate.baselines.selection import select
    from perfgate.errors import RunNotFoundError
    from perfgate.store import Store

    from fakes.synthetic import make_run

    sha = git(git_repo, "rev-parse", "HEAD")
    db = git_repo / "perfgate-runs.db"
    with Store(db) as store:
        store.save(make_run(commit=sha))
        (git_repo / "service.txt").write_text("v2\n")
        with pytest.raises(RunNotFoundError, match=r"compare the commit's runs with --head HEAD"):
            select(store, load_config(start=git_repo), "smoke", git_repo)
