"""Benchmark `perfgate capacity` against services whose capacity is known: how close, how wide, how steady, how long.

Run with ``uv run python tests/benchmarks/bench_capacity.py [--searches 5] [--settings 1x20,2x25,4x20]``.

Each setting ``LIMITxMS`` is the known-knee service of the tests (``tests/fakes/knee_service.py``: ``LIMIT``
requests at once, each taking ``MS`` exactly), whose true capacity is ``LIMIT / MS`` requests per second. For
each setting the benchmark runs the whole ``perfgate capacity`` command ``--searches`` times, one after the other
(the settings interleaved round by round, so that drift of the machine falls on all alike), each search serving
the service afresh, with the objective ``p95 < 2 × MS + 10 ms`` (twice the service time: a queue shows at once),
``failures < 1 %``, 3 s steps with 1 s of warm-up, 2 refinements to 10 %. It prints, per setting:

- the true capacity and the median of the capacities found (and their range over the searches);
- the run-to-run spread: the coefficient of variation of the capacities found;
- the median interval and how many of the searches' intervals held the true capacity;
- the median steps and wall time of a search.

It prints figures and never asserts; the exit status is 0. Load goes to 127.0.0.1 only; every step is bounded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KNEE = Path(__file__).resolve().parent.parent / "fakes" / "knee_service.py"
LOCUSTFILE = '''from locust import HttpUser, constant, task


class Client(HttpUser):
    wait_time = constant(1)

    @task
    def work(self):
        self.client.get("/work")
'''


def search(folder: Path, limit: int, ms: float) -> tuple[dict, float]:
    serve = f"{sys.executable} {KNEE} --port {{port}} --limit {limit} --service-ms {ms:g}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "perfgate", "capacity", "-f", "locustfile.py", "--serve", serve,
         "--ready-url", "http://127.0.0.1:{port}/health", "--slo", f"p95<{2 * ms + 10:g}ms", "--slo", "failures<1%",
         "--start-rate", "20", "--repeats", "2", "--resolution", "10%", "-t", "3s", "--warmup", "1s",
         "--db", str(folder / "capacity.db"), "--format", "json"],
        cwd=folder, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"perfgate capacity failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=5)
    parser.add_argument("--settings", default="1x20,2x25,4x20", help="LIMITxMS, comma-separated")
    args = parser.parse_args()
    settings = [(int(a), float(b)) for a, b in (s.split("x") for s in args.settings.split(","))]
    results: dict[tuple[int, float], list[tuple[dict, float]]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-capacity-") as tmp:
        folder = Path(tmp)
        (folder / "locustfile.py").write_text(LOCUSTFILE)
        for round_ in range(args.searches):
            for limit, ms in settings:
                record, wall = search(folder, limit, ms)
                results[(limit, ms)].append((record, wall))
                print(f"round {round_ + 1}, {limit} x {ms:g} ms: {record['capacity']} "
                      f"[{record['low']}, {record['high']}] in {wall:.0f} s", file=sys.stderr)
    print(f"\n{args.searches} searches per setting (3 s steps, 1 s warm-up, 2 refinements to 10 %)\n")
    print("| service | true capacity/s | found/s (median, range) | spread (CV) | interval (median) "
          "| intervals holding the truth | steps | wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for (limit, ms), found in results.items():
        truth = limit / (ms / 1000)
        valid = [r for r, _ in found if r["capacity"] is not None]
        capacities = [r["capacity"] for r in valid]
        if not capacities:
            print(f"| {limit} at once × {ms:g} ms | {truth:.1f} | none found | | | 0 of {len(found)} | | |")
            continue
        cv = statistics.stdev(capacities) / statistics.fmean(capacities) if len(capacities) > 1 else 0.0
        low = statistics.median(r["low"] for r in valid)
        high = statistics.median(r["high"] for r in valid)
        held = sum(r["low"] <= truth <= r["high"] for r in valid)
        print(f"| {limit} at once × {ms:g} ms | {truth:.1f} | {statistics.median(capacities):.1f} "
              f"({min(capacities):.1f}–{max(capacities):.1f}) | {cv:.1%} | [{low:.1f}, {high:.1f}] "
              f"| {held} of {len(found)} | {statistics.median(len(r['steps']) for r, _ in found):.0f} "
              f"| {statistics.median(w for _, w in found):.0f} s |")


if __name__ == "__main__":
    main()
