"""A stored row is outside input too: a commit that is not a SHA is refused where the store reads it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from perfgate.errors import StoreError
from perfgate.store import Store

from fakes.synthetic import make_run


@pytest.mark.parametrize("commit", ["hhhhhhhh", "../../etc", "<script>", "a" * 65])
def test_a_commit_that_is_not_a_sha_makes_the_run_damaged_not_a_crash(tmp_path: Path, commit: str) -> None:
    db = tmp_path / "r.db"
    with Store(db) as store:
        saved = store.save(make_run())
    with sqlite3.connect(db) as conn:
        conn.execute("update runs set commit_sha = ?", (commit,))
    with Store(db) as store, pytest.raises(StoreError, match=f"run {saved.id} is damaged .*commit"):
        store.get(saved.id)
