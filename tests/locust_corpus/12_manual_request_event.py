import time

from locust import HttpUser, constant, task


class Manual(HttpUser):
    wait_time = constant(0.05)

    @task
    def compute(self):
        start = time.time()
        self.client.get("/real")
        self.environment.events.request.fire(
            request_type="CUSTOM", name="local-step", response_time=(time.time() - start) * 1000,
            response_length=0, response=None, context={}, exception=None, start_time=start)
