from locust import HttpUser, constant, task


class OwnHost(HttpUser):
    host = "http://127.0.0.1:18765"
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/own-host")
