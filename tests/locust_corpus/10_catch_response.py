from locust import HttpUser, constant, task


class Checker(HttpUser):
    wait_time = constant(0.05)

    @task
    def ok(self):
        with self.client.get("/check", catch_response=True) as response:
            if response.json().get("ok"):
                response.success()
            else:
                response.failure("not ok")

    @task
    def marked_failed(self):
        with self.client.get("/always-failed", catch_response=True) as response:
            response.failure("business rule says no")
