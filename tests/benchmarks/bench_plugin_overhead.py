"""Benchmark the throughput cost of perfgate's recorder plugin inside Locust.

Run with ``uv run python tests/benchmarks/bench_plugin_overhead.py [--runs 3] [--seconds 10]``.

For FastHttpUser with 1 and 2 Locust processes, it runs the same saturating
load (``constant(0)`` wait, one ``GET /``) against a minimal keep-alive HTTP
server on 127.0.0.1, once without and once with perfgate's plugin, interleaved
(without, with, without, with, ...) so that drift of the machine affects both
variants alike. It prints the median achieved requests/s of each cell (with the
range over the runs), the plugin's overhead and the target; it never fails on
the figures.

What is run
    The with-plugin command is exactly perfgate's: ``perfgate.measure.locust.locust_command``
    and the environment of ``perfgate.measure.locust._locust_env`` for a
    ``ResolvedProfile`` (the plugin ends the test ``--seconds`` after it starts,
    Locust's ``-t`` is only the backstop, progress is written every second). The
    baseline is the same command without the plugin file and without the
    ``PERFGATE_*`` variables, with ``-t`` set to ``--seconds`` plus
    ``BASELINE_EXTRA_S`` (see below).

How throughput is measured
    Both variants also load a small meter file of this benchmark's own. It adds
    no per-request work: on the master (or the single local process), once
    Locust quits, after the workers' final reports, it writes Locust's own
    aggregated request statistics, including the number of requests completed
    in each wall-clock second. (``--json-file`` is not used because with
    ``--processes`` every worker writes the same file as the master, and the
    ``--csv`` files are rewritten once a second, not when the run ends.)

    The rate is the steady-state one over the same window in both variants:
    the requests completed in ``--seconds - 2 - WARMUP_S - COOLDOWN_S`` whole
    wall-clock seconds, starting after the first (partial) second with a
    request and ``WARMUP_S`` more (spawning, connecting), divided by the
    length of the window. The window thus ends at least ``COOLDOWN_S`` whole
    seconds before the with-plugin run stops. Locust's own ``-t`` ends a run
    one to two seconds sooner after its first request than the plugin does, so
    the baseline gets ``BASELINE_EXTRA_S`` more seconds of load, which are not
    measured. Ramp-up and shutdown, which the plugin does not affect, neither
    dilute the difference nor weigh differently in the two variants.

    The overhead is computed from the medians of the two variants; the median
    of the overheads of each interleaved pair is printed too, as it is less
    sensitive to drift between pairs. On a shared or virtual machine the run
    to run spread can exceed the target by far; compare it with the overhead
    before drawing conclusions.

On a small machine the service shares the CPU with Locust; its average CPU use
is printed below the table so that one can see Locust, not the service, is the
bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import psutil

from perfgate.config import ResolvedProfile
from perfgate.measure.locust import BACKSTOP_S, PLUGIN_PATH, _locust_env, locust_command
from perfgate.measure.service import free_port, log_tail, stop_process_group

PROCESS_COUNTS = (1, 2)
USERS = 20
SPAWN_RATE = 20.0
WARMUP_S = 2
COOLDOWN_S = 1
MIN_WINDOW_S = 3
BASELINE_EXTRA_S = 3.0
TARGET_OVERHEAD_PCT = 3.0
STARTUP_ALLOWANCE_S = 60.0
SERVER_READY_S = 10.0

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

LOCUSTFILE = '''\
from locust import FastHttpUser, constant, task


class BenchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
'''

METER = '''\
"""Writes Locust's aggregated request statistics when Locust quits (master or local runner only)."""

import json
import os

from locust import events
from locust.runners import MasterRunner, WorkerRunner

_environment = None
_workers = []


@events.init.add_listener
def _on_init(environment, **_kwargs):
    global _environment
    _environment = environment


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    # Workers have connected by now; at quit they may already have left.
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _workers.append(len(runner.clients))


