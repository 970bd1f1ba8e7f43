"""A fake gRPC-like client: a wrapper that times calls and fires request events."""
import time

from locust import User, constant, task


class FakeStub:
    def __init__(self, environment):
        self.environment = environment

    def call(self, method):
        start = time.time()
        time.sleep(0.001)
        self.environment.events.request.fire(
            request_type="grpc", name=method, response_time=(time.time() - start) * 1000, response_length=0,
            response=None, context={}, exception=None, start_time=start)


class GrpcUser(User):
    host = "grpc://127.0.0.1:18766"
    wait_time = constant(0.05)

    def on_start(self):
        self.stub = FakeStub(self.environment)

    @task
    def say_hello(self):
        self.stub.call("Greeter/SayHello")
