"""What `ab` and `calibrate` need before they serve anything: a serve command and a host with {port}, and a word
when remote workers would load a loopback address."""

from __future__ import annotations

import pytest
from measure.test_measure import profile

from perfgate.ab.pairs import check_served
from perfgate.config import ServeConfig
from perfgate.errors import ConfigError, UsageError

SERVE = ServeConfig(command="python app.py --port {port}", ready_url="http://127.0.0.1:{port}/health")


def test_a_host_without_port_is_refused_since_each_version_has_its_own() -> None:
    with pytest.raises(ConfigError, match=r"the host 'http://127.0.0.1:8080' has no \{port\}"):
        check_served(SERVE, profile(host="http://127.0.0.1:8080"), "ab", print)
    with pytest.raises(ConfigError, match="has no {port} placeholder"):
        check_served(ServeConfig(command="python app.py"), profile(host="http://127.0.0.1:{port}"), "ab", print)
    with pytest.raises(UsageError, match="perfgate calibrate serves each version itself"):
        check_served(None, profile(host="http://127.0.0.1:{port}"), "calibrate", print)


@pytest.mark.parametrize(("host", "said"), [
    ("http://127.0.0.1:{port}", True), ("http://localhost:{port}", True), ("http://[::1]:{port}", True),
    ("http://10.0.0.5:{port}", False), ("http://127.example.com:{port}", False),
])
def test_workers_loading_a_loopback_address_are_told_once(host: str, said: bool) -> None:
    told: list[str] = []
    assert check_served(SERVE, profile(host=host, expect_workers=2), "ab", told.append) is SERVE
    assert len(told) == int(said) and all("only workers on this machine can" in line for line in told)
    check_served(SERVE, profile(host=host), "ab", told.append)  # no workers: nothing to say
    assert len(told) == int(said)
