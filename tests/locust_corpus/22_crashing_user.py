from locust import HttpUser, constant, task


class Crasher(HttpUser):
    wait_time = constant(0.05)

    @task
    def crash(self):
        self.client.get("/before-crash")
        raise KeyError("missing basket")
