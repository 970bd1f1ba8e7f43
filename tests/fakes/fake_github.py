"""A fake of GitHub's REST API on 127.0.0.1, good enough for the real PyGithub client.

Serves one repository (``owner/repo``, matched case-insensitively like GitHub does) and the
pull requests seeded into it; everything else is GitHub's JSON 404. Endpoints::

    GET   /repos/{o}/{r}                              the repository
    GET   /repos/{o}/{r}/pulls/{n}                    a pull request
    GET   /repos/{o}/{r}/issues/{n}                   the issue side of a pull request
    GET   /repos/{o}/{r}/issues/{n}/comments          paginated (per_page, page, Link header)
    POST  /repos/{o}/{r}/issues/{n}/comments          201, authored by ``bot_login``
    GET   /repos/{o}/{r}/issues/comments/{id}         (PyGithub completes objects through ``url``)
    PATCH /repos/{o}/{r}/issues/comments/{id}         200
    GET   /repos/{o}/{r}/commits/{ref}                any 40-hex sha, a seeded head/base ref or a sha prefix
    POST  /repos/{o}/{r}/statuses/{sha}               201
    POST  /repos/{o}/{r}/check-runs                   201
    GET   /users/{login}                              a user (for completing ``comment.user``)

What PyGithub 2.10 relies on (read from its source, not guessed):

* ``Auth.Token`` sends ``Authorization: token <token>``; ``Bearer <token>`` is accepted as well.
* Objects built from a response are *not* complete: reading an attribute missing from the JSON
  makes PyGithub GET the object's ``url``. So every object carries ``url`` and the usual fields.
* ``PaginatedList`` follows ``Link: <abs-url>; rel="next", ...`` split on exactly ``", "`` and
  ``"; "``; it stops when there is no ``next``; ``totalCount`` asks for ``per_page=1`` and reads
  ``page`` of the ``last`` link.
* ``GithubRetry`` retries a 403 only if it has ``Retry-After`` or a rate-limit message (primary:
  message starts with "API rate limit exceeded"; it then sleeps until ``X-RateLimit-Reset`` + 1 s);
  any other 403 is raised at once as ``GithubException``. A 429 is retried only with ``Retry-After``.

Faults from :meth:`FakeGitHub.fail_next` are consumed in order as matching requests arrive (after
the token check) and leave the state untouched. The token is never logged nor echoed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

__all__ = ["FakeGitHub"]

Json = dict[str, Any]

DOCS_URL = "https://docs.github.com/rest"
RATE_LIMIT = 5000
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
MAX_COMMENT_CHARS = 65536
MAX_STATUS_DESCRIPTION = 140
MAX_CHECK_OUTPUT_CHARS = 65535
PRIMARY_RATE_LIMIT_MESSAGE = ("API rate limit exceeded for installation. If you reach out to GitHub Support "
                              "for help, please include the request ID {request_id}.")
SECONDARY_RATE_LIMIT_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before you "
                                "try again. If you reach out to GitHub Support for help, please include the "
                                "request ID {request_id}.")
_FAULT_MESSAGES = {401: "Bad credentials", 403: "Resource not accessible by integration", 404: "Not Found",
                   422: "Validation Failed", 500: "Server Error", 502: "Server Error"}
_STATUS_STATES = frozenset({"error", "failure", "pending", "success"})
_CHECK_STATUSES = frozenset({"queued", "in_progress", "completed", "waiting", "requested", "pending"})
_CHECK_CONCLUSIONS = frozenset({"action_required", "cancelled", "failure", "neutral", "success", "skipped",
                                "stale", "timed_out"})
_SHA = re.compile(r"[0-9a-f]{40}")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


class _Reply(Exception):
    """An answer other than success, raised from deep inside a route."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"message": message, **extra, "documentation_url": DOCS_URL, "status": str(status)}


@dataclass
class _Pull:
    number: int
    head_sha: str
    head_ref: str
    base_ref: str
    state: str
    author: str
    created_at: str


