"""The service's own metrics during `perfgate run`: the real demo service serving its Prometheus endpoint, a real
Locust run, a real store."""

from __future__ import annotations

import json
import sqlite3
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
    # The HTML report charts each series: one point per scrape (up to the charts' 120).
    report = tmp_path / "report.html"
    assert run_cli("report", str(run["id"]), "-o", str(report), "--db", str(db), cwd=tmp_path).code == 0
    html = report.read_text()
    for name, recorded in series.items():
        chart = html.split(f"Service metric {name}</text>", 1)[1].split("</svg>", 1)[0]
        assert chart.count("<circle") == min(len(recorded["samples"]), 120), name


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


def test_compare_fails_a_head_that_leaks_memory_per_request_naming_the_series(git_repo: Path) -> None:
    from conftest import git

    config = ('[metrics]\nurl = "http://127.0.0.1:{port}/metrics"\n\n[compare.metric_gates]\n'
              'process_resident_memory_bytes = { margin = "50%", floor = 8192 }\n\n'
              '[serve]\ncommand = "' + DEMO_SERVE.replace('"', '\\\\"') + '{leak}"\nready_url = "' + DEMO_READY + '"\n')
    load = ("run", "-f", str(LOCUSTFILES / "demo.py"), "-u", "10", "-r", "10", "-t", "6s", "--warmup", "1s",
            "--db", str(git_repo / "runs.db"))
    (git_repo / "perfgate.toml").write_text(config.replace("{leak}", ""))
    git(git_repo, "add", "perfgate.toml")
    git(git_repo, "commit", "-qm", "gate on memory")
    assert run_cli(*load, cwd=git_repo).code == 0
    git(git_repo, "checkout", "-qb", "leaky")
    (git_repo / "perfgate.toml").write_text(config.replace("{leak}", " --leak-kb 64"))
    git(git_repo, "commit", "-qam", "keep 64 KiB a request")
    assert run_cli(*load, cwd=git_repo).code == 0

    result = run_cli("compare", "--base", "main", "--db", str(git_repo / "runs.db"), "--format", "json",
                     cwd=git_repo)
    assert result.code == 1, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    (gate,) = verdict["metric_gates"]
    assert gate["series"] == "process_resident_memory_bytes" and not gate["passed"], gate
    assert gate["head"] > 0.6 * 64 * 1024 and gate["head"] > gate["limit"] > gate["base"], gate
    assert "service metric grew per request: process_resident_memory_bytes" in verdict["headline"]
    text = run_cli("compare", "--base", "main", "--db", str(git_repo / "runs.db"), cwd=git_repo)
    assert text.code == 1 and "service metric process_resident_memory_bytes FAILED" in text.stdout, text.stdout
    markdown = run_cli("compare", "--base", "main", "--db", str(git_repo / "runs.db"), "--format", "markdown",
                       cwd=git_repo)
    assert "service metric process\\_resident\\_memory\\_bytes **FAILED**: +" in markdown.stdout, markdown.stdout

    # The same head without the leak holds the gate.
    (git_repo / "perfgate.toml").write_text(config.replace("{leak}", ""))
    git(git_repo, "commit", "-qam", "no leak after all")
    assert run_cli(*load, cwd=git_repo).code == 0
    fixed = run_cli("compare", "--base", "main", "--db", str(git_repo / "runs.db"), "--format", "json",
                    cwd=git_repo)
    (held,) = json.loads(fixed.stdout)["metric_gates"]
    assert held["passed"], held


def test_ab_scrapes_each_version_at_its_own_port_and_gates_a_leaking_head(tmp_path: Path) -> None:
    from perfgate.demo.walkthrough import make_demo_repo

    from conftest import BREAK_DEMO, ab_env, git

    repo = tmp_path / "shop"
    make_demo_repo(repo, slowdown_pct=0)  # the head is branch `slower`, here without a slowdown
    with (repo / "perfgate.toml").open("a") as config:
        config.write('\n[metrics]\nurl = "http://127.0.0.1:{port}/metrics"\n\n[compare.metric_gates]\n'
                     'process_resident_memory_bytes = { margin = "50%", floor = 8192 }\n')
    service = repo / "service.py"
    service.write_text(BREAK_DEMO.replace("FAILURE_PCT", "LEAK_KB").replace('"75"', '"64"') + service.read_text())
    git(repo, "commit", "-qam", "a head that keeps 64 KiB a request; metrics gated")
    result = run_cli("ab", "--base", "main", "--mode", "duet", "--looks", "1", "--no-confirm", "-u", "10", "-r", "10",
                     "-t", "6s", "--warmup", "1s", "--db", str(tmp_path / "ab.db"), "--format", "json",
                     cwd=repo, env=ab_env(tmp_path), timeout=300)
    assert result.code == 1, result.stderr
    verdict = json.loads(result.stdout)
    (gate,) = verdict["metric_gates"]
    assert not gate["passed"] and gate["head"] > 0.6 * 64 * 1024 > gate["base"], gate
    with sqlite3.connect(tmp_path / "ab.db") as conn:
        urls = [json.loads(m)["url"] for (m,) in conn.execute("select metrics from runs order by id")]
    assert len(urls) == 2 and len(set(urls)) == 2, urls  # each side scraped at its own service's port


def test_an_endurance_run_of_a_leaking_service_fails_its_memory_slope(tmp_path: Path) -> None:
    # A short "soak" profile judged as an endurance run; the demo keeps 16 KiB a request, for good.
    (tmp_path / "perfgate.toml").write_text('[profiles.soak]\nextends = "endurance"\nusers = 10\nspawn_rate = 10\n'
                                            'run_time = "16s"\nwarmup = "2s"\n\n[endurance]\nprofiles = ["soak"]\n')
    common = ("run", "-p", "soak", "-f", str(LOCUSTFILES / "demo.py"), "--ready-url", DEMO_READY,
              "--metrics-url", "http://127.0.0.1:{port}/metrics", "--db", str(tmp_path / "runs.db"))
    leaking = run_cli(*common, "--serve", DEMO_SERVE + " --leak-kb 16", "--format", "json", cwd=tmp_path)
    assert leaking.code == 1, leaking.stderr
    found = {f["name"]: f for f in json.loads(leaking.stdout)["endurance"]}
    memory = found["memory slope"]
    assert not memory["passed"] and memory["low"] > 1.0 and memory["source"].endswith("process_resident_memory_bytes")
    steady = run_cli(*common, "--serve", DEMO_SERVE, cwd=tmp_path)
    assert steady.code == 0, steady.stdout + steady.stderr
    assert "endurance memory slope held" in steady.stdout and "endurance latency drift" in steady.stdout
