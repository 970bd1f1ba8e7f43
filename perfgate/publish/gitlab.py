"""GitLab: one sticky verdict note per profile on a merge request.

The note is found by the hidden marker of the Markdown verdict (the same one as the GitHub sticky
comment) among the notes the token's own user wrote, through every page of notes, and edited in
place; without one, a note is created. The verdict posted is re-rendered from a verdict file that
:func:`perfgate.publish.github.load_verdict` validated, exactly as ``perfgate comment`` does.

The API is spoken with the standard library's urllib: base URL from ``CI_API_V4_URL``, project from
``CI_PROJECT_ID``, merge request from ``CI_MERGE_REQUEST_IID``, token from ``PERFGATE_GITLAB_TOKEN``
(``PRIVATE-TOKEN`` header; never printed). Every response is bounded in size and time; rate limits
(429) and server errors (5xx) are retried a bounded number of times with backoff.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from perfgate.errors import ConfigError, GitLabError

TOKEN_VARIABLE = "PERFGATE_GITLAB_TOKEN"
MAX_NOTE_CHARS = 1_000_000
"""GitLab's limit on a note's body."""
MAX_RESPONSE_BYTES = 5_000_000
TIMEOUT_S = 30.0
RETRIES = 3
BACKOFF_S = 1.0
"""First wait before a retry; doubled each time."""
MAX_RETRY_AFTER_S = 60.0
MAX_PAGES = 200
"""Notes read at most: 200 pages of 100."""
TOKEN_HINT = (f"set {TOKEN_VARIABLE} to a project or personal access token with the api scope "
              "(a masked CI/CD variable; CI_JOB_TOKEN cannot write notes)")


@dataclass(frozen=True)
class MergeRequestRef:
    api_url: str
    """``https://gitlab.example.com/api/v4``, without a trailing slash."""
    project: str
    """The project's numeric ID or its ``group/name`` path."""
    iid: int
    """The merge request's number within the project (``!iid``)."""

    @property
    def notes_path(self) -> str:
        return f"/projects/{urllib.parse.quote(self.project, safe='')}/merge_requests/{self.iid}/notes"

    def __str__(self) -> str:
        return f"merge request !{self.iid} of project {self.project}"


