"""Render a verdict for people: Markdown through Jinja2 templates. Nothing here computes statistics."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import jinja2

from perfgate.verdict import Metric, MetricTest, Outcome, Sequential, Verdict

ICONS = {Outcome.REGRESSED: "🔴", Outcome.IMPROVED: "🟢", Outcome.UNCHANGED: "✅", Outcome.INCONCLUSIVE: "🟡",
         Outcome.INVALID: "⚪"}
# Only what changes meaning inside a table cell or a line of text; "&", "<" and ">" become entities.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape_markdown(text: object) -> str:
    """Safe inside a Markdown table cell: no markup, no HTML, no @mentions, one line."""
    value = " ".join(str(text).split())
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MARKDOWN_SPECIAL.sub(r"\\\1", value)
    return value.replace("@", "@\u200b")  # a zero-width space keeps @team from pinging anyone


def format_change(test: MetricTest | None, interval: bool = True) -> str:
    if test is None or test.change is None:
        return "–"
    unit = " pp" if not test.metric.relative else " %"
    text = f"{test.change * 100:+.1f}{unit}"
    if interval and test.ci_low is not None and test.ci_high is not None:
        text += f" [{test.ci_low * 100:+.1f}, {test.ci_high * 100:+.1f}]"
    return text


def format_value(test: MetricTest | None, which: str) -> str:
    if test is None:
        return "–"
    value = test.base_value if which == "base" else test.head_value
    if value is None:
        return "–"
    if test.metric is Metric.FAILURE_RATE:
        return f"{value * 100:.2f} %"
    if test.metric is Metric.THROUGHPUT:
        return f"{value:.1f}/s"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def format_failures(test: MetricTest | None) -> str:
    """Failure rates of both sides (their change is an interval of zeros more often than not)."""
    if test is None or test.base_value is None or test.head_value is None:
        return "–"
    return f"{100 * test.base_value:.2f} → {100 * test.head_value:.2f}"


def age(moment: datetime | None, now: datetime) -> str:
    """``3 days old``: how long ago the newest run of a side was recorded."""
    if moment is None:
        return "age unknown"
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} old"
    return "just recorded"


def load_summary(parameters: dict) -> str:
    """The load parameters that were set, in a line."""
    parts = [f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
             for key, value in sorted(parameters.items()) if value not in (None, [], {}, "")]
    return ", ".join(parts)


STOP_REASONS = {
    "decided": "every test decided",
    "regressed": "a regression was found",
    "max-pairs": "the pair budget was reached",
    "max-time": "the time budget was reached",
}


def sequential_summary(seq: Sequential) -> str:
    """``6 pairs (looks at 3, 6 of 3, 6, 10; stopped: every test decided), 4 min 10 s``."""
    looks = ", ".join(map(str, seq.looks_taken))
    text = (f"{seq.pairs} pair(s) in balanced order, judged at {looks} of the planned "
            f"{', '.join(map(str, seq.planned_looks))}; stopped because {STOP_REASONS.get(seq.stopped, seq.stopped)}; "
            f"α {seq.alpha:g} spent as {' + '.join(f'{a:.4f}' for a in seq.alpha_spent)}; "
            f"{seq.elapsed_s / 60:.1f} min")
    if seq.invalid_pairs:
        text += f"; {seq.invalid_pairs} pair(s) re-run for an invalid run"
    if seq.confirmation is not None:
        c = seq.confirmation
        text += (f"; confirmation in {c.pairs} fresh pair(s): {len(c.confirmed)} of {len(c.tests)} "
                 "flagged test(s) held")
    return text


def test_of(tests: list[MetricTest], metric: str) -> MetricTest | None:
    return next((t for t in tests if t.metric.value == metric), None)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("perfgate", "templates"), autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(md=escape_markdown, change=format_change, value=format_value, failures=format_failures,
                       load=load_summary, age=age)
    env.filters.update(sequential=sequential_summary)
    env.globals.update(icons=ICONS, test_of=test_of, Outcome=Outcome)
    return env


def marker(profile: str) -> str:
    """The hidden marker that makes a comment the sticky one for a profile."""
    return f"<!-- perfgate:verdict profile={escape_markdown(profile)} -->"


def render_markdown(verdict: Verdict) -> str:
    return _environment().get_template("verdict.md.j2").render(v=verdict, marker=marker(verdict.profile))
