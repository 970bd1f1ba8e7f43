"""Run every locustfile of tests/locust_corpus through plain Locust and through ``perfgate run``; print a table.

    uv run python -m tests.benchmarks.bench_corpus [-t SECONDS]

Both runs use the same settings (3 users, spawn rate 3, ``-t``) against tests/fakes/catchall_server.py on 127.0.0.1,
and both run with tests/locust_corpus as their working folder, so ``data/users.csv`` resolves as in plain Locust.
Request counts differ by timing between two runs, so each is compared with its own truth: the plain count is
Locust's Aggregated row of ``--csv``; for perfgate, the count it recorded is compared with the count in the Locust
stats its plugin saw in the same run (they must be equal).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes.catchall_server import HTTP_PORT, start

CORPUS = Path(__file__).resolve().parent.parent / "locust_corpus"
HOST = f"http://127.0.0.1:{HTTP_PORT}"
OWN_HOST = {"16_tcp_client.py", "17_grpc_like_client.py", "26_host_in_class.py"}
"""Locustfiles whose User classes set their own host (another scheme, or a fixed port): no -H."""
EXTRA = {"21_tags.py": ["-T", "read", "write"]}
PASSTHROUGH = {"15_custom_arguments.py": ["--item-path", "/custom/given"]}


def _plain(path: Path, seconds: int, tmp: Path) -> tuple[int | str, int | None]:
    prefix = tmp / path.stem
    command = [sys.executable, "-m", "locust", "-f", path.name, "--headless", "-u", "3", "-r", "3", "-t", f"{seconds}s",
               "--csv", str(prefix), "--only-summary", "--loglevel", "ERROR",
               *(() if path.name in OWN_HOST else ("-H", HOST)), *EXTRA.get(path.name, ()),
               *PASSTHROUGH.get(path.name, ())]
    # Its own process group, so that a Locust that does not stop (a shape that never ends ignores -t in plain
    # Locust) is stopped whole, and the row says so instead of ending the benchmark.
    proc = subprocess.Popen(command, cwd=CORPUS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        returncode: int | str = proc.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        returncode = f"timed out after {seconds + 60} s"
    try:
        with open(f"{prefix}_stats.csv", newline="") as f:
            count = next(int(r["Request Count"]) for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    except (OSError, StopIteration):
        count = None
    return returncode, count


def _perfgate(path: Path, seconds: int, tmp: Path) -> tuple[int, dict | None, str]:
    config = tmp / "perfgate-corpus.toml"  # empty: the repository's own perfgate.toml (the demo) must not apply
    config.touch()
    command = [sys.executable, "-m", "perfgate", "run", "--config", str(config),
               "-f", path.name, "-u", "3", "-r", "3", "-t", f"{seconds}s",
               "--warmup", "0s", "--format", "json", "--db", str(tmp / "perfgate-corpus.db"),
               *(() if path.name in OWN_HOST else ("-H", HOST)), *EXTRA.get(path.name, ())]
    if path.name in PASSTHROUGH:
        command += ["--", *PASSTHROUGH[path.name]]
    done = subprocess.run(command, cwd=CORPUS, capture_output=True, text=True, timeout=seconds + 180)
    try:
        return done.returncode, json.loads(done.stdout), ""
    except ValueError:
        return done.returncode, None, (done.stderr.strip().splitlines() or ["no output"])[-1][:120]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", type=int, default=4, help="seconds per run")
    parser.add_argument("files", nargs="*", help="corpus file names (default: all)")
    args = parser.parse_args()
    servers = start()
    began = time.monotonic()
    print(
        "| file | plain rc | perfgate rc | valid | plain count | perfgate recorded / Locust's | reason when invalid |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="perfgate-corpus-") as tmp_name:
        tmp = Path(tmp_name)
        for path in sorted(CORPUS.glob("*.py")):
            if args.files and path.name not in args.files:
                continue
            plain_rc, plain_count = _plain(path, args.t, tmp)
            rc, run, error = _perfgate(path, args.t, tmp)
            if run is None:
                row = [str(rc), "—", "—", error]
            else:
                counts = f"{run.get('recorded_request_count')} / {run.get('locust_request_count')}"
                reasons = "; ".join(run.get("invalid_reasons") or []) or ""
                failed = [c["name"] for c in run.get("checks", []) if not c.get("passed")]
                if failed:
                    reasons = "; ".join(filter(None, [reasons, "failed checks: " + ", ".join(failed)]))
                row = [str(rc), "yes" if run.get("valid") else "no", counts, reasons.replace("|", "/")[:200]]
            print(f"| {path.name} | {plain_rc} | {row[0]} | {row[1]} | {plain_count} | {row[2]} | {row[3]} |",
                  flush=True)
    for server in servers:
        server.shutdown()
    print(f"\n{time.monotonic() - began:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
