"""Render a verdict for people: Markdown through Jinja2 templates. Nothing here computes statistics."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import jinja2

from perfgate import textsafety
from perfgate.decide.rules import parameter_value
from perfgate.decide.verdict import BudgetResult, Metric, MetricTest, Outcome, Sequential, Verdict
from perfgate.errors import ConfigError

ICONS = {Outcome.BROKEN: "⛔", Outcome.REGRESSED: "🔴", Outcome.IMPROVED: "🟢", Outcome.UNCHANGED: "✅", Outcome.INCONCLUSIVE: "🟡",
         Outcome.INVALID: "⚪"}


def escape_markdown(text: object, limit: int = textsafety.TEXT_CHARS) -> str:
    """Safe inside a Markdown table cell or line: no markup, HTML, links, references or @mentions; bounded."""
    return textsafety.markdown_inline(text, limit)


def escape_markdown_line(text: object, limit: int = textsafety.TEXT_CHARS) -> str:
    """:func:`escape_markdown`, for text that starts a line (or follows ``> `` or ``- ``)."""
    return textsafety.markdown_line(text, limit)


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


def budget_quantity(metric: str, value: float | None) -> str:
    """A budget's value or limit with its unit: ``18.2 ms``, ``0.50 %``, ``45.3 req/s``."""
    if value is None:
        return "no data"
    if metric == "failure_rate":
        return f"{value * 100:.2f} %"
    if metric == "rps":
        return f"{value:.1f} req/s"
    return f"{value:.3g} ms" if value < 1000 else f"{value:.0f} ms"


def budget_comparison(budget: BudgetResult) -> str:
    """``18.2 ms ≤ 100 ms`` when it holds, ``120 ms > 100 ms`` when not: the value against its limit, k6-style."""
    at_least = budget.metric == "rps"
    if budget.value is None:
        relation = "≥" if at_least else "≤"
        return f"no data (limit {relation} {budget_quantity(budget.metric, budget.limit)})"
    relation = ("≥" if budget.passed else "<") if at_least else ("≤" if budget.passed else ">")
    return f"{budget_quantity(budget.metric, budget.value)} {relation} {budget_quantity(budget.metric, budget.limit)}"


PASSING_BUDGET_ROWS = 30
"""Passing budgets listed in the Markdown verdict: every failed one is, but a glob over hundreds of endpoints
must not crowd the comment out."""


def budgets_failed_first(budgets: list[BudgetResult]) -> list[BudgetResult]:
    """Every budget, the failed ones first (each group in its own order)."""
    return [b for b in budgets if not b.passed] + [b for b in budgets if b.passed]


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
    """The load parameters that were set, in a line, each with its unit."""
    parts = [f"{key} {parameter_value(key, value)}"
             for key, value in sorted(parameters.items()) if value not in (None, [], {}, "")]
    return ", ".join(parts)


COUNT_ORDER = (Outcome.BROKEN, Outcome.REGRESSED, Outcome.INVALID, Outcome.INCONCLUSIVE, Outcome.IMPROVED,
               Outcome.UNCHANGED)
"""The order of the count line: what needs a reader first."""


def outcome_counts(verdict: Verdict) -> str:
    """``1 regressed · 2 inconclusive · 36 unchanged``: endpoints by outcome."""
    counts = Counter(e.outcome for e in verdict.endpoints)
    return " · ".join(f"{counts[o]} {o.value}" for o in COUNT_ORDER if counts[o])


FAILURE_KIND_CHARS = 80
"""A failure kind as shown in the comment: the service's own words, cut short."""


def format_failure_kinds(kinds: list) -> str:  # noqa: ANN001 - list[FailureKind]
    """``503 Service Unavailable ×41, ConnectionResetError ×3``: each kind escaped and bounded."""
    return ", ".join(f"{escape_markdown(k.kind, FAILURE_KIND_CHARS)} ×{k.count}" for k in kinds)


def distinct_reasons(verdict: Verdict) -> list[str]:
    """The verdict's reasons, each once, without those the headline already says."""
    return [r for r in dict.fromkeys(verdict.reasons) if r not in verdict.headline]


_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%?=&+#-]*)?")
"""An https URL of characters that cannot end a Markdown link, open HTML or start a mention."""


def https_url(value: str, what: str) -> str:
    """``value`` if it is a plain https URL (safe inside a Markdown link); a :class:`ConfigError` if not."""
    if len(value) > 500 or not _URL.fullmatch(value):
        raise ConfigError(f"the {what} must be an https URL of at most 500 plain characters (got {value[:80]!r})")
    return value


@dataclass(frozen=True)
class CommentLinks:
    """Where a reader of the comment finds more: links given by the job that renders, never by the verdict file."""

    run: str | None = None
    """The workflow run that measured the verdict."""
    report: str | None = None
    """The full report (the run's artifact)."""

    def __post_init__(self) -> None:
        if self.run is not None:
            https_url(self.run, "workflow run link")
        if self.report is not None:
            https_url(self.report, "report link")

    @classmethod
    def for_run(cls, run: str | None, *, with_report: bool) -> CommentLinks:
        """The run's page, and its artifacts section for the report when there is one."""
        if run is None:
            return cls()
        return cls(run=run, report=f"{run}#artifacts" if with_report else None)


