from locust import HttpUser, TaskSet, constant, task


class Forum(TaskSet):
    @task(3)
    class Thread(TaskSet):
        @task
        def read(self):
            self.client.get("/forum/thread")

        @task
        def back(self):
            self.interrupt()

    @task
    def index(self):
        self.client.get("/forum")


class Member(HttpUser):
    wait_time = constant(0.05)
    tasks = {Forum: 1}
