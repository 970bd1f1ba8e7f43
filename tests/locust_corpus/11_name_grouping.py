import random

from locust import HttpUser, constant, task


class Grouped(HttpUser):
    wait_time = constant(0.05)

    @task
    def item(self):
        self.client.get(f"/item/{random.randint(1, 1000)}", name="/item/[id]")
        with self.client.rename_request("/page/[n]"):
            self.client.get(f"/page/{random.randint(1, 9)}")
