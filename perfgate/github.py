"""GitHub: one sticky verdict comment per profile on a pull request, and a check the branch rules can require.

The comment is found by its hidden marker among the comments of the expected author
(the Actions bot by default), through every page of comments, and edited in place.
The verdict posted is always re-rendered here from a verdict JSON file validated
against the verdict model: a file from an artifact is untrusted data, and nothing of
it reaches the comment except through the escaping of the Markdown renderer.

Base URL from ``GITHUB_API_URL``, token from ``GITHUB_TOKEN`` (never printed, never
on a command line). A token that cannot write (pull requests from forks get a
read-only one) does not fail the gate: the result says so and how to enable comments.
Server errors and rate limits are retried a bounded number of times.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError

from perfgate import textsafety
from perfgate.errors import ConfigError, GitHubError
from perfgate.verdict import Outcome, Verdict

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_AUTHOR = "github-actions[bot]"
MAX_VERDICT_BYTES = 5_000_000
RETRIES = 3
MAX_RATE_LIMIT_WAIT_S = 120.0
"""A rate limit that resets later than this is reported rather than waited for (resets can be an hour away)."""
ENABLE_HINT = ("the token cannot write to this pull request (pull requests from forks get a read-only token); "
               "post from a separate `workflow_run` workflow with `permissions: pull-requests: write` "
               "(see the README, \"GitHub Action\"), or give this job `pull-requests: write`")


class CommentMode(StrEnum):
    ALWAYS = "always"
    """Create or update the comment on every run."""
    ON_CHANGE = "on-change"
    """Create a comment only for a verdict other than UNCHANGED; a comment that exists is always kept current."""


class CheckKind(StrEnum):
    NONE = "none"
    CHECK_RUN = "check-run"
    STATUS = "status"


@dataclass(frozen=True)
class PullRequestRef:
    repository: str
    """``owner/name``."""
    number: int
    head_sha: str | None = None
    """The head the event was about (``None``: take the pull request's current head)."""


@dataclass(frozen=True)
class PostResult:
    comment: str
    """``created``, ``updated``, ``unchanged``, ``skipped`` (on-change, nothing to say), ``off``, ``forbidden``
    or ``stale`` (the pull request has moved on: nothing posted)."""
    comment_url: str | None = None
    check: str = "none"
    """``created``, ``forbidden`` or ``none``."""
    message: str = ""


def load_verdict(path: Path) -> Verdict:
    """A verdict JSON file (perhaps from an artifact: untrusted), validated against the model."""
    try:
        size = path.stat().st_size
        if size > MAX_VERDICT_BYTES:
            raise ConfigError(f"{path}: {size} bytes is too large for a verdict; pass the verdict JSON "
                              "written by perfgate compare or ab")
        return Verdict.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the verdict ({exc.strerror or exc}); check --verdict") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ConfigError(f"{path}: not a perfgate verdict ({where}: {first['msg']}); pass the JSON that "
                          "perfgate compare or ab wrote") from None


def pull_request_from_event(environ: Mapping[str, str], repository: str | None = None,
                            number: int | None = None, head_sha: str | None = None) -> PullRequestRef:
    """The pull request and head of the running workflow's event; flags given explicitly win.

    ``pull_request`` events carry both; ``workflow_run`` events carry the head the run was for and
    the run's pull requests (an empty list for a fork: pass ``--pr``; the head is then what proves
    that the number names the right pull request).
    """
    repository = repository or environ.get("GITHUB_REPOSITORY")
    event_path = environ.get("GITHUB_EVENT_PATH")
    event_number, event_sha = None, None
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"GITHUB_EVENT_PATH={event_path}: cannot read the event ({exc})") from None
        if isinstance(event.get("pull_request"), dict):
            event_number = event["pull_request"].get("number")
            event_sha = (event["pull_request"].get("head") or {}).get("sha")
        elif isinstance(event.get("workflow_run"), dict):
            run = event["workflow_run"]
            pulls = run.get("pull_requests") or []
            if pulls:
                event_number = pulls[0].get("number")
            event_sha = run.get("head_sha")
    if number is not None and event_number is not None and number != event_number:
        raise ConfigError(f"--pr {number} is not the pull request #{event_number} of this workflow's event; "
                          "check where the number comes from")
    number = number if number is not None else event_number
    head_sha = head_sha or event_sha
    if not repository or "/" not in repository:
        raise ConfigError("no repository: pass --repo OWNER/NAME (GITHUB_REPOSITORY is set in GitHub Actions)")
    if not isinstance(number, int) or number <= 0:
        raise ConfigError("no pull request: pass --pr NUMBER, or run on a pull_request or workflow_run event")
    return PullRequestRef(repository=repository, number=number, head_sha=head_sha)