@events.quit.add_listener
def _on_quit(exit_code, **_kwargs):
    runner = _environment.runner if _environment is not None else None
    if runner is None or isinstance(runner, WorkerRunner):
        return
    total = runner.stats.total
    data = {
        "num_requests": total.num_requests,
        "num_failures": total.num_failures,
        "per_second": {str(k): v for k, v in total.num_reqs_per_sec.items()},
        "workers": max(_workers, default=0),
        "cpu_warning": bool(getattr(runner, "cpu_warning_emitted", False)
                            or getattr(runner, "worker_cpu_warning_emitted", False)),
        "exit_code": exit_code,
    }
    path = os.environ["BENCH_METER_RESULT"]
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)
'''


# --- the service -------------------------------------------------------------------------------


class _OkProtocol(asyncio.Protocol):
    """Answers every complete request head with a tiny 200, keeping the connection open."""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        buffer = self.buffer + data
        count = buffer.count(b"\r\n\r\n")
        if count:
            self.transport.write(RESPONSE * count)
            buffer = buffer[buffer.rfind(b"\r\n\r\n") + 4:]
        self.buffer = buffer


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_OkProtocol, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(main())


def start_server() -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdin=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + SERVER_READY_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_server(process)
                raise SystemExit(f"the benchmark service did not start on 127.0.0.1:{port}")
            time.sleep(0.05)


def stop_server(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- one Locust run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    rps: float
    requests: int
    failures: int
    cpu_warning: bool
    service_cpu_pct: float
    locust_cores: float


def window_length(seconds: float) -> int:
    return int(seconds) - 2 - WARMUP_S - COOLDOWN_S


def steady_rps(per_second: dict[int, int], seconds: float) -> float:
    """Requests per second over the measured window (see the module's docstring)."""
    if not per_second:
        raise RuntimeError("Locust recorded no requests")
    first, last = min(per_second), max(per_second)
    window = range(first + 1 + WARMUP_S, first + 1 + WARMUP_S + window_length(seconds))
    if window.stop > last - COOLDOWN_S:
        raise RuntimeError(f"the load lasted only {last - first} whole seconds, too short for the measured window")
    return sum(per_second.get(s, 0) for s in window) / len(window)


def run_once(workdir: Path, host: str, processes: int, seconds: float, with_plugin: bool,
             service: psutil.Process, label: str) -> RunResult:
    rundir = workdir / label
    rundir.mkdir()
    profile = ResolvedProfile(
        name="bench", locustfile=str(workdir / "bench_locustfile.py"), host=host, users=USERS,
        spawn_rate=SPAWN_RATE, run_time=seconds, warmup=0.0, processes=processes)
    command = locust_command(profile, master_port=free_port() if processes > 1 else None)
    env = _locust_env(profile, rundir)
    meter = workdir / "bench_meter.py"
    files = command.index("-f") + 1
    if with_plugin:
        command[files] += f",{meter}"
    else:
        command[files] = f"{profile.locustfile},{meter}"
        command[command.index("-t") + 1] = f"{seconds + BASELINE_EXTRA_S:g}s"
        env = {k: v for k, v in env.items() if not k.startswith("PERFGATE_")}
    assert (str(PLUGIN_PATH) in command[files]) == with_plugin
    result_path = rundir / "meter.json"
    env["BENCH_METER_RESULT"] = str(result_path)
    log_path = rundir / "locust.log"

    deadline = time.monotonic() + STARTUP_ALLOWANCE_S + seconds + BACKSTOP_S
    service_cpu_before = cpu_seconds(service)
    children_before = children_cpu_seconds()
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Locust overran its {seconds:g}s run and was stopped; log:\n{log_tail(log_path)}")
            time.sleep(0.2)
    finally:
        stop_process_group(process)
    elapsed = time.monotonic() - started
    service_cpu_pct = 100.0 * (cpu_seconds(service) - service_cpu_before) / elapsed
    # Locust's master reaps its workers, so their CPU time reaches this process's children's usage.
    locust_cores = (children_cpu_seconds() - children_before) / elapsed

    if not result_path.exists():
        raise RuntimeError(
            f"Locust exited with code {process.returncode} without statistics; log:\n{log_tail(log_path)}")
    data = json.loads(result_path.read_text())
    if processes > 1 and data["workers"] != processes:
        raise RuntimeError(f"expected {processes} workers, Locust had {data['workers']}; log:\n{log_tail(log_path)}")
    if with_plugin and not (rundir / "recording.bin").exists():
        raise RuntimeError(f"the plugin wrote no recording; log:\n{log_tail(log_path)}")
    rps = steady_rps({int(k): v for k, v in data["per_second"].items()}, seconds)
    return RunResult(rps=rps, requests=data["num_requests"], failures=data["num_failures"],
                     cpu_warning=data["cpu_warning"], service_cpu_pct=service_cpu_pct, locust_cores=locust_cores)


# --- report ------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def print_environment(args: argparse.Namespace) -> None:
    print(f"CPU:     {cpu_model()}")
    print(f"cores:   {os.cpu_count()}")
    print(f"Python:  {platform.python_version()} ({platform.python_implementation()})")
    print(f"Locust:  {version('locust')}")
    print(f"OS:      {platform.system()} {platform.release()}")
    print(f"load:    FastHttpUser, {USERS} users, wait constant(0), GET / on a local keep-alive asyncio server; "
          f"{args.runs} runs x {args.seconds:g} s per cell, interleaved")
    print(f"rate:    requests/s over the same {window_length(args.seconds)} whole seconds of each run, "
          f"starting {WARMUP_S} s after the first whole second with requests")
    print()


def fmt_rps(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def overhead_pct(without: float, with_: float) -> float:
    return 100.0 * (without - with_) / without


def spread_pct(values: list[float]) -> float:
    return 100.0 * (max(values) - min(values)) / statistics.median(values)


def print_table(results: dict[tuple[int, bool], list[RunResult]]) -> None:
    header = ["processes", "without plugin rps (median, min-max)", "with plugin rps (median, min-max)",
              "overhead %", "target", "within target"]
    rows = []
    for processes in PROCESS_COUNTS:
        without = [r.rps for r in results[(processes, False)]]
        with_ = [r.rps for r in results[(processes, True)]]
        overhead = overhead_pct(statistics.median(without), statistics.median(with_))
        rows.append([str(processes), fmt_rps(without), fmt_rps(with_), f"{overhead:.1f}",
                     f"<= {TARGET_OVERHEAD_PCT:g} %", "yes" if overhead <= TARGET_OVERHEAD_PCT else "no"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {0, 1, 2, 3}

    def line(cells: list[str]) -> str:
        padded = (
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        )
        return "  ".join(padded).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print()
    print("overhead % = (median without - median with) / median without; negative means the runs with the plugin "
          "were faster")
    print()
    for processes in PROCESS_COUNTS:
        without, with_ = results[(processes, False)], results[(processes, True)]
        paired = [overhead_pct(a.rps, b.rps) for a, b in zip(without, with_, strict=False)]
        print(f"{processes} process(es): overhead per interleaved pair "
              f"{', '.join(f'{p:.1f}' for p in paired)} % (median {statistics.median(paired):.1f} %); "
              f"run-to-run spread (max-min)/median: without {spread_pct([r.rps for r in without]):.0f} %, "
              f"with {spread_pct([r.rps for r in with_]):.0f} %")
        for with_plugin, runs in ((False, without), (True, with_)):
            print(f"    {'with   ' if with_plugin else 'without'} plugin: "
                  f"Locust CPU {statistics.median(r.locust_cores for r in runs):.2f} cores, "
                  f"service CPU {statistics.median(r.service_cpu_pct for r in runs):.0f} % of a core "
                  f"(medians over whole runs, start-up included); failed requests {sum(r.failures for r in runs)}; "
                  f"Locust CPU warnings in {sum(r.cpu_warning for r in runs)}/{len(runs)} runs")


LISTENER_TIMING = r"""
import importlib.util, sys, time, timeit
spec = importlib.util.spec_from_file_location("perfgate_recorder", sys.argv[1])
recorder = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recorder)
ok = dict(request_type="GET", name="/items/{id}", response_time=12.345, response_length=120, response=None,
          context={}, exception=None, start_time=time.time(), url="http://127.0.0.1:1/items/1")
failed = dict(ok, exception=RuntimeError("HTTP 500 for url: http://127.0.0.1:1/items/1"))
def empty(request_type, name, response_time, exception=None, start_time=None, **kwargs):
    pass
n = 200_000
for label, fn, kwargs in (("empty listener (call cost)", empty, ok), ("recorder, success", recorder._on_request, ok),
                          ("recorder, failure", recorder._on_request, failed)):
    best = min(timeit.repeat(lambda: fn(**kwargs), number=n, repeat=5)) / n
    recorder._recordings.clear()
    print(f"{label}	{best * 1e9:.0f}")
"""


def print_listener_cost(results: dict[tuple[int, bool], list[RunResult]]) -> None:
    """The recorder's own CPU time per request, which a noisy machine can still resolve.

    It is timed in a separate interpreter (the plugin imports Locust, which
    monkey-patches), and set against the CPU time Locust spends per request in
    the 1-process runs without the plugin.
    """
    done = subprocess.run([sys.executable, "-c", LISTENER_TIMING, str(PLUGIN_PATH)], capture_output=True,
                          text=True, timeout=300, check=True)
    rows = [line.split("\t") for line in done.stdout.strip().splitlines()]
    baseline = results[(1, False)]
    per_request_ns = statistics.median(r.locust_cores / r.rps for r in baseline if r.rps) * 1e9
    print(f"recorder listener, best of 5 x 200,000 calls; Locust's own CPU per request (1 process, "
          f"no plugin): {per_request_ns / 1000:,.0f} us")
    print(f"{'listener':<30} {'ns/call':>8} {'share of Locust CPU per request':>32}")
    for label, ns in rows:
        print(f"{label:<30} {int(ns):>8,} {100 * int(ns) / per_request_ns:>31.2f}%")
    print(f"memory per recorded request: {8 + 8 + 2} bytes (start time, latency, outcome code)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (median taken; default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per run (default 10)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if window_length(args.seconds) < MIN_WINDOW_S:
        parser.error(f"--seconds must be at least {2 + WARMUP_S + COOLDOWN_S + MIN_WINDOW_S}")

    print_environment(args)
    results: dict[tuple[int, bool], list[RunResult]] = {
        (p, w): [] for p in PROCESS_COUNTS for w in (False, True)}
    server, port = start_server()
    try:
        service = psutil.Process(server.pid)
        with tempfile.TemporaryDirectory(prefix="perfgate-bench-") as tmp:
            workdir = Path(tmp)
            (workdir / "bench_locustfile.py").write_text(LOCUSTFILE)
            (workdir / "bench_meter.py").write_text(METER)
            host = f"http://127.0.0.1:{port}"
            for run in range(args.runs):
                for processes in PROCESS_COUNTS:
                    for with_plugin in (False, True):
                        label = f"run{run + 1}-p{processes}-{'with' if with_plugin else 'without'}"
                        result = run_once(workdir, host, processes, args.seconds, with_plugin, service, label)
                        results[(processes, with_plugin)].append(result)
                        print(f"run {run + 1}/{args.runs}  processes {processes}  "
                              f"{'with   ' if with_plugin else 'without'} plugin: {result.rps:9,.0f} req/s  "
                              f"({result.requests:,} requests, {result.failures} failed)", flush=True)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_server(server)
    print()
    print_table(results)
    print()
    print_listener_cost(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
