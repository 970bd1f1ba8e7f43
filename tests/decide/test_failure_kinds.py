"""The comment names the head's most frequent failure kinds of endpoints whose failures rose."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.verdict import Verdict
from perfgate.reports.markdown import render_markdown

from fakes.synthetic import synthetic_side

KINDS = {"503 Service Unavailable": 41, "ConnectionResetError(104, 'Connection reset by peer')": 3,
         "<img src=x onerror=alert(1)> @everyone [x](https://evil.example)" + "y" * 300: 2, "timeout": 1}


def _with_kinds(side, kinds: dict[str, int], endpoint: str = "GET /e1"):  # noqa: ANN001, ANN202
    runs = []
    for run in side.runs:
        stats = run.endpoints[endpoint]
        failed = sum(kinds.values())
        endpoints = {**run.endpoints, endpoint: stats.model_copy(update={"failures": failed,
                                                                         "failures_by_type": dict(kinds)})}
        runs.append(dataclasses.replace(run, endpoints=endpoints))
    return dataclasses.replace(side, runs=runs)


def _verdict(base_kinds: dict[str, int]) -> Verdict:
    rng = np.random.default_rng(3)
    base = _with_kinds(synthetic_side(rng, runs=6, endpoints=3, label="merge-base"), base_kinds)
    head = _with_kinds(synthetic_side(rng, runs=6, endpoints=3), KINDS)
    return compare(base, head, CompareConfig())


def test_rising_failures_show_the_top_three_kinds_escaped_and_bounded() -> None:
    verdict = _verdict({"503 Service Unavailable": 1})
    (e1,) = [e for e in verdict.endpoints if e.endpoint == "GET /e1"]
    assert [(k.kind[:7], k.count) for k in e1.top_failures] == [("503 Ser", 246), ("Connect", 18), ("<img sr", 12)]
    markdown = render_markdown(verdict)
    (line,) = [line for line in markdown.splitlines() if "failures rose" in line]
    assert "503 Service Unavailable ×246, ConnectionResetError" in line and "timeout" not in line
    assert "<img" not in line and "@everyone" not in line and "](https://" not in line
    assert len(line) < 400
    assert all(not e.top_failures for e in verdict.endpoints if e.endpoint != "GET /e1")


def test_failures_that_did_not_rise_are_not_listed_and_old_verdicts_load() -> None:
    verdict = _verdict({"503 Service Unavailable": 500})
    assert all(not e.top_failures for e in verdict.endpoints)
    assert "failures rose" not in render_markdown(verdict)
    data = json.loads(_verdict({}).to_json())
    for endpoint in data["endpoints"]:
        endpoint.pop("top_failures")
    assert all(not e.top_failures for e in Verdict.model_validate(data).endpoints)


def test_the_html_report_names_them_escaped() -> None:
    from perfgate.reports.html import render_html

    html = render_html(verdict=_verdict({}), base=[], head=[])
    (line,) = [line for line in html.splitlines() if "failures rose" in line]
    assert "503 Service Unavailable ×246" in line and "<img" not in line and "&lt;img" in line