STOP_REASONS = {
    "decided": "every test decided",
    "regressed": "a regression was found",
    "max-pairs": "the pair budget was reached",
    "max-time": "the time budget was reached",
    "invalid": "what is left undecided is invalid, and more pairs cannot change that",
    "broken": "the head broke the service (its runs stayed invalid where the base's were valid)",
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
    env = jinja2.Environment(loader=jinja2.PackageLoader("perfgate.reports", "templates"), autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(md=escape_markdown, change=format_change, value=format_value, failures=format_failures,
                       load=load_summary, age=age, budget=budget_comparison)
    env.filters.update(sequential=sequential_summary, mermaid=_mermaid_safe, code=_code_safe,
                       mdline=escape_markdown_line, failure_kinds=format_failure_kinds)
    env.globals.update(icons=ICONS, test_of=test_of, Outcome=Outcome, Metric=Metric,
                       detectable_ranges=detectable_ranges, outcome_counts=outcome_counts,
                       distinct_reasons=distinct_reasons, ENDPOINT=textsafety.ENDPOINT_CHARS,
                       NAME=textsafety.NAME_CHARS, PASSING_BUDGET_ROWS=PASSING_BUDGET_ROWS)
    return env


def marker(profile: str, marker_id: str | None = None) -> str:
    """The hidden marker that makes a comment the sticky one for a profile (and an id, for several gates)."""
    text = f"perfgate:verdict profile={_marker_safe(profile)}"
    if marker_id:
        text += f" id={_marker_safe(marker_id)}"
    return f"<!-- {text} -->"


def _marker_safe(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/:-]", "_", value)[:100]


def _mermaid_safe(value: object) -> str:
    """Text inside a quoted Mermaid string: a small safe character set, bounded."""
    return textsafety.mermaid_text(value)


def _code_safe(value: object) -> str:
    """Text inside a Markdown code span: no backticks (which would end it), one line, bounded."""
    return textsafety.code_span(value)


def detectable_ranges(verdict: Verdict) -> str:
    """``p50 6–12 %, p95 11–30 %``: the smallest change the runs could call a regression, over endpoints."""
    parts = []
    for metric in (Metric.P50, Metric.P95, Metric.P99):
        values = sorted(t.detectable for e in verdict.endpoints for t in e.tests
                        if t.metric is metric and t.detectable is not None)
        if values:
            low, high = values[0] * 100, values[-1] * 100
            parts.append(f"{metric.value} {low:.0f} %" if round(low) == round(high) else
                         f"{metric.value} {low:.0f}–{high:.0f} %")
    return ", ".join(parts)


MAX_COMMENT_CHARS = 65_536
"""GitHub's limit on a comment's body."""
DROP_ORDER = ("history", "evidence", "provenance")
"""Sections dropped whole, least important first, when the verdict is over the limit."""
_SECTION_NAMES = {"history": "the history charts", "evidence": "the distribution evidence",
                  "provenance": "how this was decided"}


def _length(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units: an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def render_markdown(verdict: Verdict, *, marker_id: str | None = None, full_report: str | None = None,
                    limit: int = MAX_COMMENT_CHARS, links: CommentLinks | None = None) -> str:
    """The PR verdict; over ``limit``, whole sections go (least important first), then table rows, never the marker.

    ``links``: the workflow run and report to point to, from the job that renders (validated https URLs).
    """
    module = _environment().get_template("verdict.md.j2").module
    top = marker(verdict.profile, marker_id) + "\n"
    sections = {name: str(getattr(module, name)(verdict)) for name in
                ("failures", "reasons", "provenance", "evidence", "history")}
    sections["headline"] = str(module.headline(verdict, links or CommentLinks()))

    def assemble(rows: int, dropped: list[str]) -> str:
        shown = verdict.endpoints[:rows]
        table = str(module.table(verdict, shown, len(verdict.endpoints) - len(shown)))
        parts = [top, sections["headline"], table, sections["failures"], sections["reasons"]]
        parts += [sections[name] for name in ("provenance", "evidence", "history") if name not in dropped]
        if dropped:
            what = [_SECTION_NAMES[name] for name in dropped if name in _SECTION_NAMES]
            if rows < len(verdict.endpoints):
                what.append(f"{len(verdict.endpoints) - rows} table row(s)")
            parts.append(str(module.cut(what, full_report)))
        return "".join(parts)

    dropped: list[str] = []
    text = assemble(len(verdict.endpoints), dropped)
    for name in DROP_ORDER:
        if _length(text) <= limit:
            return text
        dropped.append(name)
        text = assemble(len(verdict.endpoints), dropped)
    if _length(text) <= limit:
        return text
    dropped.append("rows")
    low, high = 0, len(verdict.endpoints)  # the most rows that fit: worst endpoints first
    while low < high:
        middle = (low + high + 1) // 2
        if _length(assemble(middle, dropped)) <= limit:
            low = middle
        else:
            high = middle - 1
    text = assemble(low, dropped)
    if _length(text) > limit:  # even the headline and failures are too long: keep the marker, cut the text
        notice = str(module.cut(["most of the verdict"], full_report))
        budget = limit - _length(top) - 1
        if _length(notice) <= budget // 2:
            budget -= _length(notice)
        else:
            notice = ""
        text = top + _cut_to(text[len(top):], budget) + "\n" + notice
    return text


def _cut_to(text: str, units: int) -> str:
    """The longest start of ``text`` that is at most ``units`` UTF-16 code units long."""
    return text.encode("utf-16-le")[: 2 * max(units, 0)].decode("utf-16-le", "ignore")
