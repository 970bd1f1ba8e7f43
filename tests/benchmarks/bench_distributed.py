"""Benchmark perfgate on Locust's distributed engine against plain Locust distributed, side by side.

Run with ``uv run python tests/benchmarks/bench_distributed.py [--workers 1,2,4,8] [--runs 3] [--seconds 12]``.

For each number of workers (separate processes on this machine, as on other machines), it runs the same
saturating load (FastHttpUser, ``USERS_PER_WORKER`` users per worker, ``constant(0)`` wait, one ``GET /``
on the minimal keep-alive server of ``bench_plugin_overhead.py``) once as plain Locust (``locust --master``
and ``locust --worker``) and once as perfgate runs it (the master's command and environment of
``perfgate.measure.locust``, the workers' of ``perfgate worker``), the two in random order within each
round, the rounds one after the other, so that drift of the machine falls on both alike. It prints, per
cell, the median over the runs (and the range) of:

- requests/s reached, from Locust's own per-second counts over the same steady window as the plugin
  overhead benchmark (both variants load its meter file);
- the master's CPU, in % of one core, over that window (the master is one thread: 100 % is saturated);
- bytes/s from the workers to the master, counted by a TCP relay of this benchmark's between them
  (ZeroMQ's frames pass through it unchanged), and those bytes per request.

Then it projects, per variant, how many workers one master takes before it reaches Locust's 90 % warning:
the master's CPU at the largest worker count scaled in a straight line, at the same requests/s per worker, and
as requests/s in all. That is an extrapolation from at most 8 workers on one machine: a figure to size a fleet
by, not a measurement (a master's cost also grows with the endpoints in each report).

On a 2-core machine the workers, the master, the relay and the service share both cores, so the rate is
the machine's, not the service's: what the comparison shows is what perfgate's recorder costs in CPU per
request, the quantity that limits a worker. It prints figures and never asserts; the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from bench_plugin_overhead import (
    LOCUSTFILE,
    METER,
    WARMUP_S,
    cpu_model,
    start_server,
    steady_rps,
    stop_server,
    window_length,
)

from perfgate import __version__
from perfgate.config import ResolvedProfile
from perfgate.measure.contract import PluginSettings, run_identity
from perfgate.measure.distributed import worker_command
from perfgate.measure.locust import PLUGIN_PATH, _clean_env, _locust_env, locust_command
from perfgate.measure.service import free_port, log_tail, stop_process_group

USERS_PER_WORKER = 5
WARNING_PCT = 90.0
"""Locust's CPU warning: a master above it makes the run invalid."""
STARTUP_ALLOWANCE_S = 90.0
VARIANTS = ("plain Locust", "perfgate")


# --- the relay between workers and master ------------------------------------------------------


