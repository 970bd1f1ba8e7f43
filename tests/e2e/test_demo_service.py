"""The demo service, exercised over real HTTP against a real `python -m perfgate.demo` process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from perfgate.demo.app import SERVICE_TIMES_MS, DemoSettings, busy_for
from perfgate.measure.service import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


# --------------------------------------------------------------------------- helpers



def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFGATE_DEMO_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class Service:
    base_url: str
    proc: subprocess.Popen

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        return Reply(status, json.loads(raw) if raw else None)

    def latency_ms(self, path: str) -> float:
        start = time.perf_counter()
        with urllib.request.urlopen(self.base_url + path, timeout=10) as resp:
            resp.read()
        return (time.perf_counter() - start) * 1000.0


def _start_service(*flags: str) -> Service:
    port = free_port(HOST)
    stderr = tempfile.TemporaryFile(mode="w+")  # a file, so the child can never block on it
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfgate.demo", "--host", HOST, "--port", str(port), *flags],
        cwd=REPO_ROOT,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    service = Service(f"http://{HOST}:{port}", proc)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr.seek(0)
            message = stderr.read()
            stderr.close()
            raise RuntimeError(f"demo service exited with {proc.returncode}: {message}")
        try:
            if service.call("GET", "/health", timeout=1.0).status == 200:
                stderr.close()  # the child keeps its own descriptor
                return service
        except OSError:
            pass
        time.sleep(0.05)
    _stop(proc)
    stderr.close()
    raise RuntimeError("demo service did not become healthy within 20 s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def service():
    svc = _start_service()
    try:
        yield svc
    finally:
        _stop(svc.proc)


@pytest.fixture(scope="module")
def slow_ping_service():
    svc = _start_service("--slowdown-pct", "100", "--slow-endpoint", "GET /ping")
    try:
        yield svc
    finally:
        _stop(svc.proc)


# ----------------------------------------------------------------------------- tests


def test_health_and_ping(service: Service) -> None:
    assert service.call("GET", "/health") == Reply(200, {"status": "ok"})
    reply = service.call("GET", "/ping")
    assert reply.status == 200
    assert "pong" in json.dumps(reply.body)


def test_items_crud_round_trip(service: Service) -> None:
    created = service.call("POST", "/items", {"name": "spanner", "price": 12.5})
    assert created.status == 201
    item_id = created.body["id"]
    assert created.body["name"] == "spanner"

    assert service.call("GET", f"/items/{item_id}").body == created.body

    updated = service.call("PUT", f"/items/{item_id}", {"name": "wrench", "price": 13.0})
    assert updated.status == 200
    assert updated.body["name"] == "wrench"
    assert service.call("GET", f"/items/{item_id}").body["name"] == "wrench"

    listed = service.call("GET", "/items?limit=5")
    assert listed.status == 200
    assert len(listed.body) == 5

    assert service.call("DELETE", f"/items/{item_id}").status == 204
    assert service.call("GET", f"/items/{item_id}").status == 404
    assert service.call("DELETE", f"/items/{item_id}").status == 404
    assert service.call("PUT", f"/items/{item_id}", {"name": "x"}).status == 404


def test_auth_flow(service: Service) -> None:
    assert service.call("GET", "/auth/me").status == 401
    assert service.call("GET", "/auth/me", token="not-a-token").status == 401

    creds = {"username": "alice", "password": "s3cret"}
    assert service.call("POST", "/auth/register", creds).status == 201
    assert service.call("POST", "/auth/register", creds).status == 409
    assert service.call("POST", "/auth/login", {"username": "alice", "password": "nope"}).status == 401

    login = service.call("POST", "/auth/login", creds)
    assert login.status == 200
    access, refresh = login.body["access_token"], login.body["refresh_token"]

    me = service.call("GET", "/auth/me", token=access)
    assert me.status == 200
    assert me.body["username"] == "alice"

    refreshed = service.call("POST", "/auth/refresh", {"refresh_token": refresh})
    assert refreshed.status == 200
    new_access = refreshed.body["access_token"]
    assert new_access != access
    assert service.call("GET", "/auth/me", token=access).status == 401
    assert service.call("POST", "/auth/refresh", {"refresh_token": refresh}).status == 401
    assert service.call("GET", "/auth/me", token=new_access).status == 200

    assert service.call("POST", "/auth/logout", token=new_access).status == 204
    assert service.call("GET", "/auth/me", token=new_access).status == 401


def test_order_more_than_stock_is_409(service: Service) -> None:
    product = service.call("POST", "/products", {"name": "rare", "stock": 3})
    assert product.status == 201
    pid = product.body["id"]

    assert service.call("POST", "/orders", {"product_id": pid, "quantity": 4}).status == 409
    assert service.call("GET", f"/products/{pid}").body["stock"] == 3
    assert service.call("POST", "/orders", {"product_id": pid, "quantity": 3}).status == 201
    assert service.call("GET", f"/products/{pid}").body["stock"] == 0
    assert service.call("POST", "/orders", {"product_id": pid, "quantity": 1}).status == 409
    assert service.call("POST", "/orders", {"product_id": 10**9, "quantity": 1}).status == 404
    assert service.call("GET", "/products/999999999").status == 404


def test_concurrent_orders_never_oversell(service: Service) -> None:
    pid = service.call("POST", "/products", {"name": "last five", "stock": 5}).body["id"]
    racers = 40
    barrier = threading.Barrier(racers)
    statuses: list[int] = []
    lock = threading.Lock()

    def order() -> None:
        barrier.wait(timeout=10)
        status = service.call("POST", "/orders", {"product_id": pid, "quantity": 1}).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=order) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert len(statuses) == racers
    assert statuses.count(201) == 5
    assert statuses.count(409) == racers - 5
    assert service.call("GET", f"/products/{pid}").body["stock"] == 0
    orders = service.call("GET", f"/orders?product_id={pid}")
    assert orders.status == 200
    assert len(orders.body) == 5
    assert all(o["product_id"] == pid and o["quantity"] == 1 for o in orders.body)


def test_slowdown_scales_only_the_chosen_endpoint(
    service: Service, slow_ping_service: Service
) -> None:
    samples: dict[str, list[float]] = {"base_ping": [], "slow_ping": [], "base_health": [], "slow_health": []}
    for svc in (service, slow_ping_service):  # warm up
        svc.latency_ms("/ping")
        svc.latency_ms("/health")
    # Interleaved, so background noise affects both services alike.
    for _ in range(30):
        samples["base_ping"].append(service.latency_ms("/ping"))
        samples["slow_ping"].append(slow_ping_service.latency_ms("/ping"))
        samples["base_health"].append(service.latency_ms("/health"))
        samples["slow_health"].append(slow_ping_service.latency_ms("/health"))
    med = {k: statistics.median(v) for k, v in samples.items()}
    shown = ", ".join(f"{k}={v:.2f}ms" for k, v in med.items())

    # +100% on GET /ping adds one more service time to its latency: its
    # simulated part doubles (the fixed HTTP overhead does not).
    expected_increase = SERVICE_TIMES_MS["GET /ping"]
    increase = med["slow_ping"] - med["base_ping"]
    assert 0.5 * expected_increase <= increase <= 3.0 * expected_increase, shown
    assert med["slow_ping"] >= 1.25 * med["base_ping"], shown

    # /health is not the slowed endpoint: roughly unchanged.
    health_change = abs(med["slow_health"] - med["base_health"])
    assert health_change <= max(2.0, 0.5 * med["base_health"]), shown


@pytest.mark.parametrize(
    "flags",
    [
        ["--slowdown-pct", "abc"],
        ["--slow-endpoint", "GET /nowhere"],
        ["--slow-tail-fraction", "1.5"],
        ["--slow-kind", "gpu"],
    ],
)
def test_invalid_flag_exits_2_with_one_line(flags: list[str]) -> None:
    line = _refused_start(flags, _clean_env())
    assert "error" in line


def test_invalid_env_value_exits_2_with_one_line() -> None:
    line = _refused_start([], _clean_env() | {"PERFGATE_DEMO_SLOWDOWN_PCT": "fast"})
    assert "PERFGATE_DEMO_SLOWDOWN_PCT" in line


def _refused_start(flags: list[str], env: dict[str, str]) -> str:
    """Start the service with bad settings: it must exit 2 with one line and no traceback; returns the line."""
    result = subprocess.run(
        [sys.executable, "-m", "perfgate.demo", "--port", str(free_port(HOST)), *flags],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]
    assert "Traceback" not in result.stderr


def test_settings_knob_semantics() -> None:
    plain = DemoSettings()
    assert plain.multiplier("GET /ping") == 1.0

    one = DemoSettings(slowdown_pct=50, slow_endpoint="post /orders/")
    assert one.slow_endpoint == "POST /orders"
    assert one.multiplier("POST /orders") == 1.5
    assert one.multiplier("GET /ping") == 1.0

    tail = DemoSettings(slowdown_pct=20, slow_tail_fraction=1.0)
    assert tail.multiplier("GET /items") == pytest.approx(3.0)  # 1 + 10 * 20 / 100

    env = {"PERFGATE_DEMO_SLOWDOWN_PCT": "25", "PERFGATE_DEMO_SLOW_ENDPOINT": "GET /items/{id}"}
    from_env = DemoSettings.from_env(env)
    assert (from_env.slowdown_pct, from_env.slow_endpoint) == (25.0, "GET /items/{id}")
    assert DemoSettings.from_env(env, slowdown_pct=5.0).slowdown_pct == 5.0

    computed = DemoSettings.from_env({"PERFGATE_DEMO_SLOW_KIND": "cpu", "PERFGATE_DEMO_SLOWDOWN_PCT": "50"})
    assert computed.slow_kind == "cpu" and "computed" in computed.describe()
    before = time.thread_time()
    busy_for(0.02)
    assert time.thread_time() - before >= 0.02  # the added time is the process's own CPU time

    for bad in ({"slowdown_pct": float("nan")}, {"slow_tail_fraction": 2}, {"slow_endpoint": "GET /x"},
                {"slow_kind": "gpu"}):
        with pytest.raises(ValueError):
            DemoSettings(**bad)
