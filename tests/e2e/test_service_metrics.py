"""The service's own metrics during `perfgate run`: the real demo service serving its Prometheus endpoint, a real
Locust run, a real store."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DEMO_READY, DEMO_SERVE, LOCUSTFILES, run_cli


def test_a_leaking_service_shows_its_memory_and_its_counter_in_the_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    result = run_cli("run", "-f", str(LOCUSTFILES / "demo.py"), "-u", "10", "-r", "10", "-t", "6s", "--warmup", "1s",
                     "--serve", DEMO_SERVE + " --leak-kb 256", "--ready-url", DEMO_READY,
                     "--metrics-url", "http://127.0.0.1:{port}/metrics", "--metric", "demo_requests_total",
                     "--db", str(db), "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = json.loads(result.stdout)
    metrics = run["metrics"]
    assert metrics["url"].startswith("http://127.0.0.1:") and metrics["url"].endswith("/metrics")
    assert metrics["failed"] == 0 and metrics["scrapes"] >= 6 and metrics["missing"] == []
    series = {s["name"]: s for s in metrics["series"]}
    assert set(series) == {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                           "demo_requests_total"}
    memory = [v for _, v in series["process_resident_memory_bytes"]["samples"]]
    handled = [v for _, v in series["demo_requests_total"]["samples"]]
    # 256 KiB kept per request: the resident memory grows by about that much for every request handled.
    growth_kb = (memory[-1] - memory[0]) / 1024
    assert handled[-1] - handled[0] > 100 and growth_kb > 0.5 * 256 * (handled[-1] - handled[0]), (memory, handled)
    # What the service counted is what Locust sent (the ready check hits /health, which it does not count): up to
    # one request per user more, answered after Locust stopped its users.
    assert 0 <= handled[-1] - run["locust_request_count"] <= 10, (handled[-1], run["locust_request_count"])

    shown = run_cli("show", str(run["id"]), "--db", str(db), "--format", "json", cwd=tmp_path)
    assert json.loads(shown.stdout)["metrics"] == metrics
    text = run_cli("show", str(run["id"]), "--db", str(db), cwd=tmp_path)
    assert "service metrics from http://127.0.0.1:" in text.stdout
    assert "process_resident_memory_bytes:" in text.stdout and " MB (+" in text.stdout
    assert "demo_requests_total: +" in text.stdout and "per request" in text.stdout


def test_metrics_that_never_answer_leave_the_run_valid_with_a_warning(tmp_path: Path) -> None:
    result = run_cli("run", "-f", str(LOCUSTFILES / "demo.py"), "-u", "2", "-r", "2", "-t", "3s", "--warmup", "1s",
                     "--serve", DEMO_SERVE, "--ready-url", DEMO_READY, "--metrics-url", "http://127.0.0.1:{port}/nope",
                     "--db", str(tmp_path / "runs.db"), "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["valid"] and run["metrics"]["failed"] == run["metrics"]["scrapes"] > 0
    assert any("every scrape of http://127.0.0.1:" in w and "HTTP 404" in w for w in run["warnings"]), run["warnings"]


def test_bad_metrics_settings_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, said in ((("--metrics-url", "ftp://x/metrics"), "--metrics-url / --metric"),
                       (("--metric", "demo_requests_total"), "--metric needs --metrics-url"),
                       (("--metrics-url", "http://127.0.0.1:{port}/metrics"), "perfgate serves nothing here")):
        result = run_cli("run", "-f", str(LOCUSTFILES / "demo.py"), "-H", "http://127.0.0.1:9", "-t", "3s", *args,
                         "--db", str(tmp_path / "runs.db"), cwd=tmp_path)
        assert result.code == 2 and said in result.stderr and "Traceback" not in result.stderr, result.stderr
