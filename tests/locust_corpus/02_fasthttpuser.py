from locust import FastHttpUser, constant, task


class Fast(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/fast")
