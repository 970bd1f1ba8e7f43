"""A Markov-like chain: each state schedules the next one itself."""
import random

from locust import HttpUser, TaskSet, constant, task


class Chain(TaskSet):
    @task
    def home(self):
        self.client.get("/home")
        self.schedule_task(random.choice([self.product, self.search]), first=True)

    def product(self):
        self.client.get("/product")
        self.schedule_task(self.home, first=True)

    def search(self):
        self.client.get("/search")
        if random.random() < 0.3:
            self.interrupt(reschedule=False)


class Walker(HttpUser):
    wait_time = constant(0.05)
    tasks = [Chain]
