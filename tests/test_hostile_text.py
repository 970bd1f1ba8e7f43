"""Text from outside cannot shape what perfgate renders: one table of hostile strings, put into every free-text
field of a verdict, rendered through the real Markdown verdict (with its Mermaid history), the check run and the
commit status as posted to a fake GitHub, the HTML report and the terminal.

Each rendering is held against the same verdict with a harmless word in those fields: the hostile one must have
the same shape (lines, block syntax, table cells), the visible letters must survive, and the dangerous construct
must not (links, references, mentions, raw HTML, Mermaid directives, invisible characters, unbounded length).
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from rich.console import Console

from perfgate import textsafety
from perfgate.config import CompareConfig
from perfgate.decide.compare import compare
from perfgate.decide.verdict import BaselineChange, BudgetResult, CheckSummary, EndpointTrend, TrendPoint, Verdict
from perfgate.publish.github import CheckKind, PullRequestRef, client_from_environment, post_verdict
from perfgate.reports.console import print_verdict
from perfgate.reports.html import render_html
from perfgate.reports.markdown import marker, render_markdown

from fakes.fake_github import FakeGitHub
from fakes.synthetic import synthetic_side

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WORD = "Zorblax"
"""Letters every rendering must keep: each hostile value is this word and its payload."""

# id, payload, letters of the payload that must stay visible
HOSTILE: list[tuple[str, str, str]] = [
    ("url", "see https://evil.example/pwn?x=1 and ftp://files.example", "evil"),
    ("www", "visit www.evil-site.example/login or WWW.Other.example", "evil"),
    ("email", "mail admin@evil.example or mailto:root@evil.example", "admin"),
    ("issue", "fixes #8 and #1234", "fixes"),
    ("cross-repo", "see owner/repo#8 and owner/repo@1a2b3c4d", "owner"),
    ("gh-ref", "GH-8 and gh-12", "and"),
    ("mention", "@everyone look", "everyone"),
    ("team", "@org/team please", "team"),
    ("heading", "# big heading", "heading"),
    ("list", "- item", "item"),
    ("plus-list", "+ item", "item"),
    ("quote", "> quoted", "quoted"),
    ("ordered", "1. first", "first"),
    ("ordered-paren", "2) second", "second"),
    ("pipe", "| a | b |", "a"),
    ("setext", "===", WORD),
    ("rule", "---", WORD),
    ("backticks", "`code` and ``` fence", "code"),
    ("fence", "```\nfenced\n```", "fenced"),
    ("script", "<script>alert(1)</script>", "alert"),
    ("img", '<img src=x onerror=alert(1)>', "onerror"),
    ("mermaid-init", "%%{init: {'theme': 'dark'}}%% title", "init"),
    ("mermaid-close", 'end"]] ]] "quoted"', "end"),
    ("newline", "line one\nline two\r\nline three", "three"),
    ("bidi", "abc\u202edcba\u202c and \u2066isolate\u2069", "isolate"),
    ("zero-width", "zero\u200bwidth \u200c\u200d\u200e\u200f joined", "joined"),
    ("bom", "\ufeffbom", "bom"),
    ("ansi", "\x1b[31mred\x1b[0m \x07bell", "red"),
    ("math", "$x^2$ and $$y$$", "and"),
    ("entity", "&#64;everyone &lt;b&gt;", "everyone"),
    ("markup", "*bold* _it_ ~~gone~~ [link](javascript:alert(1)) ![img](x)", "bold"),
    ("huge", "A" * 100_000, "AAAA"),
]
WORKFLOW_COMMAND = "::error title=fake::forged annotation"
"""Printed at the start of a line in a GitHub Actions log, this would be an annotation."""
IDS = [case[0] for case in HOSTILE]
INVISIBLE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _hostile(payload: str) -> str:
    return f"{WORD} {payload}"


def _verdict(text: str) -> Verdict:
    """A regressed verdict with ``text`` in every field that comes from outside."""
    rng = np.random.default_rng(8)
    base = synthetic_side(rng, runs=5, endpoints=3, label="merge-base")
    head = synthetic_side(rng, runs=5, endpoints=3, shift={0: 0.4})
    verdict = compare(base, head, CompareConfig())
    endpoints = [e.model_copy(update={"endpoint": f"GET /{text}/{i}", "reasons": [text]})
                 for i, e in enumerate(verdict.endpoints)]
    assert verdict.base is not None
    return verdict.model_copy(update={
        "created_at": NOW, "headline": text, "profile": text, "notes": [text], "reasons": [text],
        "endpoints": endpoints,
        "head": verdict.head.model_copy(update={"branch": text, "newest_run_at": NOW}),
        "base": verdict.base.model_copy(update={"branch": text, "label": text, "accepted_by": text,
                                                "reason": text, "newest_run_at": NOW - timedelta(days=1)}),
        "budgets": [BudgetResult(endpoint=text, metric="p95", limit=20.0, value=30.0, passed=False, source=text,
                                 note=text)],
        "checks": [CheckSummary(name=text, passed=False, failures=1, runs=5, message=text)],
        "baseline_changes": [BaselineChange(file=f"baselines/{text}.json", profile=text, kind="accepted",
                                            accepted_by=text, accepted_at=NOW, reason=text)],
        "history": [EndpointTrend(endpoint=text, metric="p50", branch=text, points=[
            TrendPoint(commit=f"{i:x}" * 40, at=NOW - timedelta(days=5 - i), value=11.0 + i, runs=3)
            for i in range(5)])],
    })


def _shape(markdown: str) -> list[tuple[str, int]]:
    """Per line: the block syntax it starts with and its number of table-cell pipes."""
    shape = []
    for line in markdown.split("\n"):
        start = re.match(r"(?:\s*(?:[>#*+=|-]+|\d+[.)]|`{3,}|~{3,}))*", line)
        shape.append((start.group() if start else "", len(re.findall(r"(?<!\\)\|", line))))
    return shape


def _visible(markdown: str) -> str:
    """What a reader sees of Markdown text: escapes and entities resolved, our breaking spaces dropped."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)).replace("\u200b", "")


