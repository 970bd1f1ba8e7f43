"""A non-HTTP User: a plain TCP echo client that fires request events; host uses tcp://."""
import socket
import time
from urllib.parse import urlsplit

from locust import User, constant, task


class EchoUser(User):
    host = "tcp://127.0.0.1:18766"
    wait_time = constant(0.05)

    def on_start(self):
        parts = urlsplit(self.host)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)

    def on_stop(self):
        self.sock.close()

    @task
    def echo(self):
        start = time.time()
        exception = None
        try:
            self.sock.sendall(b"ping\n")
            if self.sock.recv(64) != b"ping\n":
                raise ValueError("bad echo")
        except Exception as exc:  # reported as a failed request, as Locust's clients do
            exception = exc
        self.environment.events.request.fire(
            request_type="TCP", name="echo", response_time=(time.time() - start) * 1000, response_length=5,
            response=None, context={}, exception=exception, start_time=start)
