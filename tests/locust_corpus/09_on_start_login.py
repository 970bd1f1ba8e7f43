from locust import HttpUser, constant, task


class LoggedIn(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        self.client.post("/login", json={"username": "alice", "password": "a1"})

    def on_stop(self):
        self.client.post("/logout")

    @task
    def profile(self):
        self.client.get("/me")
