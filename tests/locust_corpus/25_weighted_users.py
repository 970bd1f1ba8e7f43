from locust import HttpUser, constant, task


class Reader(HttpUser):
    weight = 3
    wait_time = constant(0.05)

    @task
    def read(self):
        self.client.get("/articles")


class Writer(HttpUser):
    weight = 1
    wait_time = constant(0.05)

    @task
    def write(self):
        self.client.post("/articles", json={"title": "t"})
