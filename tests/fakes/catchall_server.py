"""A loopback server for the Locust corpus: any HTTP path and method gets 200 and small JSON; a TCP echo beside it.

``python -m tests.fakes.catchall_server [HTTP_PORT] [TCP_PORT]`` (defaults 18765 and 18766, the ports the corpus's
own ``host`` attributes name). Binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_PORT = 18765
TCP_PORT = 18766
MAX_BODY = 1 << 16


class CatchAllHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        if length:
            self.rfile.read(length)
        body = json.dumps({"ok": True, "path": self.path[:200]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet under load
        pass


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            while line := self.rfile.readline(4096):
                self.wfile.write(line)
        except OSError:
            pass  # the client went away mid-line: nothing to answer


class ThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start(http_port: int = HTTP_PORT, tcp_port: int = TCP_PORT) -> tuple[ThreadingHTTPServer, ThreadingTCPServer]:
    """Both servers, serving in daemon threads; call ``shutdown()`` on each to stop."""
    http = ThreadingHTTPServer(("127.0.0.1", http_port), CatchAllHandler)
    http.daemon_threads = True
    tcp = ThreadingTCPServer(("127.0.0.1", tcp_port), EchoHandler)
    for server in (http, tcp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return http, tcp


if __name__ == "__main__":
    ports = [int(a) for a in sys.argv[1:3]]
    http, tcp = start(*ports)
    print(f"http://127.0.0.1:{http.server_address[1]} tcp://127.0.0.1:{tcp.server_address[1]}", flush=True)
    threading.Event().wait()
