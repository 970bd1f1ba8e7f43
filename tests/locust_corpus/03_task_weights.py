from locust import HttpUser, constant_pacing, task


class Weighted(HttpUser):
    wait_time = constant_pacing(0.05)

    @task(3)
    def heavy(self):
        self.client.get("/often")

    @task(1)
    def light(self):
        self.client.get("/rarely")
