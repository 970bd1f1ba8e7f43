"""Reads data/users.csv relative to the folder Locust runs in (tests/locust_corpus)."""
import csv
import itertools

from locust import HttpUser, constant, task

with open("data/users.csv", newline="") as f:
    USERS = itertools.cycle(list(csv.DictReader(f)))


class CsvUser(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        self.account = next(USERS)
        self.client.post("/login", json=self.account)

    @task
    def me(self):
        self.client.get("/me", name="/me")
