"""The shop's load profile: log in once, browse, add to the cart, check out now and then."""

import random

from locust import HttpUser, between, task


class Shopper(HttpUser):
    host = "http://127.0.0.1:8000"
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        name = f"shopper-{random.randrange(10**9)}"
        token = self.client.post("/api/login", json={"name": name, "password": "secret"}).json()["token"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    @task(5)
    def browse(self) -> None:
        self.client.get("/api/products")

    @task(3)
    def look_at_one(self) -> None:
        self.client.get(f"/api/products/{random.randint(1, 50)}", name="/api/products/{id}")

    @task(2)
    def add_to_cart(self) -> None:
        self.client.post("/api/cart", json={"product": random.randint(1, 50), "quantity": 1})

    @task(1)
    def checkout(self) -> None:
        with self.client.post("/api/checkout", catch_response=True) as response:
            if response.status_code == 409:  # an empty cart is not a failure of the shop
                response.success()
