from locust import HttpUser, constant, events, task

STATE = {}


@events.test_start.add_listener
def _start(environment, **_kwargs):
    STATE["token"] = "t-123"


@events.test_stop.add_listener
def _stop(environment, **_kwargs):
    STATE.clear()


class Token(HttpUser):
    wait_time = constant(0.05)

    @task
    def call(self):
        self.client.get("/api", headers={"Authorization": STATE.get("token", "none")})
