"""A fake GitLab REST API (v4) on 127.0.0.1: the current user and a merge request's notes.

It speaks what ``perfgate gitlab`` uses, in GitLab's shapes: ``GET /user``; ``GET, POST
/projects/:id/merge_requests/:iid/notes`` (paginated by ``page``/``per_page``, with ``x-next-page``,
``x-total-pages``, ``x-page`` and ``x-total`` headers); ``PUT …/notes/:note_id``. Requests need the
``PRIVATE-TOKEN`` header; notes can only be edited by their author. Faults can be injected: a fixed
status for every request, or a status for the next N requests.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeGitLab:
    def __init__(self, *, token: str = "glpat-t0ken", username: str = "perfgate-bot", project: str = "42",
                 iid: int = 3) -> None:
        self.token = token
        self.username = username
        self.project = project
        self.iid = iid
        self.notes: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.fail_always: int | None = None
        self.fail_next: list[int] = []
        self.redirect_to: str | None = None
        self.oversize = False
        """Answer ``GET /user`` with a body of 6 MB."""
        self._next_id = 1000
        self._lock = threading.Lock()
        self.url = ""

    def add_note(self, body: str, *, username: str = "reviewer", system: bool = False) -> dict:
        with self._lock:
            self._next_id += 1
            note = {"id": self._next_id, "body": body, "system": system, "noteable_type": "MergeRequest",
                    "noteable_iid": self.iid, "created_at": datetime.now(UTC).isoformat(),
                    "updated_at": datetime.now(UTC).isoformat(),
                    "author": {"id": hash(username) % 10_000, "username": username, "name": username}}
            self.notes.append(note)
            return note

    def ours(self, marker: str) -> list[dict]:
        return [n for n in self.notes if n["author"]["username"] == self.username and marker in n["body"]]

    @contextmanager
    def start(self) -> Iterator[FakeGitLab]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                fake.requests.append((method, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if fake.fail_always is not None:
                    return self._send(fake.fail_always, {"message": f"{fake.fail_always} injected"})
                if fake.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", fake.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if fake.fail_next:
                    status = fake.fail_next.pop(0)
                    return self._send(status, {"message": f"{status} injected"},
                                      {"Retry-After": "0"} if status == 429 else None)
                if self.headers.get("PRIVATE-TOKEN") != fake.token:
                    return self._send(401, {"message": "401 Unauthorized"})
                if parsed.path == "/api/v4/user" and method == "GET" and fake.oversize:
                    return self._send(200, {"username": "x" * 6_000_000})
                if parsed.path == "/api/v4/user" and method == "GET":
                    return self._send(200, {"id": 1, "username": fake.username, "name": "perfgate bot"})
                notes = (f"/api/v4/projects/{urllib.parse.quote(fake.project, safe='')}/merge_requests/"
                         f"{fake.iid}/notes")
                if parsed.path == notes and method == "GET":
                    per_page = min(int(query.get("per_page", 20)), 100)
                    page = int(query.get("page", 1))
                    with fake._lock:
                        pages = max(1, math.ceil(len(fake.notes) / per_page))
                        chunk = fake.notes[(page - 1) * per_page: page * per_page]
                    headers = {"x-page": str(page), "x-per-page": str(per_page), "x-total": str(len(fake.notes)),
                               "x-total-pages": str(pages), "x-next-page": str(page + 1) if page < pages else ""}
                    return self._send(200, chunk, headers)
                try:
                    body = json.loads(raw or b"{}")["body"]
                    assert isinstance(body, str)
                except (ValueError, KeyError, AssertionError):
                    return self._send(400, {"message": "400 Bad request - body is missing"})
                if parsed.path == notes and method == "POST":
                    return self._send(201, fake.add_note(body, username=fake.username))
                if parsed.path.startswith(notes + "/") and method == "PUT":
                    note_id = parsed.path.rsplit("/", 1)[1]
                    note = next((n for n in fake.notes if str(n["id"]) == note_id), None)
                    if note is None:
                        return self._send(404, {"message": "404 Not found"})
                    if note["author"]["username"] != fake.username:
                        return self._send(403, {"message": "403 Forbidden"})
                    note["body"] = body
                    note["updated_at"] = datetime.now(UTC).isoformat()
                    return self._send(200, note)
                return self._send(404, {"message": "404 Not Found"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/api/v4"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