class Author(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str


class Note(BaseModel):
    """A merge request note, as GitLab returns it (the fields used here)."""

    model_config = ConfigDict(extra="ignore")
    id: int
    body: str = ""
    author: Author | None = None
    system: bool = False


@dataclass(frozen=True)
class NoteResult:
    state: str
    """``created``, ``updated`` or ``unchanged``."""
    note_id: int


def target_from_environment(environ: Mapping[str, str], *, api_url: str | None = None, project: str | None = None,
                            iid: int | None = None) -> MergeRequestRef:
    """The merge request to post on: flags first, then GitLab CI's predefined variables."""
    api_url = api_url or environ.get("CI_API_V4_URL") or ""
    project = project or environ.get("CI_PROJECT_ID") or ""
    if iid is None:
        text = environ.get("CI_MERGE_REQUEST_IID", "")
        if text:
            if not text.isdigit():
                raise ConfigError(f"CI_MERGE_REQUEST_IID={text[:40]!r} is not a merge request number; pass --mr IID")
            iid = int(text)
    missing = [what for what, value in (("--api-url or CI_API_V4_URL", api_url), ("--project or CI_PROJECT_ID",
                                        project), ("--mr or CI_MERGE_REQUEST_IID", iid)) if not value]
    if missing:
        raise ConfigError(f"no {', no '.join(missing)}: set them (GitLab CI sets them in merge request pipelines, "
                          "`rules: - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"`)")
    parsed = urllib.parse.urlsplit(api_url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc or parsed.query or parsed.fragment:
        raise ConfigError(f"the GitLab API URL {api_url[:200]!r} is not an http(s) URL such as "
                          "https://gitlab.com/api/v4; check --api-url or CI_API_V4_URL")
    if len(project) > 500 or not project.strip("/") or any(c in project for c in "\r\n\t "):
        raise ConfigError(f"the project {project[:80]!r} is not a project ID or path; check --project or CI_PROJECT_ID")
    assert iid is not None
    if iid <= 0:
        raise ConfigError(f"--mr {iid}: a merge request number is positive")
    return MergeRequestRef(api_url=api_url.rstrip("/"), project=project.strip("/"), iid=iid)


def token_from_environment(environ: Mapping[str, str]) -> str:
    token = environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise ConfigError(f"{TOKEN_VARIABLE} is not set: {TOKEN_HINT}")
    if any(ord(c) < 33 or ord(c) > 126 for c in token) or len(token) > 1000:
        raise ConfigError(f"{TOKEN_VARIABLE} is not a token (it holds spaces or other characters no token has)")
    return token


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would send the PRIVATE-TOKEN header on to wherever a redirect points: a redirect is an error."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class GitLabClient:
    """The few REST calls the sticky note needs, with bounded responses, timeouts and retries."""

    def __init__(self, api_url: str, token: str, *, backoff_s: float = BACKOFF_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._api_url = api_url.rstrip("/")
        self._token = token
        self._backoff_s = backoff_s
        self._sleep = sleep

    def request(self, method: str, path: str, *, query: Mapping[str, str | int] | None = None,
                body: Mapping[str, str] | None = None) -> tuple[object, Mapping[str, str]]:
        """The JSON answer and headers of one call; :class:`GitLabError` for what retries could not fix."""
        url = self._api_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        wait = self._backoff_s
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(url, data=data, method=method, headers={
                "PRIVATE-TOKEN": self._token, "Accept": "application/json", "User-Agent": "perfgate",
                **({"Content-Type": "application/json"} if data is not None else {})})
            try:
                with _OPENER.open(request, timeout=TIMEOUT_S) as response:
                    raw = response.read(MAX_RESPONSE_BYTES + 1)
                    headers = {k.lower(): v for k, v in response.headers.items()}
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
                exc.close()
                if status in (401, 403, 404):
                    raise GitLabError(_refusal(status, method)) from None
                if 300 <= status < 400:
                    raise GitLabError(f"GitLab answered {method} {_public(path)} with a redirect ({status}), not "
                                      "followed (the token would go with it); set CI_API_V4_URL or --api-url to "
                                      "the API's own URL, e.g. https://gitlab.example.com/api/v4") from None
                if (status == 429 or status >= 500) and attempt < RETRIES:
                    self._sleep(_retry_wait(retry_after, wait))
                    wait *= 2
                    continue
                what = "rate limit (429)" if status == 429 else f"HTTP {status}"
                raise GitLabError(f"GitLab answered {method} {_public(path)} with {what}"
                                  + (f" after {RETRIES} retries" if status == 429 or status >= 500 else "")) from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if attempt < RETRIES:
                    self._sleep(wait)
                    wait *= 2
                    continue
                raise GitLabError(f"cannot reach GitLab at {self._api_url} ({str(reason)[:200]}) after {RETRIES} "
                                  "retries; check CI_API_V4_URL or --api-url") from None
            if len(raw) > MAX_RESPONSE_BYTES:
                raise GitLabError(f"GitLab's answer to {method} {_public(path)} is over {MAX_RESPONSE_BYTES} bytes: "
                                  "not reading it")
            try:
                return (json.loads(raw) if raw.strip() else None), headers
            except ValueError:
                raise GitLabError(f"GitLab's answer to {method} {_public(path)} is not JSON") from None
        raise AssertionError("unreachable")  # pragma: no cover


def _public(path: str) -> str:
    return path[:200]


def _retry_wait(retry_after: str, default: float) -> float:
    if retry_after.strip().isdigit():
        return min(float(retry_after.strip()), MAX_RETRY_AFTER_S)
    return default


def _refusal(status: int, method: str) -> str:
    if status == 401:
        return f"GitLab refused the token (401 Unauthorized): it is wrong, expired or revoked; {TOKEN_HINT}"
    if status == 403:
        return (f"GitLab forbids this token to {'read' if method == 'GET' else 'write'} the merge request's notes "
                f"(403 Forbidden); {TOKEN_HINT}, of a user who may comment on the project")
    return ("GitLab finds no such project or merge request (404 Not Found), or the token may not see it; "
            f"check CI_PROJECT_ID / --project and CI_MERGE_REQUEST_IID / --mr, and {TOKEN_HINT}")


def current_username(client: GitLabClient) -> str:
    """The token's own user: only its notes are the sticky one (anyone can write the marker in a note)."""
    data, _ = client.request("GET", "/user")
    try:
        return Author.model_validate(data).username
    except ValidationError:
        raise GitLabError("GitLab's answer to GET /user has no username") from None


def list_notes(client: GitLabClient, target: MergeRequestRef) -> list[Note]:
    """Every note of the merge request, following ``x-next-page``."""
    notes: list[Note] = []
    page = 1
    for _ in range(MAX_PAGES):
        data, headers = client.request("GET", target.notes_path, query={"per_page": 100, "page": page,
                                                                         "sort": "asc", "order_by": "created_at"})
        if not isinstance(data, list):
            raise GitLabError(f"GitLab's notes of {target} are not a list")
        try:
            notes += [Note.model_validate(item) for item in data]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise GitLabError(f"a note of {target} is not GitLab's note JSON "
                              f"({'.'.join(str(p) for p in first['loc'])}: {first['msg']})") from None
        following = headers.get("x-next-page", "").strip()
        if not following:
            return notes
        if not following.isdigit() or int(following) <= page:
            raise GitLabError(f"GitLab's x-next-page header {following[:20]!r} is not a later page")
        page = int(following)
    raise GitLabError(f"{target} has more than {MAX_PAGES * 100} notes: not reading them all")


def find_note(notes: list[Note], marker: str, author: str) -> Note | None:
    """The newest note by ``author`` carrying ``marker`` (no system note)."""
    found = None
    for note in notes:
        if not note.system and note.author is not None and note.author.username == author and marker in note.body:
            found = note
    return found


def post_note(client: GitLabClient, target: MergeRequestRef, markdown: str, marker: str) -> NoteResult:
    """Create or update the sticky note carrying ``marker``.

    A create retried after a 5xx the server had in fact carried out can leave a second note; the newest
    is the sticky one, so later runs still keep one note current.
    """
    if len(markdown) > MAX_NOTE_CHARS:
        raise ConfigError(f"the note is {len(markdown)} characters, over GitLab's {MAX_NOTE_CHARS}")
    author = current_username(client)
    existing = find_note(list_notes(client, target), marker, author)
    if existing is not None:
        if existing.body == markdown:
            return NoteResult("unchanged", existing.id)
        client.request("PUT", f"{target.notes_path}/{existing.id}", body={"body": markdown})
        return NoteResult("updated", existing.id)
    data, _ = client.request("POST", target.notes_path, body={"body": markdown})
    try:
        return NoteResult("created", Note.model_validate(data).id)
    except ValidationError:
        raise GitLabError(f"GitLab's answer to the new note on {target} is not a note") from None