def client_from_environment(environ: Mapping[str, str]):  # noqa: ANN201 - github.Github, imported lazily
    """PyGithub against ``GITHUB_API_URL`` with ``GITHUB_TOKEN``, retrying server errors and rate limits."""
    import github

    token = environ.get("GITHUB_TOKEN")
    if not token:
        raise ConfigError("GITHUB_TOKEN is not set; in a workflow pass `env: GITHUB_TOKEN: ${{ github.token }}`")
    # Server errors and rate limits (GithubRetry adds 403 rate limits itself) are retried, edits included.
    # A create retried after a 5xx the server had in fact carried out can leave a second comment; the
    # sticky search takes the newest, so later runs still keep one comment current.
    retry = github.GithubRetry(total=RETRIES, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504],
                               allowed_methods={"GET", "HEAD", "POST", "PATCH"},
                               max_rate_limit_wait=MAX_RATE_LIMIT_WAIT_S)
    # PyGithub paces requests (0.25 s) and writes (1 s) as GitHub asks; PERFGATE_GITHUB_PACING=0 turns that
    # off for a server without GitHub's secondary rate limits (a test double, some GitHub Enterprise setups).
    pacing = environ.get("PERFGATE_GITHUB_PACING", "1") != "0"
    return github.Github(base_url=environ.get("GITHUB_API_URL") or DEFAULT_API_URL, auth=github.Auth.Token(token),
                         retry=retry, timeout=30, per_page=100,
                         seconds_between_requests=0.25 if pacing else 0, seconds_between_writes=1.0 if pacing else 0)


def _forbidden(exc: Exception) -> bool:
    import github

    return isinstance(exc, github.GithubException) and exc.status == 403 and \
        not isinstance(exc, github.RateLimitExceededException)


def _describe(exc: Exception) -> str:
    import github
    import requests

    if isinstance(exc, requests.exceptions.RetryError):  # what urllib3 raises when the retries are used up
        return f"GitHub still failed after {RETRIES} retries ({exc.__class__.__name__}: server errors or rate limit)"
    if isinstance(exc, github.RateLimitExceededException):  # includes a reset beyond MAX_RATE_LIMIT_WAIT_S
        return "rate limited by GitHub"
    if isinstance(exc, github.GithubException):
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        return f"GitHub answered {exc.status}" + (f" ({message})" if message else "")
    return f"cannot reach GitHub ({exc.__class__.__name__})"


def workflow_run_url(environ: Mapping[str, str]) -> str | None:
    """The running workflow's page (where an ``action_required`` check sends its reader), when known."""
    server, repository, run_id = (environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repository and run_id and run_id.isdigit() and server.startswith("https://")):
        return None
    return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"


def find_comment(pull, marker: str, author: str):  # noqa: ANN001, ANN201 - PyGithub objects
    """The newest comment by ``author`` carrying ``marker``, through every page; ``None`` if there is none."""
    found = None
    for comment in pull.get_issue_comments():
        if comment.user is not None and comment.user.login == author and marker in (comment.body or ""):
            found = comment
    return found


def conclusion(verdict: Verdict, exit_code: int) -> tuple[str, str]:
    """(check-run conclusion, commit-status state) for a verdict and its exit code.

    A required check passes on ``success``, ``neutral`` and ``skipped`` only, so nothing the gate could
    not decide may map to them: a regression, a broken head or a failed budget is ``failure``; an invalid
    comparison (and an inconclusive one under ``strict``) is ``action_required`` — someone must re-run
    or fix the setup — and a commit status ``error``. Only INCONCLUSIVE without ``strict`` is neutral.
    """
    if exit_code == 0:
        if verdict.outcome is Outcome.INCONCLUSIVE:
            return "neutral", "success"
        if verdict.outcome in (Outcome.UNCHANGED, Outcome.IMPROVED):
            return "success", "success"
        return "failure", "failure"  # exit 0 for any other outcome is a contradiction: fail closed
    if exit_code == 3:
        return "action_required", "error"
    return "failure", "failure"


