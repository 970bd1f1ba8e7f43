"""`perfgate run --junit --json` on real load: a failed correctness check of the locustfile is a failed case."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import run_cli
from fakes.junit_cases import read_cases

CHECKED = textwrap.dedent('''
    from locust import HttpUser, task, events

    class Shopper(HttpUser):
        @task
        def health(self):
            self.client.get("/health")

    @events.test_stop.add_listener
    def check(environment, **kwargs):
        events.request.fire(request_type="CHECK", name="stock is zero", response_time=0, response_length=0,
                            exception=AssertionError("stock ended at 3"))
''')


def test_run_writes_its_junit_and_json(tmp_path: Path, demo_service) -> None:
    locustfile = tmp_path / "check.py"
    locustfile.write_text(CHECKED)
    result = run_cli("run", "-f", str(locustfile), "-H", demo_service.host, "-t", "4s", "--warmup", "1s",
                     "--db", str(tmp_path / "r.db"), "--junit", str(tmp_path / "run.xml"),
                     "--json", str(tmp_path / "run.json"), cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert json.loads((tmp_path / "run.json").read_text())["checks"][0]["passed"] is False
    cases = read_cases((tmp_path / "run.xml").read_text(), tmp_path)
    assert ("checks", "stock is zero", "failure") in cases and cases[0][:2] == ("run", "validity")
