"""The last-item race: 20 users compete for the 5 units of one product.

Run it with as many users as there are racers, all spawned at once, in a single
Locust process (no ``--processes``, no master/workers)::

    locust -f locustfiles/race.py --headless -u 20 -r 20 -t 10s -H http://127.0.0.1:8080

When the test starts, a product with a stock of 5 is created through a plain HTTP
request to the target host (only on the local or master runner; the product id is kept
in a module-level variable, which is why the file is meant for a single process).
Every user then tries once to order one unit and stops. A ``201`` is reported as
``POST /orders``; a ``409`` is an expected outcome of the race and is reported as a
success named ``POST /orders [sold out]``; anything else is a failure.

Correctness checks: the ``CHECK`` request type
----------------------------------------------
When the test stops, the product and its orders (``GET /orders?product_id=N``) are
fetched and the run is checked for overselling: exactly 5 units must have been ordered
and the stock must be 0. The outcome goes through Locust's own event system as a
request whose ``request_type`` is ``"CHECK"``::

    environment.events.request.fire(
        request_type="CHECK", name="no overselling", response_time=0,
        response_length=0, response=None, context={},
        exception=None,  # or e.g. AssertionError("7 orders for 5 in stock; stock -2")
    )

so plain Locust lists it with the other requests (``CHECK no overselling``; a failed
check is a failure and makes Locust exit with status 1), and perfgate recognises
requests of type ``CHECK`` as correctness checks rather than as a latency endpoint.
"""

import json
import logging
import urllib.error
import urllib.request

from locust import HttpUser, constant, events, task
from locust.exception import StopUser
from locust.runners import WorkerRunner

INITIAL_STOCK = 5
CHECK_REQUEST_TYPE = "CHECK"
CHECK_NAME = "no overselling"

#: Id of the contested product, set by the test_start listener (single process only).
PRODUCT_ID = None

logger = logging.getLogger(__name__)


def _runs_checks(environment):
    """Set-up and checks run once, on the local or master runner, never on workers."""
    return not isinstance(environment.runner, WorkerRunner)


def _call(environment, method, path, body=None, timeout=10.0):
    """A plain HTTP request to the target host; returns the decoded JSON body."""
    url = environment.host.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _report_check(environment, exception=None):
    environment.events.request.fire(
        request_type=CHECK_REQUEST_TYPE,
        name=CHECK_NAME,
        response_time=0,
        response_length=0,
        response=None,
        context={},
        exception=exception,
    )


@events.test_start.add_listener
def create_contested_product(environment, **_kwargs):
    global PRODUCT_ID
    PRODUCT_ID = None
    if not _runs_checks(environment):
        return
    if not environment.host:
        logger.error("race.py needs a target host (-H http://127.0.0.1:PORT)")
        return
    try:
        product = _call(
            environment, "POST", "/products", {"name": "last-items", "stock": INITIAL_STOCK}
        )
        PRODUCT_ID = int(product["id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.error("race.py could not create the contested product: %s", exc)


class LastItemRaceUser(HttpUser):
    wait_time = constant(0)

    @task
    def order_once(self):
        if PRODUCT_ID is None:
            # Set-up failed (already logged) or this is a worker process.
            raise StopUser()
        with self.client.post(
            "/orders",
            json={"product_id": PRODUCT_ID, "quantity": 1},
            name="/orders",
            catch_response=True,
        ) as resp:
            if resp.status_code == 201:
                resp.success()
            elif resp.status_code == 409:
                resp.request_meta["name"] = "/orders [sold out]"
                resp.success()
            else:
                resp.failure(f"expected 201 or 409, got {resp.status_code}")
        raise StopUser()


@events.test_stop.add_listener
def check_no_overselling(environment, **_kwargs):
    if not _runs_checks(environment):
        return
    if PRODUCT_ID is None:
        _report_check(environment, AssertionError("set-up failed: no contested product"))
        return
    try:
        product = _call(environment, "GET", f"/products/{PRODUCT_ID}")
        orders = _call(environment, "GET", f"/orders?product_id={PRODUCT_ID}")
        stock = int(product["stock"])
        sold = sum(int(order["quantity"]) for order in orders)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _report_check(environment, AssertionError(f"could not verify orders: {exc}"))
        return
    if sold == INITIAL_STOCK and stock == 0:
        _report_check(environment, None)
    elif sold < INITIAL_STOCK and stock == INITIAL_STOCK - sold:
        _report_check(
            environment,
            AssertionError(
                f"only {sold} orders for {INITIAL_STOCK} in stock; stock {stock} "
                f"(the race needs at least {INITIAL_STOCK} users, e.g. -u 20 -r 20)"
            ),
        )
    else:
        _report_check(
            environment,
            AssertionError(f"{sold} orders for {INITIAL_STOCK} in stock; stock {stock}"),
        )
