"""The service under test: start it, wait until it is ready, watch its CPU and memory, stop it.

The service runs in its own process group so that stopping it stops everything
it started (a shell, a reloader, worker processes), and nothing else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from perfgate import interrupts
from perfgate.errors import ServiceError
from perfgate.records import ResourceSample, ServiceUsage

SAMPLE_INTERVAL_S = 1.0
STOP_GRACE_S = 3.0
"""Time a process group has between SIGTERM and SIGKILL when perfgate ends normally."""
CI_STOP_GRACE_S = 2.0
"""The same in CI (``CI`` or ``GITHUB_ACTIONS`` set), where GitHub kills a cancelled job's process tree about
10 s after its first signal: a signal that arrives while a normal stop is under way still leaves time for the
rest of the clean-up at the shorter grace below."""
INTERRUPTED_STOP_GRACE_S = 1.0
"""The same once perfgate was told to stop (SIGINT, SIGTERM, SIGHUP): nothing of the unfinished run is kept,
so a graceful shutdown buys nothing, and Locust, the service and a setup command are stopped one after the
other; three of them and the worktree's removal stay within 5 s."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 12) -> str:
    """The last lines of a log file, indented for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "  (no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  | {line}" for line in tail) or "  (log is empty)"


def stop_grace_s() -> float:
    """Seconds between SIGTERM and SIGKILL when perfgate stops a process group now."""
    if interrupts.received() is not None:
        return INTERRUPTED_STOP_GRACE_S
    if os.environ.get("CI") or os.environ.get("GITHUB_ACTIONS"):
        return CI_STOP_GRACE_S
    return STOP_GRACE_S


def stop_process_group(process: subprocess.Popen, grace_s: float | None = None) -> None:
    """SIGTERM the process's own group, then SIGKILL it if it does not exit in time.

    The group is SIGKILLed in any case, also when a stop signal interrupts the wait: nothing is left behind.
    """
    grace_s = stop_grace_s() if grace_s is None else grace_s
    try:
        if process.poll() is None:
            _kill_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
    finally:
        _kill_group(process.pid, signal.SIGKILL)  # the leader after its grace, or stragglers it left behind
        try:
            process.wait(timeout=max(grace_s, 1.0))
        except subprocess.TimeoutExpired:
            pass


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _ResourceSampler(threading.Thread):
    """Samples the CPU and RSS of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="perfgate-resource-sampler", daemon=True)
        self._root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {}
        self._stop_event = threading.Event()
        self._start = time.monotonic()
        self.samples: list[ResourceSample] = []

    def _tree(self) -> list[psutil.Process]:
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []
        # cpu_percent() measures since its previous call on the same object: keep the objects.
        current = {p.pid: self._known.get(p.pid, p) for p in processes}
        self._known = current
        return list(current.values())

    def _sample(self) -> None:
        cpu = rss = 0.0
        for process in self._tree():
            try:
                cpu += process.cpu_percent(None)
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        self.samples.append(ResourceSample(
            t=round(time.monotonic() - self._start, 3), cpu_percent=round(cpu, 1), rss_mb=round(rss / 2**20, 2)))

    def run(self) -> None:
        self._tree()
        for process in self._known.values():
            try:
                process.cpu_percent(None)  # prime
            except psutil.Error:
                pass
        while not self._stop_event.wait(SAMPLE_INTERVAL_S):
            self._sample()

    def finish(self) -> ServiceUsage | None:
        self._stop_event.set()
        self.join(timeout=5)
        if not self.samples:
            return None
        cpus = [s.cpu_percent for s in self.samples]
        rss = [s.rss_mb for s in self.samples]
        return ServiceUsage(
            cpu_mean=round(sum(cpus) / len(cpus), 1), cpu_max=max(cpus),
            rss_mean_mb=round(sum(rss) / len(rss), 2), rss_max_mb=max(rss),
            rss_growth_mb=round(rss[-1] - rss[0], 2), samples=self.samples,
        )


class RunningService:
    """A started, ready service; ``usage()`` stops sampling and returns what was seen."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self._sampler: _ResourceSampler | None = None

    def start_sampling(self) -> None:
        try:
            self._sampler = _ResourceSampler(self.process.pid)
        except psutil.Error:
            return
        self._sampler.start()

    def usage(self) -> ServiceUsage | None:
        return self._sampler.finish() if self._sampler else None

    def check_alive(self, what: str = "the service") -> None:
        code = self.process.poll()
        if code is not None:
            raise ServiceError(
                f"{what} exited with code {code} during the run; last log lines:\n{log_tail(self.log_path)}")


def _http_ready(url: str) -> str | None:
    """``None`` once ``url`` answers 2xx, else what is wrong."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def _port_open(port: int) -> str | None:
    """``None`` once something accepts connections on 127.0.0.1:``port``, else why not."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _wait_ready(process: subprocess.Popen, what: str, probe: Callable[[], str | None], timeout_s: float,
                log_path: Path, hint: str) -> None:
    deadline = time.monotonic() + timeout_s
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ServiceError(
                f"the service exited with code {code} before {what} was ready; fix the serve command. "
                f"Last log lines:\n{log_tail(log_path)}")
        problem = probe()
        if problem is None:
            return
        last_problem = problem
        time.sleep(0.2)
    raise ServiceError(
        f"the service was not ready at {what} within {timeout_s:g}s ({last_problem}); check the serve command"
        f"{hint}, or raise the ready timeout. Last log lines:\n{log_tail(log_path)}")


@contextmanager
def serve(command: str, ready_url: str | None, *, port: int | None, ready_timeout_s: float,
          log_path: Path, cwd: Path | None = None, cpus: frozenset[int] | None = None) -> Iterator[RunningService]:
    """Run ``command`` (``{port}`` filled in) until the block ends; stop its process group always.

    ``cpus``: the only CPUs the service (and every process it starts) may run on.
    """
    port = port or free_port()
    argv = command.replace("{port}", str(port))
    url = ready_url.replace("{port}", str(port)) if ready_url else None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(argv, shell=True, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus))
        except OSError as exc:
            raise ServiceError(f"cannot start the service ({exc}); check the serve command") from None
    service = RunningService(process, port, log_path)
    try:
        if url:
            _wait_ready(process, url, lambda: _http_ready(url), ready_timeout_s, log_path, " and --ready-url")
        elif "{port}" in command:
            # No ready URL: the service is taken as ready once its port accepts connections.
            _wait_ready(process, f"127.0.0.1:{port}", lambda: _port_open(port), ready_timeout_s, log_path,
                        " (or give --ready-url, a URL that answers 2xx once it is ready)")
        service.start_sampling()
        yield service
    finally:
        service.usage()  # stops the sampler if the caller did not
        stop_process_group(process)
