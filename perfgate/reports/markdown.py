"""Render a verdict for people: Markdown through Jinja2 templates. Nothing here computes statistics.

What the comment says is built by :mod:`perfgate.reports.content` (shared with the terminal and the HTML
report); this module escapes it for GitHub's Markdown and fits it under the comment's size limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import jinja2

from perfgate import textsafety
from perfgate.decide.verdict import Metric, Outcome, Verdict
from perfgate.errors import UsageError
from perfgate.reports import content
from perfgate.reports.content import (
    COUNT_ORDER,
    ICONS,
    STOP_REASONS,
    Part,
    age,
    budget_comparison,
    budget_quantity,
    budgets_failed_first,
    detectable_ranges,
    distinct_reasons,
    format_change,
    format_failures,
    format_value,
    load_summary,
    outcome_counts,
    sequential_summary,
    test_of,
)

__all__ = [
    "MAX_COMMENT_CHARS", "PASSING_BUDGET_ROWS", "CommentLinks", "escape_markdown", "escape_markdown_line", "https_url",
    "marker", "md_line", "render_markdown",
    # Moved to perfgate.reports.content; still importable from here, where other modules import them from.
    "COUNT_ORDER", "ICONS", "STOP_REASONS", "age", "budget_comparison", "budget_quantity", "budgets_failed_first",
    "detectable_ranges", "distinct_reasons", "format_change", "format_failures", "format_value", "load_summary",
    "outcome_counts", "sequential_summary", "test_of",
]


def escape_markdown(text: object, limit: int = textsafety.TEXT_CHARS) -> str:
    """Safe inside a Markdown table cell or line: no markup, HTML, links, references or @mentions; bounded."""
    return textsafety.markdown_inline(text, limit)


def escape_markdown_line(text: object, limit: int = textsafety.TEXT_CHARS) -> str:
    """:func:`escape_markdown`, for text that starts a line (or follows ``> `` or ``- ``)."""
    return textsafety.markdown_line(text, limit)


PASSING_BUDGET_ROWS = 30
"""Passing budgets listed in the Markdown verdict: every failed one is, but a glob over hundreds of endpoints
must not crowd the comment out."""


def md_line(line: Iterable[Part], *, starts: bool = True) -> str:
    """A :data:`~perfgate.reports.content.Line` in Markdown: its fields escaped (the first one as the start of a
    line when ``starts``), its code in code spans, its strong words in bold."""
    out = []
    for i, part in enumerate(line):
        if part.kind == "field":
            out.append((escape_markdown_line if i == 0 and starts else escape_markdown)(part.text, part.limit))
        elif part.kind == "code":
            out.append(f"`{_code_safe(part.text)}`")
        elif part.kind == "strong":
            out.append(f"**{part.text}**")
        else:
            out.append(part.text)
    return "".join(out)


_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%?=&+#-]*)?")
"""An https URL of characters that cannot end a Markdown link, open HTML or start a mention."""


def https_url(value: str, what: str) -> str:
    """``value`` if it is a plain https URL (safe inside a Markdown link); a :class:`ConfigError` if not."""
    if len(value) > 500 or not _URL.fullmatch(value):
        raise UsageError(f"the {what} must be an https URL of at most 500 plain characters (got {value[:80]!r})")
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


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("perfgate.reports", "templates"), autoescape=False,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(md=escape_markdown, mdline=escape_markdown_line, parts=md_line, change=format_change,
                       value=format_value, failures=format_failures, budget=budget_comparison,
                       mermaid=_mermaid_safe, code=_code_safe)
    env.globals.update(icons=ICONS, test_of=test_of, Outcome=Outcome, Metric=Metric, content=content,
                       endpoint_lines=_endpoint_lines,
                       outcome_counts=outcome_counts, ENDPOINT=textsafety.ENDPOINT_CHARS,
                       NAME=textsafety.NAME_CHARS, PASSING_BUDGET_ROWS=PASSING_BUDGET_ROWS)
    return env


def _endpoint_lines(rows: list) -> list:  # noqa: ANN001 - list[EndpointVerdict] -> list[Line]
    """The lines under a table: each shown endpoint's reasons and failure kinds."""
    return [line for e in rows for line in content.endpoint_lines(e)]


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


MAX_COMMENT_CHARS = 65_536
"""GitHub's limit on a comment's body."""
DROP_ORDER = ("history", "evidence", "provenance")
"""Sections dropped whole, least important first, when the verdict is over the limit."""
_SECTION_NAMES = {"history": "the history charts", "evidence": "the distribution evidence",
                  "provenance": "how this was decided"}


def _macro(module: object, name: str) -> Callable[..., object]:
    """A macro of the template's module (Jinja2 makes each an attribute of it, unknown to a type checker)."""
    macro: Callable[..., object] = getattr(module, name)
    return macro


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
    sections["headline"] = str(_macro(module, "headline")(verdict, links or CommentLinks()))

    def assemble(rows: int, dropped: list[str]) -> str:
        shown = verdict.endpoints[:rows]
        table = str(_macro(module, "table")(verdict, shown, len(verdict.endpoints) - len(shown)))
        parts = [top, sections["headline"], table, sections["failures"], sections["reasons"]]
        parts += [sections[name] for name in ("provenance", "evidence", "history") if name not in dropped]
        if dropped:
            what = [_SECTION_NAMES[name] for name in dropped if name in _SECTION_NAMES]
            if rows < len(verdict.endpoints):
                what.append(f"{len(verdict.endpoints) - rows} table row(s)")
            parts.append(str(_macro(module, "cut")(what, full_report)))
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
        notice = str(_macro(module, "cut")(["most of the verdict"], full_report))
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
