from locust import HttpUser, constant, events, task
from locust.runners import MasterRunner


@events.init.add_listener
def _init(environment, **_kwargs):
    if not isinstance(environment.runner, MasterRunner):
        environment.shared = {"prefix": "/v1"}


class Versioned(HttpUser):
    wait_time = constant(0.05)

    @task
    def call(self):
        prefix = getattr(self.environment, "shared", {}).get("prefix", "/v0")
        self.client.get(f"{prefix}/status")
