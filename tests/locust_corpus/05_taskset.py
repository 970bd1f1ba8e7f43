from locust import HttpUser, TaskSet, constant, task


class Shop(TaskSet):
    @task(2)
    def items(self):
        self.client.get("/items")

    @task
    def leave(self):
        self.client.get("/bye")
        self.interrupt()


class Shopper(HttpUser):
    wait_time = constant(0.05)
    tasks = [Shop]
