"""Authentication flow against the perfgate demo service.

Plain Locust (no perfgate import), e.g.::

    locust -f locustfiles/auth.py --headless -u 10 -r 10 -t 30s -H http://127.0.0.1:8080

Each user registers a unique account and logs in when it starts, then repeatedly reads
its profile (``GET /auth/me`` with the bearer token) and now and then exchanges its
refresh token for a new token pair; it logs out when it stops. Responses are checked
with ``catch_response=True``: any status other than the expected one is a failure.
"""

import uuid

from locust import HttpUser, between, task
from locust.exception import StopUser


class AuthFlowUser(HttpUser):
    wait_time = between(0.1, 0.3)

    access_token = None
    refresh_token = None
    # True while a refresh is in flight: if the user is stopped then, the server may
    # already have rotated the tokens, so logging out with the old one would fail.
    _refreshing = False

    def on_start(self):
        username = f"load-{uuid.uuid4().hex[:16]}"
        password = uuid.uuid4().hex
        credentials = {"username": username, "password": password}

        with self.client.post(
            "/auth/register", json=credentials, name="/auth/register", catch_response=True
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"register: expected 201, got {resp.status_code}")
                raise StopUser()

        with self.client.post(
            "/auth/login", json=credentials, name="/auth/login", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"login: expected 200, got {resp.status_code}")
                raise StopUser()
            self._store_tokens(resp)
            if self.access_token is None:
                raise StopUser()

    def _store_tokens(self, resp):
        try:
            body = resp.json()
            self.access_token = body["access_token"]
            self.refresh_token = body["refresh_token"]
        except (ValueError, KeyError, TypeError):
            self.access_token = self.refresh_token = None
            resp.failure("response has no access_token/refresh_token")

    def _auth_header(self):
        return {"Authorization": f"Bearer {self.access_token}"}

    @task(5)
    def me(self):
        with self.client.get(
            "/auth/me", headers=self._auth_header(), name="/auth/me", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"me: expected 200, got {resp.status_code}")

    @task(1)
    def refresh(self):
        self._refreshing = True
        with self.client.post(
            "/auth/refresh",
            json={"refresh_token": self.refresh_token},
            name="/auth/refresh",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"refresh: expected 200, got {resp.status_code}")
            else:
                self._store_tokens(resp)
        self._refreshing = False

    def on_stop(self):
        if self.access_token is None or self._refreshing:
            return
        with self.client.post(
            "/auth/logout", headers=self._auth_header(), name="/auth/logout", catch_response=True
        ) as resp:
            if resp.status_code != 204:
                resp.failure(f"logout: expected 204, got {resp.status_code}")
        self.access_token = self.refresh_token = None