def post_verdict(client, target: PullRequestRef, verdict: Verdict, markdown: str, marker: str, *,  # noqa: ANN001
                 exit_code: int, author: str = DEFAULT_AUTHOR, mode: CommentMode = CommentMode.ALWAYS,
                 check: CheckKind = CheckKind.NONE, check_name: str | None = None,
                 require_head: bool = False, comment: bool = True, details_url: str | None = None) -> PostResult:
    """Create or update the sticky comment (and a check) for ``verdict`` on the pull request.

    ``require_head``: the verdict must be about the pull request's current head (a verdict of an older
    push is not posted). Raises :class:`GitHubError` for what retries could not fix; a 403 is a result.
    """
    import github

    try:
        repo = client.get_repo(target.repository)
        pull = repo.get_pull(target.number)
        head_sha = pull.head.sha
        measured = verdict.head.commit
        # A newer push is not an error: its own run will post. Nothing is written for an older head.
        if require_head and target.head_sha and head_sha != target.head_sha:
            return PostResult(comment="stale", message=f"pull request #{target.number} is at {head_sha[:10]}, not at "
                              f"the {target.head_sha[:10]} this workflow ran for: not posting; a newer run will post")
        if require_head and measured != head_sha:
            return PostResult(comment="stale", message=f"the verdict is about {str(measured)[:10]}, but pull request "
                              f"#{target.number} is now at {head_sha[:10]}: not posting a stale verdict; a newer run "
                              "will post")
        existing = find_comment(pull, marker, author)
    except (github.GithubException, OSError) as exc:
        if _forbidden(exc):
            return PostResult(comment="forbidden", message=ENABLE_HINT)
        raise GitHubError(f"cannot read pull request #{target.number} of {target.repository}: "
                          f"{_describe(exc)}") from None

    state, url, message = "skipped", None, ""
    try:
        if not comment:
            state = "off"
        elif existing is not None:
            if existing.body == markdown:
                state, url = "unchanged", existing.html_url
            else:
                existing.edit(markdown)
                state, url = "updated", existing.html_url
        elif mode is CommentMode.ALWAYS or verdict.outcome is not Outcome.UNCHANGED:
            created = pull.create_issue_comment(markdown)
            state, url = "created", created.html_url
    except (github.GithubException, OSError) as exc:
        if not _forbidden(exc):
            raise GitHubError(f"cannot write the comment on #{target.number}: {_describe(exc)}") from None
        state, message = "forbidden", ENABLE_HINT

    check_result = "none"
    if check is not CheckKind.NONE:
        # Plain-text fields of the Checks and Statuses APIs: cleaned of control and format characters, bounded.
        name = textsafety.check_name(check_name or f"perfgate / {verdict.profile}")
        check_conclusion, status_state = conclusion(verdict, exit_code)
        # The check belongs to the commit the workflow ran for, not to whatever the pull request points at now.
        checked = target.head_sha or head_sha
        try:
            if check is CheckKind.CHECK_RUN:
                extra = {"details_url": details_url} if details_url else {}
                repo.create_check_run(name=name, head_sha=checked, status="completed", conclusion=check_conclusion,
                                      output={"title": textsafety.check_title(verdict.headline),
                                              "summary": markdown[:65_000]},
                                      **extra)
            else:
                repo.get_commit(checked).create_status(state=status_state, context=textsafety.status_context(name),
                                                       description=textsafety.status_description(verdict.headline))
            check_result = "created"
        except (github.GithubException, OSError) as exc:
            if not _forbidden(exc):
                raise GitHubError(f"cannot create the {check.value} on {checked[:10]}: {_describe(exc)}") from None
            check_result = "forbidden"
            message = message or (f"the token cannot create a {check.value}; give the job "
                                  f"`{'checks' if check is CheckKind.CHECK_RUN else 'statuses'}: write`")
    return PostResult(comment=state, comment_url=url, check=check_result, message=message)

