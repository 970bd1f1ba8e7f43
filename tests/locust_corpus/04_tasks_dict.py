from locust import HttpUser, constant_throughput


def browse(user):
    user.client.get("/browse")


def buy(user):
    user.client.post("/buy", json={"item": 1})


class DictTasks(HttpUser):
    wait_time = constant_throughput(20)
    tasks = {browse: 4, buy: 1}
