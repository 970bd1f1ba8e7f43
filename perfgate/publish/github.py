"""GitHub: one sticky verdict comment per profile on a pull request, and a check the branch rules can require.

The comment is found by its hidden marker among the comments of the expected author
(the Actions bot by default), through every page of comments, and edited in place.
The verdict posted is always re-rendered here from a verdict JSON file validated
against the verdict model: a file from an artifact is untrusted data, and nothing of
it reaches the comment except through the escaping of the Markdown renderer. Every
summary in it (the verdict word, each endpoint's and test's outcome, budgets, checks,
the headline) is re-derived from its parts by :func:`perfgate.decide.verify.verify`; a file
whose parts disagree is refused, and its check fails. A head from another repository
(a fork) measured itself in its own pull request: its verdict is a claim, posted with
a "not verified" line and a check that is at best ``neutral``.

Base URL from ``GITHUB_API_URL``, token from ``GITHUB_TOKEN`` (never printed, never
on a command line). A token that cannot write (pull requests from forks get a
read-only one) does not fail the gate: the result says so and how to enable comments.
Server errors and rate limits are retried a bounded number of times.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import ValidationError

from perfgate import textsafety
from perfgate.decide.verdict import SCHEMA_VERSION, Outcome, Verdict
from perfgate.errors import GitHubError, UsageError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_AUTHOR = "github-actions[bot]"
MAX_VERDICT_BYTES = 5_000_000
RETRIES = 3
MAX_RATE_LIMIT_WAIT_S = 120.0
"""A rate limit that resets later than this is reported rather than waited for (resets can be an hour away)."""
ENABLE_HINT = ("the token cannot write to this pull request (pull requests from forks get a read-only token); "
               "post from a separate `workflow_run` workflow with `permissions: pull-requests: write` "
               "(see the README, \"GitHub Action\"), or give this job `pull-requests: write`")
UNVERIFIED_TITLE = "not verified: measured by the pull request's own workflow"
UNVERIFIED_NOTICE = ("> ⚠️ **Not verified: measured by the pull request's own workflow.** The head comes from "
                     "another repository (a fork), whose pull request controls the config, the locustfile and "
                     "the service it measured: these numbers are its claims. A maintainer can measure it with "
                     "`perfgate ab` in a trusted job.")
REFUSED_TITLE = "verdict refused: its parts disagree (edited or corrupt)"


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
    from_fork: bool = False
    """The event's head comes from another repository than the base (or from a deleted one): the pull
    request ran its own measurement, so its verdict is not verified."""


@dataclass(frozen=True)
class CheckOutcome:
    """What a check run (or commit status) says."""

    conclusion: str
    """Check-run conclusion: ``success``, ``neutral``, ``action_required`` or ``failure``."""
    state: str
    """Commit-status state: ``success``, ``error`` or ``failure``."""
    title: str


class CommentState(StrEnum):
    """What became of the sticky comment."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    """The comment already said exactly this."""
    SKIPPED = "skipped"
    """On-change mode with nothing to say: no comment made."""
    OFF = "off"
    """Asked not to comment (``--no-comment``)."""
    FORBIDDEN = "forbidden"
    """The token may not write comments: told, not an error."""
    STALE = "stale"
    """The pull request has moved on to another head: nothing posted."""


class CheckState(StrEnum):
    """What became of the check run or commit status."""

    CREATED = "created"
    FORBIDDEN = "forbidden"
    NONE = "none"
    """None was asked for."""


@dataclass(frozen=True)
class PostResult:
    comment: CommentState
    comment_url: str | None = None
    check: CheckState = CheckState.NONE
    message: str = ""


def load_verdict(path: Path) -> Verdict:
    """A verdict JSON file (perhaps from an artifact: untrusted), validated against the model and re-derived.

    Raises :class:`VerdictRefusedError` when its parts disagree: a summary field (the verdict word, an
    endpoint's or a test's outcome, a budget's or check's ``passed``, the headline) is never taken at its word.
    """
    from perfgate.decide.verify import VerdictRefusedError, describe_problems, verify

    try:
        size = path.stat().st_size
        if size > MAX_VERDICT_BYTES:
            raise UsageError(f"{path}: {size} bytes is too large for a verdict; pass the verdict JSON "
                              "written by perfgate compare or ab")
        verdict = Verdict.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the verdict ({exc.strerror or exc}); check --verdict") from None
    except ValidationError as exc:
        newer = next((e["input"] for e in exc.errors() if e["loc"] == ("schema_version",)
                      and e["type"] == "less_than_equal"), None)
        if newer is not None:
            raise UsageError(f"{path}: verdict schema_version {newer} is newer than this perfgate reads "
                              f"({SCHEMA_VERSION}); post it with the perfgate version that wrote it") from None
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise UsageError(f"{path}: not a perfgate verdict ({where}: {first['msg']}); pass the JSON that "
                          "perfgate compare or ab wrote") from None
    problems = verify(verdict)
    if problems:
        raise VerdictRefusedError(f"{path}: the verdict's parts disagree: {describe_problems(problems)}; it was "
                                  "edited or is corrupt: not posting it", verdict, problems)
    return verdict


def refusal_markdown(marker_text: str) -> str:
    """The sticky comment that stands in for a refused verdict: fixed text, nothing from the file."""
    return (f"{marker_text}\n### ⛔ perfgate · verdict refused\n\nThe verdict of this pull request's "
            "performance run was not posted: its parts disagree with each other, so it was edited or is corrupt. "
            "The check fails until a run posts a verdict that holds together; what disagrees is in the log of "
            "the job that posts verdicts.\n")


def with_unverified_notice(markdown: str) -> str:
    """The comment with the "not verified" line right under its marker (the marker stays the first line)."""
    first, _, rest = markdown.partition("\n")
    return f"{first}\n{UNVERIFIED_NOTICE}\n\n{rest}"


_ABSENT = object()


def _full_name(repository: object) -> str | None:
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name.lower() if isinstance(name, str) and 0 < len(name) <= 200 else None


def _is_fork(head_repository: object, base_repository: object) -> bool:
    """Whether the event's head comes from another repository than its base.

    GitHub's payloads always carry both; a hand-made event without them (a local test) says nothing about
    forks. A head repository that is present but unnamed (``null``: a fork deleted since) counts as a fork.
    """
    if head_repository is _ABSENT and base_repository is _ABSENT:
        return False
    head, base = _full_name(head_repository), _full_name(base_repository)
    return head is None or base is None or head != base


def pull_request_from_event(environ: Mapping[str, str], repository: str | None = None,
                            number: int | None = None, head_sha: str | None = None) -> PullRequestRef:
    """The pull request and head of the running workflow's event; flags given explicitly win.

    ``pull_request`` events carry both; ``workflow_run`` events carry the head the run was for and
    the run's pull requests (an empty list for a fork: pass ``--pr``; the head is then what proves
    that the number names the right pull request).
    """
    repository = repository or environ.get("GITHUB_REPOSITORY")
    event_path = environ.get("GITHUB_EVENT_PATH")
    event_number, event_sha, from_fork = None, None, False
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"GITHUB_EVENT_PATH={event_path}: cannot read the event ({exc})") from None
        if not isinstance(event, dict):
            raise UsageError(f"GITHUB_EVENT_PATH={event_path}: the event is not a JSON object")
        if isinstance(event.get("pull_request"), dict):
            pull = event["pull_request"]
            head, base = pull.get("head") or {}, pull.get("base") or {}
            event_number = pull.get("number")
            event_sha = head.get("sha") if isinstance(head, dict) else None
            from_fork = _is_fork(head.get("repo", _ABSENT) if isinstance(head, dict) else None,
                                 base.get("repo", _ABSENT) if isinstance(base, dict) else None)
        elif isinstance(event.get("workflow_run"), dict):
            run = event["workflow_run"]
            pulls = run.get("pull_requests") or []
            if pulls and isinstance(pulls, list) and isinstance(pulls[0], dict):
                event_number = pulls[0].get("number")
            event_sha = run.get("head_sha")
            from_fork = _is_fork(run.get("head_repository", _ABSENT), run.get("repository", _ABSENT))
        if event_sha is not None and not (isinstance(event_sha, str) and re.fullmatch(r"[0-9a-f]{40}", event_sha)):
            raise UsageError(f"GITHUB_EVENT_PATH={event_path}: the event's head is not a commit SHA")
    if number is not None and event_number is not None and number != event_number:
        raise UsageError(f"--pr {number} is not the pull request #{event_number} of this workflow's event; "
                          "check where the number comes from")
    number = number if number is not None else event_number
    head_sha = head_sha or event_sha
    if not repository or "/" not in repository:
        raise UsageError("no repository: pass --repo OWNER/NAME (GITHUB_REPOSITORY is set in GitHub Actions)")
    if not isinstance(number, int) or number <= 0:
        raise UsageError("no pull request: pass --pr NUMBER, or run on a pull_request or workflow_run event")
    return PullRequestRef(repository=repository, number=number, head_sha=head_sha, from_fork=from_fork)


def client_from_environment(environ: Mapping[str, str]):  # noqa: ANN201 - github.Github, imported lazily
    """PyGithub against ``GITHUB_API_URL`` with ``GITHUB_TOKEN``, retrying server errors and rate limits."""
    import github

    token = environ.get("GITHUB_TOKEN")
    if not token:
        raise UsageError("GITHUB_TOKEN is not set; in a workflow pass `env: GITHUB_TOKEN: ${{ github.token }}`")
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


def check_outcome(verdict: Verdict, exit_code: int, *, from_fork: bool = False) -> CheckOutcome:
    """The check for a verdict. A fork's verdict is the pull request's own claim: a passing one is only
    ``neutral`` ("not verified"); a failing one stays failing (a fork that says it is slower is no risk)."""
    from perfgate.reports.content import headline

    check_conclusion, state = conclusion(verdict, exit_code)
    title = headline(verdict)  # as the comment words it ("BUDGETS HOLD (no baseline)", not "UNCHANGED")
    if not from_fork:
        return CheckOutcome(check_conclusion, state, title)
    if check_conclusion in ("success", "neutral"):
        return CheckOutcome("neutral", state, UNVERIFIED_TITLE)
    return CheckOutcome(check_conclusion, state, f"not verified · {title}")


def refused_check() -> CheckOutcome:
    return CheckOutcome("failure", "failure", REFUSED_TITLE)


def post_verdict(client, target: PullRequestRef, verdict: Verdict, markdown: str, marker: str, *,  # noqa: ANN001
                 exit_code: int, author: str = DEFAULT_AUTHOR, mode: CommentMode = CommentMode.ALWAYS,
                 check: CheckKind = CheckKind.NONE, check_name: str | None = None,
                 require_head: bool = False, comment: bool = True, details_url: str | None = None,
                 outcome: CheckOutcome | None = None) -> PostResult:
    """Create or update the sticky comment (and a check) for ``verdict`` on the pull request.

    ``outcome``: the check to create (default: :func:`check_outcome` of the verdict, for ``target``).

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
            return PostResult(
                comment=CommentState.STALE,
                message=f"pull request #{target.number} is at {head_sha[:10]}, not at "
                f"the {target.head_sha[:10]} this workflow ran for: not posting; a newer run will post",
            )
        if require_head and measured != head_sha:
            return PostResult(
                comment=CommentState.STALE,
                message=f"the verdict is about {str(measured)[:10]}, but pull request "
                f"#{target.number} is now at {head_sha[:10]}: not posting a stale verdict; a newer run "
                "will post",
            )
        existing = find_comment(pull, marker, author)
    except (github.GithubException, OSError) as exc:
        if _forbidden(exc):
            return PostResult(comment=CommentState.FORBIDDEN, message=ENABLE_HINT)
        raise GitHubError(f"cannot read pull request #{target.number} of {target.repository}: "
                          f"{_describe(exc)}") from None

    state, url, message = CommentState.SKIPPED, None, ""
    try:
        if not comment:
            state = CommentState.OFF
        elif existing is not None:
            if existing.body == markdown:
                state, url = CommentState.UNCHANGED, existing.html_url
            else:
                existing.edit(markdown)
                state, url = CommentState.UPDATED, existing.html_url
        elif mode is CommentMode.ALWAYS or verdict.outcome is not Outcome.UNCHANGED:
            created = pull.create_issue_comment(markdown)
            state, url = CommentState.CREATED, created.html_url
    except (github.GithubException, OSError) as exc:
        if not _forbidden(exc):
            raise GitHubError(f"cannot write the comment on #{target.number}: {_describe(exc)}") from None
        state, message = CommentState.FORBIDDEN, ENABLE_HINT

    check_result = CheckState.NONE
    if check is not CheckKind.NONE:
        # Plain-text fields of the Checks and Statuses APIs: cleaned of control and format characters, bounded.
        name = textsafety.check_name(check_name or f"perfgate / {verdict.profile}")
        told = outcome or check_outcome(verdict, exit_code, from_fork=target.from_fork)
        check_conclusion, status_state = told.conclusion, told.state
        # The check belongs to the commit the workflow ran for, not to whatever the pull request points at now.
        checked = target.head_sha or head_sha
        try:
            if check is CheckKind.CHECK_RUN:
                extra = {"details_url": details_url} if details_url else {}
                repo.create_check_run(name=name, head_sha=checked, status="completed", conclusion=check_conclusion,
                                      output={"title": textsafety.check_title(told.title),
                                              "summary": markdown[:65_000]},
                                      **extra)
            else:
                repo.get_commit(checked).create_status(state=status_state, context=textsafety.status_context(name),
                                                       description=textsafety.status_description(told.title))
            check_result = CheckState.CREATED
        except (github.GithubException, OSError) as exc:
            if not _forbidden(exc):
                raise GitHubError(f"cannot create the {check.value} on {checked[:10]}: {_describe(exc)}") from None
            check_result = CheckState.FORBIDDEN
            message = message or (f"the token cannot create a {check.value}; give the job "
                                  f"`{'checks' if check is CheckKind.CHECK_RUN else 'statuses'}: write`")
    return PostResult(comment=state, comment_url=url, check=check_result, message=message)

