"""Commands that tell a forge: ``perfgate github`` (from the gate's own job), ``comment`` (from an artifact, in the
privileged job of a fork-safe workflow) and ``gitlab``. The work is :mod:`perfgate.publish.posting`'s; these
print what it tells and exit by the verdict.

They import no statistics, no Locust and no SQLite: the comment job installs only what posting needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perfgate.cli.common import (
    AuthorOption,
    CheckKindOption,
    CheckOption,
    CommentModeOption,
    CommentOption,
    ConfigOption,
    PrOption,
    RepoOption,
    ReportIdOption,
    ReportUrlOption,
    RunUrlOption,
    VerdictFileOption,
    app,
    load,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from perfgate.publish.posting import Posted
    from perfgate.reports.markdown import CommentLinks


def _told(posted: Posted) -> int:
    for line in posted.told:
        (stderr if line.error else stdout).print(line.text, markup=False)
    return posted.exit_code


def _post(verdict: Path, config: Path | None, *, repo: str | None, number: int | None, author: str,
          mode: CommentModeOption, check: CheckOption, report_id: str | None, require_head: bool,
          links: CommentLinks, head_sha: str | None = None, comment: bool = True) -> int:
    from perfgate.decide.verify import VerdictRefusedError, describe_problems
    from perfgate.publish.github import CheckKind, CommentMode
    from perfgate.publish.posting import PullRequestPost, post_to_pull_request

    how = PullRequestPost(repo=repo, number=number, author=author, mode=CommentMode(mode.value),
                          check=CheckKind(check.value), report_id=report_id, require_head=require_head,
                          links=links, head_sha=head_sha, comment=comment)
    try:
        return _told(post_to_pull_request(verdict, load(config), how))
    except VerdictRefusedError as refused:
        stderr.print("perfgate: the verdict's parts disagree:\n  "
                     + describe_problems(refused.problems, most=50, separator="\n  "), markup=False)
        raise


@app.command()
def github(
    verdict: VerdictFileOption,
    repo: RepoOption = None,
    pr: PrOption = None,
    author: AuthorOption = "github-actions[bot]",
    mode: CommentOption = CommentModeOption.always,
    check: CheckKindOption = CheckOption.none,
    report_id: ReportIdOption = None,
    post_comment: Annotated[bool, typer.Option("--comment/--no-comment", help="Post the comment (off: only "
                                               "the check).")] = True,
    run_url: RunUrlOption = None,
    report_url: ReportUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Post the verdict as the pull request's sticky comment from the gate's own job; exit by the verdict."""
    from perfgate.publish.github import workflow_run_url
    from perfgate.reports.markdown import CommentLinks

    links = CommentLinks(run=run_url or workflow_run_url(os.environ), report=report_url or None)
    raise typer.Exit(_post(verdict, config, repo=repo, number=pr, author=author, mode=mode, check=check,
                           report_id=report_id, require_head=False, links=links, comment=post_comment))


@app.command()
def comment(
    verdict: VerdictFileOption,
    repo: RepoOption = None,
    pr: PrOption = None,
    author: AuthorOption = "github-actions[bot]",
    mode: CommentOption = CommentModeOption.always,
    check: CheckKindOption = CheckOption.none,
    report_id: ReportIdOption = None,
    head_sha: Annotated[str | None, typer.Option("--head-sha", help="The head the measuring workflow ran for "
                                                 "(default: from the workflow_run event).")] = None,
    run_url: RunUrlOption = None,
    report_url: ReportUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Post a verdict from an artifact (untrusted) to its pull request, only if it is about the PR's current head.

    This job's own run is not the one that measured: the links come from ``--run-url`` and ``--report-url``.
    """
    from perfgate.reports.markdown import CommentLinks

    _post(verdict, config, repo=repo, number=pr, author=author, mode=mode, check=check, report_id=report_id,
          require_head=True, head_sha=head_sha, links=CommentLinks(run=run_url or None, report=report_url or None))


@app.command()
def gitlab(
    verdict: VerdictFileOption,
    mr: Annotated[int | None, typer.Option("--mr", help="Merge request IID (default: CI_MERGE_REQUEST_IID).")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project ID or path (default: CI_PROJECT_ID).")]
    = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help="GitLab API URL (default: CI_API_V4_URL).")] = None,
    report_id: ReportIdOption = None,
    config: ConfigOption = None,
) -> None:
    """Post the verdict as the merge request's sticky note (token: PERFGATE_GITLAB_TOKEN); exit by the verdict."""
    from perfgate.publish.posting import post_to_merge_request

    raise typer.Exit(_told(post_to_merge_request(verdict, load(config), iid=mr, project=project, api_url=api_url,
                                                 report_id=report_id)))
