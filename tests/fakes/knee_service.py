"""A service with a known capacity: ``--limit`` requests served at once, each taking ``--service-ms`` exactly.

Each request of ``/work`` is given the server that frees first and holds it for the service time from the later
of its arrival and that moment (a queue of deterministic servers, kept as times rather than as threads waking each
other, whose hand-offs would cost throughput), so the capacity is ``limit / service time`` exactly: below it the
answers take the service time, above it the queue and the answers' wait grow without bound. ``/health`` is
answered at once. Loopback only.

    python knee_service.py --port 8080 --limit 2 --service-ms 25
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--service-ms", type=float, default=25.0)
    args = parser.parse_args()
    free_at = [0.0] * args.limit
    lock = threading.Lock()
    service_s = args.service_ms / 1000

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.startswith("/work"):
                with lock:
                    now = time.monotonic()
                    server = min(range(len(free_at)), key=free_at.__getitem__)
                    done = max(now, free_at[server]) + service_s
                    free_at[server] = done
                time.sleep(max(0.0, done - time.monotonic()))
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that left mid-answer (a step's end) is no error of the service

    Server(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
