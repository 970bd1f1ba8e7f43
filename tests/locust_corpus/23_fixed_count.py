from locust import HttpUser, constant, task


class Admin(HttpUser):
    fixed_count = 1
    wait_time = constant(0.1)

    @task
    def dashboard(self):
        self.client.get("/admin")


class Visitor(HttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/visit")