TEMPLATE_TAGS = re.compile(r"</?details>|</?summary>")


@pytest.mark.parametrize(("payload", "letters"), [case[1:] for case in HOSTILE], ids=IDS)
def test_markdown_verdict_keeps_its_shape_and_loses_every_dangerous_construct(payload: str, letters: str) -> None:
    hostile, benign = render_markdown(_verdict(_hostile(payload))), render_markdown(_verdict(WORD))
    top = marker(_hostile(payload)) + "\n"
    assert hostile.startswith(top)
    hostile = hostile[len(top):]  # the marker is an HTML comment (never rendered) of [A-Za-z0-9._/:-] only
    # GitHub links and mentions nothing in code: the Mermaid blocks have their own test, code spans hold
    # one line without a backtick (the shape below shows that none ended early).
    hostile, benign = (re.sub(r"```mermaid\n.*?\n```", "```mermaid```", text, flags=re.S) for text in (hostile, benign))
    spans = re.findall(r"(?<!\\)`([^`\n]*)`", hostile)
    assert all(len(span) <= textsafety.CODE_CHARS for span in spans)
    hostile, benign = (re.sub(r"(?<!\\)`[^`\n]*`", "`…`", text) for text in (hostile, benign))
    assert _shape(hostile) == _shape(benign[len(marker(WORD)) + 1:])  # no new line, heading, list, quote or cell

    assert "://" not in hostile
    assert not re.search(r"(?i)www\.[a-z0-9]", hostile)
    assert not re.search(r"#\d|(?i:\bgh-\d)", hostile)
    assert not re.search(r"@(?!&#x200B;)", hostile)  # every @ is followed by the breaking entity
    assert "<" not in TEMPLATE_TAGS.sub("", hostile)
    assert not re.search(r"(?<!\\)\$", hostile)
    assert not INVISIBLE.search(hostile.replace("\n", ""))
    assert "](" not in hostile.replace("\\]", "")  # no link or image

    visible = _visible(hostile)
    assert WORD in visible and letters in visible
    for line in hostile.split("\n"):
        assert len(line) < 4000, line[:200]  # every field bounded, escapes included
    assert len(hostile) < len(benign) + 40_000


@pytest.mark.parametrize(("payload", "letters"), [case[1:] for case in HOSTILE], ids=IDS)
def test_mermaid_history_title_is_reduced_to_a_safe_character_set(payload: str, letters: str) -> None:
    markdown = render_markdown(_verdict(_hostile(payload)))
    (block,) = re.findall(r"```mermaid\n(.*?)\n```", markdown, re.S)
    (title,) = re.findall(r'^    title "(.*) p50 \(ms\)"$', block, re.M)
    assert re.fullmatch(r"[\w ./:()-]*", title), title
    assert title.startswith(WORD) and len(title) <= textsafety.MERMAID_CHARS
    assert "%%" not in block and "://" not in block and "@" not in block and "<" not in block
    assert len(block.split("\n")) == 5  # xychart-beta, title, x-axis, y-axis, line
    if len(_hostile(payload)) <= textsafety.MERMAID_CHARS and letters.isalpha():
        assert letters in title


def _posted(text: str, check: CheckKind) -> tuple[list[dict], list[dict]]:
    verdict = _verdict(text)
    head = verdict.head.commit
    assert head is not None
    with FakeGitHub().start() as fake:
        fake.add_pull(7, head)
        client = client_from_environment({"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "t0ken",
                                          "PERFGATE_GITHUB_PACING": "0"})
        markdown = render_markdown(verdict)
        result = post_verdict(client, PullRequestRef("acme/shop", 7, head), verdict, markdown,
                              marker(verdict.profile), exit_code=1, check=check)
        assert result.check == "created", result
        assert fake.errors == []
        return fake.check_runs, fake.statuses


