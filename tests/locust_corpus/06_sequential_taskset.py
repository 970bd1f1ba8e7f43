from locust import HttpUser, SequentialTaskSet, constant, task


class Checkout(SequentialTaskSet):
    @task
    def cart(self):
        self.client.get("/cart")

    @task
    def pay(self):
        self.client.post("/pay")

    @task
    def receipt(self):
        self.client.get("/receipt")


class Buyer(HttpUser):
    wait_time = constant(0.05)
    tasks = [Checkout]
