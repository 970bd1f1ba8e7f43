from locust import HttpUser, constant, task


class ApiUser(HttpUser):
    abstract = True
    wait_time = constant(0.05)

    def call(self, path):
        self.client.get(path, headers={"Accept": "application/json"})


class Orders(ApiUser):
    @task
    def orders(self):
        self.call("/orders")