def _plain_and_bounded(value: str, limit: int, letters: str) -> None:
    assert not INVISIBLE.search(value) and "\n" not in value
    assert 0 < len(value) <= limit
    assert value == " ".join(value.split())
    if len(value) < limit:  # not cut: every visible letter is there
        assert letters in value


@pytest.mark.parametrize(("payload", "letters"), [case[1:] for case in HOSTILE], ids=IDS)
def test_check_run_name_and_title_are_plain_one_line_and_bounded(payload: str, letters: str) -> None:
    (run,), _ = _posted(_hostile(payload), CheckKind.CHECK_RUN)
    _plain_and_bounded(run["name"], textsafety.CHECK_NAME_CHARS, letters)
    _plain_and_bounded(run["output"]["title"], textsafety.CHECK_TITLE_CHARS, letters)
    assert run["name"].startswith(f"perfgate / {WORD}") and run["output"]["title"].startswith(WORD)
    assert run["output"]["summary"] == render_markdown(_verdict(_hostile(payload)))  # the defanged comment


@pytest.mark.parametrize(("payload", "letters"), [case[1:] for case in HOSTILE], ids=IDS)
def test_commit_status_context_and_description_are_plain_and_within_githubs_limits(payload: str,
                                                                                  letters: str) -> None:
    _, (status,) = _posted(_hostile(payload), CheckKind.STATUS)
    _plain_and_bounded(status["context"], textsafety.STATUS_CONTEXT_CHARS, letters)
    _plain_and_bounded(status["description"], textsafety.STATUS_DESCRIPTION_CHARS, letters)


@pytest.mark.parametrize(("payload", "letters"), [case[1:] for case in HOSTILE], ids=IDS)
def test_html_report_escapes_strips_invisible_characters_and_bounds_each_field(payload: str, letters: str) -> None:
    page = render_html(verdict=_verdict(_hostile(payload)), base=[], head=[])
    benign = render_html(verdict=_verdict(WORD), base=[], head=[])
    for tag in ("<script", "<img", "</script", "<a ", "<h1", "<li", "<p"):  # escaped text, never a new element
        assert page.count(tag) == benign.count(tag), tag
    assert not INVISIBLE.search(page.replace("\n", ""))
    assert page.count("<tr") == benign.count("<tr") and page.count("<h2") == benign.count("<h2")
    assert len(page) < len(benign) + 60_000  # a 100 kB name is cut wherever it is shown
    text = html.unescape(re.sub(r"<[^>]*>", " ", page))
    assert WORD in text and letters in text


@pytest.mark.parametrize(("payload", "letters"), [case[1:] for case in HOSTILE], ids=IDS)
def test_terminal_verdict_carries_no_control_or_format_character(payload: str, letters: str) -> None:
    out = StringIO()
    print_verdict(Console(file=out, width=200, color_system=None, force_terminal=False), _verdict(_hostile(payload)))
    printed = out.getvalue()
    assert "\x1b" not in printed and not INVISIBLE.search(printed.replace("\n", ""))
    assert WORD in printed and letters in printed.replace("\n", "")


@pytest.mark.parametrize("character", ["\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\x1b", "\x00", "\u00ad"])
def test_every_control_and_format_character_is_stripped(character: str) -> None:
    assert unicodedata.category(character) in ("Cc", "Cf")
    for render in (textsafety.plain_text, textsafety.markdown_inline, textsafety.markdown_line,
                   textsafety.mermaid_text, textsafety.code_span, textsafety.check_title):
        assert character not in render(f"a{character}b")


def test_bounds_cut_with_an_ellipsis_and_leave_short_text_alone() -> None:
    assert textsafety.plain_text("x" * 1000, 10) == "x" * 9 + "…"
    assert textsafety.plain_text("short", 10) == "short"
    # The bound counts what a reader sees: escapes do not cut a field shorter.
    assert textsafety.markdown_inline("@" * 10, 10) == "@&#x200B;" * 10
    assert len(textsafety.status_description("y" * 500)) == 140


def test_leading_block_syntax_is_escaped_only_at_a_line_start() -> None:
    assert textsafety.markdown_line("# title") == "\\# title"
    assert textsafety.markdown_line("12. twelve") == "12\\. twelve"
    assert textsafety.markdown_line("- item") == "\\- item"
    assert textsafety.markdown_inline("# title") == "# title"  # inside a line a "#" is a character
    assert textsafety.markdown_line("GET /a-b") == "GET /a-b"


def test_terminal_line_cannot_start_a_workflow_command() -> None:
    verdict = _verdict(WORKFLOW_COMMAND)
    out = StringIO()
    print_verdict(Console(file=out, width=200, color_system=None, force_terminal=False), verdict)
    printed = out.getvalue()
    assert "forged annotation" in printed
    assert not [line for line in printed.split("\n") if line.lstrip().startswith("::")]
