"""Rendering the verdict for people: escaping of user-controlled text, and the Markdown's shape."""

from __future__ import annotations

import numpy as np

from perfgate.compare import compare
from perfgate.config import CompareConfig
from perfgate.report import escape_markdown, render_markdown
from synthetic import synthetic_side


def test_hostile_names_cannot_break_a_table_or_ping_anyone() -> None:
    text = escape_markdown("GET /a|b `x` <script>alert(1)</script> @everyone *bold* [link](http://x)\nnext")
    assert "|" not in text.replace("\\|", "")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "@everyone" not in text and "@\u200beveryone" in text
    assert "\\`x\\`" in text and "\\*bold\\*" in text and "\\[link\\]" in text
    assert "\n" not in text


def test_markdown_has_the_marker_a_row_per_endpoint_and_the_provenance() -> None:
    rng = np.random.default_rng(1)
    base = synthetic_side(rng, runs=5, endpoints=3, label="merge-base")
    head = synthetic_side(rng, runs=5, endpoints=3, shift={1: 0.3})
    markdown = render_markdown(compare(base, head, CompareConfig()))
    lines = markdown.splitlines()
    assert lines[0] == "<!-- perfgate:verdict profile=smoke -->"
    assert "REGRESSED" in lines[1]
    rows = [line for line in lines if line.startswith("| GET /e")]
    assert len(rows) == 3 and rows[0].startswith("| GET /e1 | 🔴 regressed |")
    assert "- baseline: merge-base `cccccccccc`, 5 run(s)" in markdown
    assert "over 9 tests (Holm)" in markdown
