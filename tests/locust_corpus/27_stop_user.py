from locust import HttpUser, constant, task
from locust.exception import StopUser


class OneShot(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        self.calls = 0

    @task
    def index(self):
        self.calls += 1
        self.client.get("/limited")
        if self.calls >= 20:
            raise StopUser()