@dataclass
class _Comment:
    id: int
    number: int
    body: str
    login: str
    user_type: str
    created_at: str
    updated_at: str


@dataclass
class _Fault:
    method: str
    path_prefix: str
    status: int
    remaining: int
    rate_limited: bool
    retry_after: int | None


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str]


class FakeGitHub:
    """GitHub's REST API for one repository, in a thread of this process.

    ``with FakeGitHub().start() as gh: gh.add_pull(1, "ab" * 20); Github(base_url=gh.url, ...)``.
    Read-only views (``requests``, ``statuses``, ``check_runs``, ``comments(n)``) are copies.
    """

    def __init__(self, *, token: str = "t0ken", bot_login: str = "github-actions[bot]", owner: str = "acme",
                 repo: str = "shop") -> None:
        self.owner = owner
        self.repo = repo
        self.bot_login = bot_login
        """Author of comments, statuses and check runs created through the API (the token's owner)."""
        self._accepted = {f"token {token}", f"Bearer {token}"}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pulls: dict[int, _Pull] = {}
        self._comments: dict[int, _Comment] = {}
        self._statuses: list[Json] = []
        self._check_runs: list[Json] = []
        self._requests: list[tuple[str, str]] = []
        self._errors: list[str] = []
        self._faults: list[_Fault] = []
        self._user_ids: dict[str, int] = {}
        self._comment_ids = itertools.count(1_000_000_001)
        self._object_ids = itertools.count(5_000_000_001)
        self._minutes = itertools.count(1)
        self._used = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        """Listen on 127.0.0.1 (a free port) in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("FakeGitHub is already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-github", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self if self._server is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``base_url`` for PyGithub (and ``GITHUB_API_URL``)."""
        return f"http://127.0.0.1:{self.port}"

    # -- seeding -----------------------------------------------------------------------------------------------

    def add_pull(self, number: int, head_sha: str, head_ref: str = "feature", base_ref: str = "main", *,
                 state: str = "open", author: str = "octocat") -> None:
        """Seed (or replace) pull request ``number``; ``head_sha`` is 40 lowercase hex digits."""
        if not _SHA.fullmatch(head_sha):
            raise ValueError(f"head_sha must be 40 lowercase hex digits, not {head_sha!r}")
        if state not in ("open", "closed"):
            raise ValueError(f"state must be open or closed, not {state!r}")
        with self._lock:
            self._pulls[number] = _Pull(number, head_sha, head_ref, base_ref, state, author, self._now())

    def add_comment(self, number: int, body: str, login: str, user_type: str = "User") -> int:
        """Seed a comment on pull request ``number`` (which must exist); returns its id."""
        with self._lock:
            if number not in self._pulls:
                raise KeyError(f"no pull request #{number}: add_pull() it first")
            return self._new_comment(number, body, login, user_type).id

    def fail_next(self, method: str, path_prefix: str, status: int, *, times: int = 1, rate_limited: bool = False,
                  retry_after: int | None = None) -> None:
        """Answer the next ``times`` requests of ``method`` (``"*"``: any) whose path starts with ``path_prefix``
        with ``status`` instead (the prefix is compared with the path without query, unless it has a ``?``).

        * 403 (not rate limited): ``Resource not accessible by integration``, as for a read-only token;
          ``X-RateLimit-Remaining`` stays high, so PyGithub does not retry it.
        * ``rate_limited`` without ``retry_after`` (403 or 429): a primary rate limit, ``API rate limit
          exceeded ...``, ``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset`` = now + 1 s.
        * ``rate_limited`` with ``retry_after`` (403 or 429): a secondary rate limit with ``Retry-After``.
        * 5xx: ``{"message": "Server Error"}``. Other statuses: their reason phrase.
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be 4xx or 5xx, not {status}")
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        if rate_limited and status not in (403, 429):
            raise ValueError(f"a rate limit is answered with 403 or 429, not {status}")
        with self._lock:
            self._faults.append(_Fault(method.upper(), path_prefix, status, times, rate_limited, retry_after))

    # -- observation -------------------------------------------------------------------------------------------

    def comments(self, number: int) -> list[Json]:
        """The comments of pull request ``number`` as the API shows them, oldest first."""
        with self._lock:
            return [self._comment_json(c) for c in sorted(self._comments.values(), key=lambda c: c.id)
                    if c.number == number]

    @property
    def statuses(self) -> list[Json]:
        """Commit statuses created, in order: GitHub's answer plus ``sha``."""
        with self._lock:
            return [dict(s) for s in self._statuses]

    @property
    def check_runs(self) -> list[Json]:
        """Check runs created, in order, as GitHub answered them."""
        with self._lock:
            return [dict(c) for c in self._check_runs]

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path?query)`` of every request received, in order (rejected and failed ones too)."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs in this fake (each also answered 500); a test can assert it is empty."""
        with self._lock:
            return list(self._errors)

    @property
    def pending_faults(self) -> int:
        """How many injected failures have not been consumed yet."""
        with self._lock:
            return sum(f.remaining for f in self._faults)

    # -- request handling (called from the server's threads) ---------------------------------------------------

    def _answer(self, method: str, target: str, authorization: str | None, raw_body: bytes) -> _Answer:
        with self._lock:
            self._requests.append((method, target))
            request_id = f"FAKE:{len(self._requests):06X}"
            try:
                if authorization not in self._accepted:
                    raise _Reply(401, "Bad credentials")
                self._used += 1
                split = urlsplit(target)
                path = split.path.rstrip("/") or "/"
                fault = self._take_fault(method, path, target)
                if fault is not None:
                    return self._fault_answer(fault, request_id)
                query = dict(parse_qsl(split.query))
                status, body, headers = self._route(method, path, query, raw_body)
            except _Reply as reply:
                status, body, headers = reply.status, reply.body, {}
            except Exception:  # a bug in this fake: say so loudly, and keep serving
                self._errors.append(traceback.format_exc())
                status, body, headers = 500, {"message": "fake_github: internal error (see FakeGitHub.errors)"}, {}
            return _Answer(status, body, {**self._rate_headers(), "X-GitHub-Request-Id": request_id, **headers})

    def _take_fault(self, method: str, path: str, target: str) -> _Fault | None:
        for fault in self._faults:
            compared = target if "?" in fault.path_prefix else path
            if fault.method in ("*", method) and compared.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_answer(self, fault: _Fault, request_id: str) -> _Answer:
        headers = self._rate_headers()
        if fault.rate_limited and fault.retry_after is None:
            message = PRIMARY_RATE_LIMIT_MESSAGE.format(request_id=request_id)
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Used": str(RATE_LIMIT),
                            "X-RateLimit-Reset": str(int(time.time()) + 1)})
        elif fault.rate_limited:
            message = SECONDARY_RATE_LIMIT_MESSAGE.format(request_id=request_id)
        elif fault.status in _FAULT_MESSAGES:
            message = _FAULT_MESSAGES[fault.status]
        elif fault.status >= 500:
            message = "Server Error"
        else:
            message = HTTPStatus(fault.status).phrase
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        headers["X-GitHub-Request-Id"] = request_id
        body = {"message": message, "documentation_url": DOCS_URL, "status": str(fault.status)}
        return _Answer(fault.status, body, headers)

    def _rate_headers(self) -> dict[str, str]:
        # Remaining never reaches 0 by itself: only an injected rate limit looks exhausted.
        return {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": str(max(RATE_LIMIT - self._used, 1)),
                "X-RateLimit-Used": str(min(self._used, RATE_LIMIT - 1)), "X-RateLimit-Resource": "core",
                "X-RateLimit-Reset": str(int(time.time()) + 3600)}

    def _route(self, method: str, path: str, query: dict[str, str], raw_body: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) == 2 and parts[0] == "users" and method == "GET":
            return 200, self._user_json(parts[1], "Bot" if parts[1].endswith("[bot]") else "User", full=True), {}
        if len(parts) < 3 or parts[0] != "repos" or (parts[1].lower(), parts[2].lower()) != (
                self.owner.lower(), self.repo.lower()):
            raise _Reply(404, "Not Found")
        rest = parts[3:]
        match method, rest:
            case "GET", []:
                return 200, self._repo_json(), {}
            case "GET", ["pulls", number] if number.isdigit():
                return 200, self._pull_json(self._pull(number)), {}
            case "GET", ["issues", number] if number.isdigit():
                return 200, self._issue_json(self._pull(number)), {}
            case "GET", ["issues", number, "comments"] if number.isdigit():
                return self._list_comments(self._pull(number), path, query)
            case "POST", ["issues", number, "comments"] if number.isdigit():
                pull = self._pull(number)
                body = _text_field(_json_body(raw_body), "body")
                if len(body) > MAX_COMMENT_CHARS:
                    raise _validation("IssueComment", "body", f"Body is too long (maximum is {MAX_COMMENT_CHARS} "
                                                              "characters)")
                comment = self._new_comment(pull.number, body, self.bot_login, _user_type(self.bot_login))
                return 201, self._comment_json(comment), {"Location": self._comment_json(comment)["url"]}
            case "GET", ["issues", "comments", comment_id] if comment_id.isdigit():
                return 200, self._comment_json(self._comment(comment_id)), {}
            case "PATCH", ["issues", "comments", comment_id] if comment_id.isdigit():
                comment = self._comment(comment_id)
                body = _text_field(_json_body(raw_body), "body")
                if len(body) > MAX_COMMENT_CHARS:
                    raise _validation("IssueComment", "body", f"Body is too long (maximum is {MAX_COMMENT_CHARS} "
                                                              "characters)")
                comment.body, comment.updated_at = body, self._now()
                return 200, self._comment_json(comment), {}
            case "GET", ["commits", ref]:
                return 200, self._commit_json(self._resolve_sha(ref)), {}
            case "POST", ["statuses", ref]:
                return 201, self._create_status(self._resolve_sha(ref), _json_body(raw_body)), {}
            case "POST", ["check-runs"]:
                return 201, self._create_check_run(_json_body(raw_body)), {}
        raise _Reply(404, "Not Found")

    # -- state helpers (lock held) -----------------------------------------------------------------------------

    def _now(self) -> str:
        """A deterministic clock: one minute after the previous event."""
        return _iso(_EPOCH + timedelta(minutes=next(self._minutes)))

    def _pull(self, number: str | int) -> _Pull:
        pull = self._pulls.get(int(number))
        if pull is None:
            raise _Reply(404, "Not Found")
        return pull

    def _comment(self, comment_id: str) -> _Comment:
        comment = self._comments.get(int(comment_id))
        if comment is None:
            raise _Reply(404, "Not Found")
        return comment

    def _new_comment(self, number: int, body: str, login: str, user_type: str) -> _Comment:
        now = self._now()
        comment = _Comment(next(self._comment_ids), number, body, login, user_type, now, now)
        self._comments[comment.id] = comment
        return comment

    def _resolve_sha(self, ref: str) -> str:
        """A full sha for ``ref``: any 40-hex sha exists; else a seeded ref or a unique prefix of a seeded sha."""
        if _SHA.fullmatch(ref):
            return ref
        known = {s for p in self._pulls.values() for s in (p.head_sha, _fake_sha(p.base_ref))}
        by_ref = {p.head_ref: p.head_sha for p in self._pulls.values()} | {
            p.base_ref: _fake_sha(p.base_ref) for p in self._pulls.values()}
        if ref in by_ref:
            return by_ref[ref]
        matches = {s for s in known if len(ref) >= 4 and s.startswith(ref.lower())}
        if len(matches) == 1:
            return matches.pop()
        raise _Reply(422, f"No commit found for SHA: {ref}")

    def _create_status(self, sha: str, data: Json) -> Json:
        state = data.get("state")
        if state not in _STATUS_STATES:
            raise _validation("Status", "state", f"state is not included in the list ({state!r})")
        for field in ("target_url", "description", "context"):
            if data.get(field) is not None and not isinstance(data[field], str):
                raise _validation("Status", field, f"{field} is not a string")
        description = data.get("description")
        if description is not None and len(description) > MAX_STATUS_DESCRIPTION:
            raise _validation("Status", "description",
                              f"description is too long (maximum is {MAX_STATUS_DESCRIPTION} characters)")
        status_id, now = next(self._object_ids), self._now()
        status = {
            "url": f"{self.url}/repos/{self.owner}/{self.repo}/statuses/{sha}",
            "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
            "id": status_id, "node_id": f"SC_{status_id}", "state": state, "description": description,
            "target_url": data.get("target_url"), "context": data.get("context") or "default",
            "created_at": now, "updated_at": now, "creator": self._user_json(self.bot_login,
                                                                              _user_type(self.bot_login)),
        }
        self._statuses.append({**status, "sha": sha})
        return status

    def _create_check_run(self, data: Json) -> Json:
        name = _text_field(data, "name")
        head_sha = self._resolve_sha(_text_field(data, "head_sha"))
        status, conclusion = data.get("status", "queued"), data.get("conclusion")
        if conclusion is not None:
            if conclusion not in _CHECK_CONCLUSIONS:
                raise _validation("CheckRun", "conclusion", f"conclusion is not included in the list ({conclusion!r})")
            status = "completed"
        if status not in _CHECK_STATUSES:
            raise _validation("CheckRun", "status", f"status is not included in the list ({status!r})")
        if status == "completed" and conclusion is None:
            raise _validation("CheckRun", "conclusion", "conclusion can't be blank when status is completed")
        output = data.get("output")
        if output is not None:
            if not isinstance(output, dict) or not isinstance(output.get("title"), str) or not isinstance(
                    output.get("summary"), str):
                raise _Reply(422, "Invalid request.\n\nFor 'properties/output', \"title\" and \"summary\" are "
                                  "required.")
            for field in ("summary", "text"):
                if isinstance(output.get(field), str) and len(output[field]) > MAX_CHECK_OUTPUT_CHARS:
                    raise _validation("CheckRun", f"output.{field}",
                                      f"{field} is too long (maximum is {MAX_CHECK_OUTPUT_CHARS} characters)")
        run_id, now = next(self._object_ids), self._now()
        base = f"{self.url}/repos/{self.owner}/{self.repo}"
        run = {
            "id": run_id, "node_id": f"CR_{run_id}", "head_sha": head_sha, "external_id": data.get("external_id", ""),
            "url": f"{base}/check-runs/{run_id}",
            "html_url": f"https://github.com/{self.owner}/{self.repo}/runs/{run_id}",
            "details_url": data.get("details_url"), "status": status, "conclusion": conclusion,
            "started_at": data.get("started_at", now),
            "completed_at": data.get("completed_at", now) if status == "completed" else None,
            "output": {"title": (output or {}).get("title"), "summary": (output or {}).get("summary"),
                       "text": (output or {}).get("text"), "annotations_count": 0,
                       "annotations_url": f"{base}/check-runs/{run_id}/annotations"},
            "name": name, "check_suite": {"id": run_id + 1},
            "app": {"id": 15368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=", "name": "GitHub Actions",
                    "owner": self._user_json("github", "Organization"),
                    "html_url": "https://github.com/apps/github-actions",
                    "created_at": "2018-07-30T09:30:17Z", "updated_at": "2024-01-01T00:00:00Z"},
            "pull_requests": [],
        }
        self._check_runs.append(run)
        return json.loads(json.dumps(run))

    def _list_comments(self, pull: _Pull, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        per_page = min(max(_int(query.get("per_page"), DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        page = max(_int(query.get("page"), 1), 1)
        items = [c for c in sorted(self._comments.values(), key=lambda c: c.id) if c.number == pull.number]
        last = max((len(items) + per_page - 1) // per_page, 1)
        body = [self._comment_json(c) for c in items[(page - 1) * per_page: page * per_page]]
        links = []

        def link(to_page: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode({**query, "page": to_page})}>; rel="{rel}"'

        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return 200, body, ({"Link": ", ".join(links)} if links else {})

    # -- JSON shapes (lock held) -------------------------------------------------------------------------------

    def _user_json(self, login: str, user_type: str, *, full: bool = False) -> Json:
        user_id = self._user_ids.setdefault(login, 1001 + len(self._user_ids))
        api = f"{self.url}/users/{quote(login, safe='')}"
        user = {
            "login": login, "id": user_id, "node_id": f"U_{user_id}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4", "gravatar_id": "",
            "url": api, "html_url": f"https://github.com/apps/{login.removesuffix('[bot]')}" if user_type == "Bot"
            else f"https://github.com/{login}", "repos_url": f"{api}/repos", "type": user_type, "site_admin": False,
        }
        if full:
            user.update({"name": None, "company": None, "created_at": _iso(_EPOCH), "updated_at": _iso(_EPOCH)})
        return user

    def _repo_json(self) -> Json:
        api, html = f"{self.url}/repos/{self.owner}/{self.repo}", f"https://github.com/{self.owner}/{self.repo}"
        return {
            "id": 424242, "node_id": "R_kgDOAGeCsg", "name": self.repo, "full_name": f"{self.owner}/{self.repo}",
            "private": False, "owner": self._user_json(self.owner, "Organization"), "html_url": html,
            "description": "A repository served by tests/fakes/fake_github.py", "fork": False, "url": api,
            "pulls_url": f"{api}/pulls{{/number}}", "issues_url": f"{api}/issues{{/number}}",
            "statuses_url": f"{api}/statuses/{{sha}}", "commits_url": f"{api}/commits{{/sha}}",
            "clone_url": f"{html}.git", "default_branch": "main", "visibility": "public", "archived": False,
            "disabled": False, "created_at": _iso(_EPOCH), "updated_at": _iso(_EPOCH), "pushed_at": _iso(_EPOCH),
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def _pull_json(self, pull: _Pull) -> Json:
        api = f"{self.url}/repos/{self.owner}/{self.repo}"
        html = f"https://github.com/{self.owner}/{self.repo}/pull/{pull.number}"
        repo = self._repo_json()
        closed = pull.created_at if pull.state == "closed" else None
        return {
            "url": f"{api}/pulls/{pull.number}", "id": 700_000 + pull.number, "node_id": f"PR_{pull.number}",
            "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull.number}", "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}", "number": pull.number, "state": pull.state,
            "locked": False, "title": f"Pull request #{pull.number}", "user": self._user_json(pull.author, "User"),
            "body": None, "labels": [], "created_at": pull.created_at, "updated_at": pull.created_at,
            "closed_at": closed, "merged_at": None, "merge_commit_sha": None, "draft": False, "merged": False,
            "author_association": "CONTRIBUTOR", "comments": self._count_comments(pull.number),
            "head": {"label": f"{self.owner}:{pull.head_ref}", "ref": pull.head_ref, "sha": pull.head_sha,
                     "user": self._user_json(self.owner, "Organization"), "repo": repo},
            "base": {"label": f"{self.owner}:{pull.base_ref}", "ref": pull.base_ref, "sha": _fake_sha(pull.base_ref),
                     "user": self._user_json(self.owner, "Organization"), "repo": repo},
        }

    def _issue_json(self, pull: _Pull) -> Json:
        api = f"{self.url}/repos/{self.owner}/{self.repo}"
        html = f"https://github.com/{self.owner}/{self.repo}/pull/{pull.number}"
        return {
            "url": f"{api}/issues/{pull.number}", "repository_url": api, "id": 800_000 + pull.number,
            "node_id": f"I_{pull.number}", "comments_url": f"{api}/issues/{pull.number}/comments", "html_url": html,
            "number": pull.number, "title": f"Pull request #{pull.number}", "state": pull.state, "locked": False,
            "user": self._user_json(pull.author, "User"), "labels": [], "body": None,
            "comments": self._count_comments(pull.number), "created_at": pull.created_at,
            "updated_at": pull.created_at, "closed_at": pull.created_at if pull.state == "closed" else None,
            "author_association": "CONTRIBUTOR",
            "pull_request": {"url": f"{api}/pulls/{pull.number}", "html_url": html, "diff_url": f"{html}.diff",
                             "patch_url": f"{html}.patch", "merged_at": None},
        }

    def _comment_json(self, comment: _Comment) -> Json:
        api = f"{self.url}/repos/{self.owner}/{self.repo}"
        return {
            "url": f"{api}/issues/comments/{comment.id}", "id": comment.id, "node_id": f"IC_{comment.id}",
            "html_url": f"https://github.com/{self.owner}/{self.repo}/pull/{comment.number}"
                        f"#issuecomment-{comment.id}",
            "issue_url": f"{api}/issues/{comment.number}", "body": comment.body,
            "user": self._user_json(comment.login, comment.user_type), "created_at": comment.created_at,
            "updated_at": comment.updated_at, "author_association": "NONE" if comment.user_type == "Bot"
            else "CONTRIBUTOR", "performed_via_github_app": None,
            "reactions": {"url": f"{api}/issues/comments/{comment.id}/reactions", "total_count": 0, "+1": 0,
                          "-1": 0, "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0},
        }

    def _commit_json(self, sha: str) -> Json:
        api = f"{self.url}/repos/{self.owner}/{self.repo}"
        person = {"name": "Octo Cat", "email": "octocat@example.com", "date": _iso(_EPOCH)}
        return {
            "sha": sha, "node_id": f"C_{sha[:12]}", "url": f"{api}/commits/{sha}",
            "html_url": f"https://github.com/{self.owner}/{self.repo}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {"url": f"{api}/git/commits/{sha}", "message": f"Commit {sha[:7]}", "author": person,
                       "committer": person, "comment_count": 0,
                       "tree": {"sha": _fake_sha(f"tree-{sha}"), "url": f"{api}/git/trees/{_fake_sha(f'tree-{sha}')}"}},
            "author": self._user_json("octocat", "User"), "committer": self._user_json("octocat", "User"),
            "parents": [], "stats": {"total": 0, "additions": 0, "deletions": 0}, "files": [],
        }

    def _count_comments(self, number: int) -> int:
        return sum(1 for c in self._comments.values() if c.number == number)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGitHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that went away is not worth a traceback on stderr."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: do not let Nagle hold the second
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: no access log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""  # always drained: the connection is kept alive
        answer = self.server.fake._answer(self.command, self.path, self.headers.get("Authorization"), raw_body)
        payload = b"" if answer.status == 204 else json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fake_sha(seed: str) -> str:
    return hashlib.sha1(seed.encode("utf-8")).hexdigest()


def _user_type(login: str) -> str:
    return "Bot" if login.endswith("[bot]") else "User"


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _json_body(raw: bytes) -> Json:
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        raise _Reply(400, "Problems parsing JSON") from None
    if not isinstance(data, dict):
        raise _Reply(400, "Problems parsing JSON")
    return data


def _text_field(data: Json, field: str) -> str:
    value = data.get(field)
    if value is None:
        raise _Reply(422, f'Invalid request.\n\n"{field}" wasn\'t supplied.')
    if not isinstance(value, str):
        raise _Reply(422, f"Invalid request.\n\nFor 'properties/{field}', {json.dumps(value)} is not a string.")
    return value


def _validation(resource: str, field: str, message: str) -> _Reply:
    return _Reply(422, "Validation Failed", errors=[{"resource": resource, "code": "custom", "field": field,
                                                    "message": message}])
