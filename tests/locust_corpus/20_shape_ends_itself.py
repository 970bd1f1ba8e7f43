from locust import HttpUser, LoadTestShape, constant, task


class Burst(HttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/burst")


class ShortShape(LoadTestShape):
    """2 users for 1.5 s, then 5 until 3 s, then the test ends by itself (before -t)."""

    stages = [(1.5, 2, 2), (3.0, 5, 5)]

    def tick(self):
        run_time = self.get_run_time()
        for end, users, rate in self.stages:
            if run_time < end:
                return users, rate
        return None