class Relay:
    """A TCP relay on 127.0.0.1 that counts the bytes each way (workers → master is ``up``)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0
        self.down = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                with self._lock:
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        for s in self._sockets:
            s.close()


# --- one distributed run -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    variant: str
    workers: int
    rps: float
    master_cpu_pct: float
    up_bytes_s: float
    cpu_warning: bool


def _at(samples: list[tuple[float, float, int]], when: float) -> tuple[float, int]:
    """Master CPU seconds and relayed bytes at epoch ``when``, from the nearest sample at or before it."""
    best = samples[0]
    for sample in samples:
        if sample[0] <= when:
            best = sample
    return best[1], best[2]


def run_once(workdir: Path, host: str, workers: int, seconds: float, variant: str, label: str) -> RunResult:
    rundir = workdir / label
    rundir.mkdir()
    locustfile, meter = workdir / "bench_locustfile.py", workdir / "bench_meter.py"
    master_port = free_port()
    profile = ResolvedProfile(
        name="bench", locustfile=str(locustfile), host=host, users=USERS_PER_WORKER * workers,
        spawn_rate=float(USERS_PER_WORKER * workers), run_time=seconds, warmup=0.0, expect_workers=workers,
        expect_workers_max_wait=60.0, master_bind_host="127.0.0.1", master_bind_port=master_port)
    command = locust_command(profile)
    files = command.index("-f") + 1
    env = _locust_env(profile, rundir, ())
    if variant == "perfgate":
        command[files] += f",{meter}"
        worker_env = {**_clean_env(), "PYTHONUNBUFFERED": "1", **PluginSettings(
            result_path=None, progress_path=None, identity=run_identity(locustfile, __version__),
            worker_group=secrets.token_hex(8)).to_env()}
    else:  # the same master without perfgate's plugin and variables; Locust's own -t ends it
        command[files] = f"{locustfile},{meter}"
        command[command.index("-t") + 1] = f"{seconds + 3:g}s"
        env = {k: v for k, v in env.items() if not k.startswith("PERFGATE_")}
        worker_env = dict(env)
    result_path = rundir / "meter.json"
    env["BENCH_METER_RESULT"] = str(result_path)
    relay = Relay(master_port)
    processes: list[subprocess.Popen[bytes]] = []
    samples: list[tuple[float, float, int]] = []
    try:
        with open(rundir / "master.log", "wb") as log:
            master = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(master)
        time.sleep(0.5)
        for number in range(workers):
            worker = worker_command(locustfile, PLUGIN_PATH, "127.0.0.1", relay.port)
            plugin = f",{PLUGIN_PATH}" if variant == "perfgate" else ""
            worker[worker.index("-f") + 1] = f"{locustfile}{plugin},{meter}"
            with open(rundir / f"worker{number}.log", "wb") as log:
                processes.append(subprocess.Popen(worker, cwd=workdir, env=worker_env, stdin=subprocess.DEVNULL,
                                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        watched = psutil.Process(master.pid)
        deadline = time.monotonic() + STARTUP_ALLOWANCE_S + seconds
        while master.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the master overran its run; log:\n{log_tail(rundir / 'master.log')}")
            try:
                times = watched.cpu_times()
                samples.append((time.time(), times.user + times.system, relay.up))
            except psutil.Error:
                pass
            time.sleep(0.25)
    finally:
        for process in processes:
            stop_process_group(process)
        relay.close()
    if not result_path.exists():
        raise RuntimeError(f"no statistics from the master; log:\n{log_tail(rundir / 'master.log')}")
    data = json.loads(result_path.read_text())
    if data["workers"] != workers:
        raise RuntimeError(f"expected {workers} workers, the master had {data['workers']}")
    per_second = {int(k): v for k, v in data["per_second"].items()}
    rps = steady_rps(per_second, seconds)
    # The same window as the rate's (see bench_plugin_overhead.steady_rps).
    start = min(per_second) + 1 + WARMUP_S
    end = start + window_length(seconds)
    (cpu0, up0), (cpu1, up1) = _at(samples, start), _at(samples, end)
    return RunResult(variant=variant, workers=workers, rps=rps, master_cpu_pct=100.0 * (cpu1 - cpu0) / (end - start),
                     up_bytes_s=(up1 - up0) / (end - start), cpu_warning=bool(data["cpu_warning"]))


# --- report ------------------------------------------------------------------------------------


def _median(values: list[float], digits: int = 0) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:,.{digits}f} ({low:,.{digits}f}–{high:,.{digits}f})"


def report(results: list[RunResult], counts: list[int]) -> str:
    lines = ["| workers | variant | requests/s | master CPU % of a core | bytes/s workers → master | bytes/request |",
             "|---|---|---|---|---|---|"]
    for n in counts:
        for variant in VARIANTS:
            cell = [r for r in results if r.workers == n and r.variant == variant]
            if not cell:
                continue
            per_request = [r.up_bytes_s / r.rps for r in cell if r.rps]
            warned = sum(r.cpu_warning for r in cell)
            lines.append(f"| {n} | {variant} | {_median([r.rps for r in cell])} | "
                         f"{_median([r.master_cpu_pct for r in cell], 1)} | {_median([r.up_bytes_s for r in cell])} | "
                         f"{_median(per_request, 1)} |" + (f" CPU warning in {warned}" if warned else ""))
    lines += ["", "| workers | perfgate's rate / plain Locust's (median of rounds) | master CPU added, % of a core |",
              "|---|---|---|"]
    for n in counts:
        plain = [r for r in results if r.workers == n and r.variant == VARIANTS[0]]
        ours = [r for r in results if r.workers == n and r.variant == VARIANTS[1]]
        ratios = [o.rps / p.rps for p, o in zip(plain, ours, strict=False) if p.rps]
        added = [o.master_cpu_pct - p.master_cpu_pct for p, o in zip(plain, ours, strict=False)]
        if ratios:
            lines.append(f"| {n} | {statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) | "
                         f"{statistics.median(added):+.1f} ({min(added):+.1f}–{max(added):+.1f}) |")
    lines += ["", "targets: perfgate's rate at least 0.95 of plain Locust's; master CPU added under 10 % of a core at "
              "8 workers", ""]
    lines.append("How many workers one master takes (straight-line projection to Locust's 90 % warning, from the "
                 "largest worker count):")
    top = max(counts)
    for variant in VARIANTS:
        cell = [r for r in results if r.workers == top and r.variant == variant]
        if not cell:
            continue
        cpu = statistics.median(r.master_cpu_pct for r in cell)
        rps = statistics.median(r.rps for r in cell)
        per_krps = cpu / (rps / 1000) if rps else float("inf")
        take = top * WARNING_PCT / cpu if cpu > 0 else float("inf")
        lines.append(f"- {variant}: {cpu:.1f} % of a core for {top} workers making {rps:,.0f} requests/s in all "
                     f"({per_krps:.2f} % per 1,000 requests/s): about {take:,.0f} such workers, "
                     f"{take / top * rps / 1000:,.0f} k requests/s in all")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (rounds)")
    parser.add_argument("--seconds", type=float, default=12.0, help="load per run, seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    rng = random.Random(args.seed)
    print(f"CPU {cpu_model()}, {psutil.cpu_count()} cores; perfgate {__version__}; FastHttpUser, "
          f"{USERS_PER_WORKER} users per worker, constant(0); {args.runs} runs × {args.seconds:g} s per cell; "
          "workers are processes on this machine")
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-distributed-") as folder:
        workdir = Path(folder)
        (workdir / "bench_locustfile.py").write_text(LOCUSTFILE)
        (workdir / "bench_meter.py").write_text(METER)
        server, port = start_server()
        results: list[RunResult] = []
        try:
            for round_number in range(args.runs):
                for n in counts:
                    order = list(VARIANTS)
                    rng.shuffle(order)
                    for variant in order:
                        label = f"r{round_number}-w{n}-{'perfgate' if variant == 'perfgate' else 'plain'}"
                        result = run_once(workdir, f"http://127.0.0.1:{port}", n, args.seconds, variant, label)
                        results.append(result)
                        print(f"  {label}: {result.rps:,.0f} requests/s, master {result.master_cpu_pct:.1f} %, "
                              f"{result.up_bytes_s:,.0f} B/s", file=sys.stderr, flush=True)
        finally:
            stop_server(server)
    print(report(results, counts))


if __name__ == "__main__":
    main()
