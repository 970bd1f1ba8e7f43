"""Defanging text that came from outside before it is rendered for GitHub, a browser or a terminal.

Endpoint names, headlines, notes, reasons, branch and profile names, who accepted a
baseline and why: all of it can come from a pull request (its locustfile, its
``perfgate.toml``, its ``baselines/`` files, or a verdict artifact it uploaded). None of it
may shape what the bot posts. Every rendering target has one function here:

- :func:`markdown_inline`: a table cell or the middle of a line of GitHub Markdown;
- :func:`markdown_line`: the same, where the text starts a line (no heading, list, quote…);
- :func:`mermaid_text`: a quoted string in a Mermaid chart, reduced to a small character set;
- :func:`code_span`: the inside of a Markdown code span;
- :func:`check_name`, :func:`check_title`, :func:`status_description`: plain-text fields of
  the Checks and Statuses APIs, bounded to what GitHub accepts;
- :func:`plain_text`: HTML (which Jinja autoescapes) and the terminal (which rich escapes);
- :func:`xml_text`: an attribute or text of an XML 1.0 file (JUnit XML), which ElementTree escapes.

Each first strips control and format characters (Unicode categories Cc, Cf, and lone
surrogates): bidi overrides and isolates that reorder what a reviewer sees, zero-width
characters that hide text or split words, and terminal escape sequences. Then it folds the
text onto one line and bounds its length, so one field cannot crowd out the verdict.

In Markdown, GitHub turns text into links and notifications in two places: while parsing
(``www.``, ``http://``, e-mail addresses) and afterwards, on the decoded text (@mentions,
``#123``, ``GH-123``, ``owner/repo#123``, ``owner/repo@sha``, and e-mail addresses again).
An entity such as ``&#58;`` only defeats the first, since the second sees the decoded
character. So the patterns are broken by a zero-width space written as the entity
``&#x200B;``: the Markdown source holds no format character (the input's were stripped),
and the decoded text holds a character no pattern matches across. The entity is written in
hex so that the source never shows ``#`` followed by a digit.
"""

from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "…"

# Bounds in characters (code points), each chosen for what a reader needs from the field.
ENDPOINT_CHARS = 200
"""Endpoint names and budget globs: a method and a path with a few parameters fit."""
NAME_CHARS = 100
"""Profile, branch and side names, who accepted a baseline, environment fields, check names."""
TEXT_CHARS = 500
"""Reasons, notes, messages and the headline: perfgate's own sentences quote up to three endpoint
names and join several sub-reasons; a person's reason for a baseline is a sentence or two."""
MERMAID_CHARS = 80
"""A chart title: longer ones are cut by the renderer anyway."""
CODE_CHARS = 200
"""A file name or a command in a code span."""
CHECK_NAME_CHARS = 100
"""GitHub documents no limit for a check run's name; branch rules list it, so it stays short."""
CHECK_TITLE_CHARS = 250
"""GitHub documents no limit for a check run's title (its summary: 65,535); it is one line in the UI."""
STATUS_DESCRIPTION_CHARS = 140
"""GitHub refuses a longer commit-status description ("maximum is 140 characters")."""
STATUS_CONTEXT_CHARS = 100
"""A commit status's context is its name in branch rules, like a check's name."""

_INVISIBLE = frozenset(("Cc", "Cf", "Cs"))
# Backslash escapes for what has meaning inside a line of GitHub Markdown ("$" starts math; it
# becomes an entity below, since GitHub looks for math delimiters in the source).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_BREAK = "&#x200B;"
"""A zero-width space as an entity: GitHub decodes it, and no link or reference pattern spans it."""
_SCHEME = re.compile(r":(?=//)")
_WWW = re.compile(r"(?i)(www)(?=\.)")
_REFERENCE = re.compile(r"(?i)(#|\bGH-)(?=\d)")
_BLOCK_START = re.compile(r"^(?:[#+=-]|\d{1,9}(?=[.)]))")
_MERMAID_UNSAFE = re.compile(r"[^\w ./:()-]")


