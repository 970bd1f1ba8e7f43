"""Weighted mixed workload for the perfgate demo service.

Plain Locust (no perfgate import), e.g.::

    locust -f locustfiles/demo.py --headless -u 10 -r 10 -t 30s -H http://127.0.0.1:8080

Requests are named after their route template (``name="/items/{id}"``), so Locust's
statistics group them per endpoint ("GET /items/{id}", "POST /orders", ...) instead of
per concrete URL. Tasks are tagged ``read`` or ``write``: ``--tags read`` gives a
read-only run.

Each user aims at a constant 5 tasks per second (``constant_throughput``), so the
offered load depends on the number of users rather than on how fast the service
answers; a slower build then shows up as higher latency, not as a lower request rate.
"""

import random

from locust import FastHttpUser, constant_throughput, tag, task

#: Products 1-3 are seeded by the demo service with a practically unlimited stock.
SEEDED_PRODUCT_IDS = (1, 2, 3)
#: Items 1-50 are seeded by the demo service (this workload never deletes them).
SEEDED_ITEM_IDS = range(1, 51)


class DemoUser(FastHttpUser):
    wait_time = constant_throughput(5)

    @tag("read")
    @task(10)
    def list_items(self):
        self.client.get("/items?limit=20", name="/items")

    @tag("read")
    @task(6)
    def get_item(self):
        item_id = random.choice(SEEDED_ITEM_IDS)
        self.client.get(f"/items/{item_id}", name="/items/{id}")

    @tag("write")
    @task(2)
    def create_item(self):
        n = random.randrange(1_000_000)
        self.client.post(
            "/items",
            json={"name": f"load-item-{n}", "description": "created by DemoUser", "price": n % 100},
            name="/items",
        )

    @tag("read")
    @task(4)
    def get_product(self):
        product_id = random.choice(SEEDED_PRODUCT_IDS)
        self.client.get(f"/products/{product_id}", name="/products/{id}")

    @tag("write")
    @task(2)
    def place_order(self):
        product_id = random.choice(SEEDED_PRODUCT_IDS)
        self.client.post("/orders", json={"product_id": product_id, "quantity": 1}, name="/orders")

    @tag("read")
    @task(2)
    def ping(self):
        self.client.get("/ping", name="/ping")
