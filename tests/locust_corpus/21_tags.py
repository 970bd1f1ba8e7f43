from locust import HttpUser, constant, tag, task


class Tagged(HttpUser):
    wait_time = constant(0.05)

    @tag("read")
    @task
    def read(self):
        self.client.get("/read")

    @tag("write")
    @task
    def write(self):
        self.client.post("/write")

    @tag("slow")
    @task
    def slow(self):
        self.client.get("/excluded")
