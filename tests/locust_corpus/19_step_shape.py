from locust import HttpUser, LoadTestShape, constant, task


class Stepper(HttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/step")


class StepShape(LoadTestShape):
    """1 user more every second, up to 4; runs until -t stops it."""

    def tick(self):
        return min(4, int(self.get_run_time()) + 1), 4
