from locust import HttpUser, between, task


class Basic(HttpUser):
    wait_time = between(0.05, 0.1)

    @task
    def index(self):
        self.client.get("/")