def strip_invisible(text: object) -> str:
    """``text`` without control and format characters; tabs and line breaks become spaces."""
    value = str(text)
    return "".join(" " if c in "\t\n\r\v\f" else c for c in value
                   if c in "\t\n\r\v\f" or unicodedata.category(c) not in _INVISIBLE)


def bound(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """At most ``limit`` characters; a cut text ends with an ellipsis, so a reader knows it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ellipsis), 0)].rstrip() + ellipsis


def plain_text(text: object, limit: int = TEXT_CHARS) -> str:
    """One line of visible text, bounded: for HTML (autoescaped by Jinja) and the terminal (escaped by rich)."""
    return bound(" ".join(strip_invisible(text).split()), limit)


_XML_NONCHARACTERS = frozenset("\ufffe\uffff")


def xml_text(text: object, limit: int = TEXT_CHARS) -> str:
    """:func:`plain_text` without the two noncharacters XML 1.0 also forbids (U+FFFE, U+FFFF): what is left
    is legal in any XML 1.0 document once ElementTree has escaped ``<``, ``&`` and quotes."""
    return "".join(c for c in plain_text(text, limit) if c not in _XML_NONCHARACTERS)


def markdown_inline(text: object, limit: int = TEXT_CHARS) -> str:
    """Safe as a table cell or inside a line of GitHub Markdown: no markup, HTML, link, reference or mention."""
    value = plain_text(text, limit)  # bound first: the limit counts what a reader sees, not the escapes
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("$", "&#x24;")
    value = _MARKDOWN_SPECIAL.sub(r"\\\1", value)
    value = _SCHEME.sub(":" + _BREAK, value)
    value = _WWW.sub(r"\1" + _BREAK, value)
    value = _REFERENCE.sub(r"\1" + _BREAK, value)
    return value.replace("@", "@" + _BREAK)


def markdown_line(text: object, limit: int = TEXT_CHARS) -> str:
    """:func:`markdown_inline`, safe at the start of a line (or after ``> `` or ``- ``) too.

    A leading ``#``, ``-``, ``+``, ``=`` or ``1.`` would make a heading, a list, a setext
    underline or a numbered list; a backslash keeps it a character. The other block starts
    (``*``, ``_``, a backtick, ``~``, ``|``, ``>``, ``<``) are already escaped inline.
    """
    value = markdown_inline(text, limit)
    match = _BLOCK_START.match(value)
    if match is None:
        return value
    if match.group().isdigit():
        return value[: match.end()] + "\\" + value[match.end():]
    return "\\" + value


def mermaid_text(text: object, limit: int = MERMAID_CHARS) -> str:
    """A quoted Mermaid string: letters, digits, spaces and ``. _ / : - ( )`` only.

    Mermaid has its own directives (``%%{init}%%``), HTML labels and quoting; what it cannot
    misread is a small character set. Anything else becomes a space; ``://`` is split so that
    no address survives either.
    """
    value = _MERMAID_UNSAFE.sub(" ", strip_invisible(text)).replace("://", ": //")
    return bound(" ".join(value.split()), limit, "...")  # "…" is outside the set


def code_span(text: object, limit: int = CODE_CHARS) -> str:
    """The inside of a Markdown code span (where GitHub links and mentions nothing): no backtick, one line.

    Not for a table cell: a table splits its cells at ``|`` before it sees code spans.
    """
    return plain_text(text, limit).replace("`", "'")


def check_name(text: object) -> str:
    """A check run's name (plain text in GitHub's UI and in branch rules), bounded."""
    return plain_text(text, CHECK_NAME_CHARS) or "perfgate"


def check_title(text: object) -> str:
    """A check run's title (plain text, one line), bounded."""
    return plain_text(text, CHECK_TITLE_CHARS)


def status_description(text: object) -> str:
    """A commit status's description (plain text), within GitHub's 140 characters."""
    return plain_text(text, STATUS_DESCRIPTION_CHARS)


def status_context(text: object) -> str:
    """A commit status's context (its name in branch rules), bounded."""
    return plain_text(text, STATUS_CONTEXT_CHARS) or "perfgate"
