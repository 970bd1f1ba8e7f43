"""Post a verdict file to its pull request (``perfgate github``, ``perfgate comment``) or merge request
(``perfgate gitlab``): read and verify it, render its Markdown, post it, and say what happened.

A verdict file may come from an artifact of the pull request's own workflow: untrusted. One whose parts
disagree is never posted as it is: its comment and check are replaced by a refusal, and the refusal is raised
(:class:`~perfgate.decide.verify.VerdictRefusedError`, whose ``problems`` the command shows). What the user
is told comes back as :class:`Told` lines for the command to print; nothing here prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from perfgate.config import LoadedConfig
from perfgate.decide.verdict import exit_code
from perfgate.decide.verify import VerdictRefusedError
from perfgate.publish.github import (
    UNVERIFIED_NOTICE,
    CheckKind,
    CheckState,
    CommentMode,
    CommentState,
    client_from_environment,
    load_verdict,
    post_verdict,
    pull_request_from_event,
    refusal_markdown,
    refused_check,
    with_unverified_notice,
    workflow_run_url,
)
from perfgate.publish.github_actions import write_step_summary
from perfgate.reports.markdown import MAX_COMMENT_CHARS, CommentLinks, marker, render_markdown


@dataclass(frozen=True)
class Told:
    """One line for the user: ``error`` lines go to stderr."""

    text: str
    error: bool = False


@dataclass(frozen=True)
class Posted:
    """The exit code the command ends with, and what to tell the user."""

    exit_code: int
    told: list[Told] = field(default_factory=list)


@dataclass(frozen=True)
class PullRequestPost:
    """Where and how ``perfgate github`` and ``perfgate comment`` post."""

    repo: str | None
    """``owner/name`` (default: from the environment)."""
    number: int | None
    """The pull request (default: from the event)."""
    author: str
    """The login whose comment is the sticky one."""
    mode: CommentMode
    check: CheckKind
    report_id: str | None
    """Added to the comment's marker (default: the config's ``[report] id``)."""
    require_head: bool
    """The verdict must be about the pull request's current head (``perfgate comment``: an artifact)."""
    links: CommentLinks
    head_sha: str | None = None
    comment: bool = True


def post_to_pull_request(verdict_path: Path, loaded: LoadedConfig, how: PullRequestPost) -> Posted:
    """Post the verdict of ``verdict_path``; ends with the verdict's exit code (0 for a stale head)."""
    settings = loaded.config.report
    marker_id = how.report_id or settings.id
    target = pull_request_from_event(os.environ, how.repo, how.number, how.head_sha)
    client = client_from_environment(os.environ)
    try:
        verdict = load_verdict(verdict_path)
    except VerdictRefusedError as refused:
        text = marker(refused.verdict.profile, marker_id)
        post_verdict(client, target, refused.verdict, refusal_markdown(text), text,
                     exit_code=int(refused.exit_code), author=how.author, mode=CommentMode.ALWAYS,
                     check=how.check, require_head=how.require_head, comment=how.comment,
                     details_url=workflow_run_url(os.environ), outcome=refused_check())
        raise
    if target.from_fork:
        room = MAX_COMMENT_CHARS - 2 * len(UNVERIFIED_NOTICE) - 4
        markdown = with_unverified_notice(render_markdown(verdict, marker_id=marker_id, links=how.links,
                                                          full_report=settings.full_report, limit=room))
    else:
        markdown = render_markdown(verdict, marker_id=marker_id, full_report=settings.full_report, links=how.links)
    code = int(exit_code(verdict, strict=loaded.config.compare.strict))
    result = post_verdict(client, target, verdict, markdown, marker(verdict.profile, marker_id), exit_code=code,
                          author=how.author, mode=how.mode, check=how.check, require_head=how.require_head,
                          comment=how.comment, details_url=workflow_run_url(os.environ))
    if result.comment is CommentState.STALE:
        return Posted(0, [Told(f"perfgate: notice: {result.message}", error=True)])
    told = []
    if result.comment is CommentState.FORBIDDEN or result.check is CheckState.FORBIDDEN:
        write_step_summary(markdown, once=True)
        told.append(Told(f"perfgate: warning: {result.message}; the verdict is in the job summary", error=True))
    if result.comment not in (CommentState.FORBIDDEN, CommentState.OFF):
        url = f": {result.comment_url}" if result.comment_url else ""
        told.append(Told(f"comment {result.comment.value} on {target.repository}#{target.number}{url}"))
    if result.check is not CheckState.NONE:
        told.append(Told(f"{how.check.value} {result.check.value}"))
    return Posted(code, told)


def post_to_merge_request(verdict_path: Path, loaded: LoadedConfig, *, iid: int | None, project: str | None,
                          api_url: str | None, report_id: str | None) -> Posted:
    """Post the verdict of ``verdict_path`` as the merge request's sticky note; ends with the verdict's exit code."""
    from perfgate.publish.gitlab import (
        MAX_NOTE_CHARS,
        GitLabClient,
        post_note,
        target_from_environment,
        token_from_environment,
    )

    marker_id = report_id or loaded.config.report.id
    target = target_from_environment(os.environ, api_url=api_url, project=project, iid=iid)
    client = GitLabClient(target.api_url, token_from_environment(os.environ))
    try:
        verdict = load_verdict(verdict_path)
    except VerdictRefusedError as refused:  # never posted as it is: the note says it was refused
        text = marker(refused.verdict.profile, marker_id)
        post_note(client, target, refusal_markdown(text), text)
        raise
    markdown = render_markdown(verdict, marker_id=marker_id, full_report=loaded.config.report.full_report,
                               limit=MAX_NOTE_CHARS)
    result = post_note(client, target, markdown, marker(verdict.profile, marker_id))
    return Posted(int(exit_code(verdict, strict=loaded.config.compare.strict)),
                  [Told(f"note {result.state} on {target} (note {result.note_id})")])
