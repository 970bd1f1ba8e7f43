"""Minimal liveness workload: ``GET /health`` and ``GET /ping``.

Plain Locust (no perfgate import), e.g.::

    locust -f locustfiles/health.py --headless -u 5 -r 5 -t 20s -H http://127.0.0.1:8080

Works against any service exposing those two routes; each user aims at a constant
4 requests per second.
"""

from locust import HttpUser, constant_throughput, task


class HealthCheckUser(HttpUser):
    wait_time = constant_throughput(4)

    @task(3)
    def health(self):
        self.client.get("/health", name="/health")

    @task(1)
    def ping(self):
        self.client.get("/ping", name="/ping")
