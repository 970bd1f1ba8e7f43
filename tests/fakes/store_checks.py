"""Checks on what a real store file holds: a run stored whole, and counts of rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from perfgate.records import RunRecord


def same_run(stored: RunRecord, original: RunRecord) -> None:
    """``stored`` is ``original`` as it went in, but for the id the store gave it."""
    assert stored.model_copy(update={"id": None}) == original.model_copy(update={"id": None})
    for mine, theirs in zip(stored.endpoints, original.endpoints, strict=True):
        assert mine.stats == theirs.stats
        assert mine.histogram.quantiles([0.5, 0.95, 0.99]) == theirs.histogram.quantiles([0.5, 0.95, 0.99])
        assert mine.histogram.count == theirs.histogram.count


def count_rows(db: Path, sql: str = "select count(*) from runs") -> int:
    """The first value of ``sql`` on the store file (by default: how many runs it holds)."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]
