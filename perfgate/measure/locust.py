"""Run Locust headless as a child process and collect its recording.

Locust runs in its own process group (``import locust`` monkey-patches the whole
interpreter with gevent, so it never runs inside perfgate's process), in the
folder perfgate was started in (as plain Locust would), with perfgate's
listener-only plugin beside the user's locustfile. The runner checks
what it can before starting (the locustfile compiles, the host accepts
connections), finds the host in the User classes when none was given,
follows progress through a file the plugin rewrites every second, and
kills Locust's process group if it overstays its planned end.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from perfgate import __version__
from perfgate.config import ResolvedProfile
from perfgate.errors import ConfigError, LoadRunError, LocustfileError, TargetUnreachableError
from perfgate.measure.contract import (
    PluginSettings,
    Recording,
    RecordingFormatError,
    StepLoad,
    read_progress,
    read_recording,
    run_identity,
)
from perfgate.measure.distributed import check_master_run, master_arguments, worker_command
from perfgate.measure.service import free_port, log_tail, stop_process_group

PLUGIN_PATH = Path(__file__).parent / "plugin" / "perfgate_recorder.py"
RECORDING_FILENAME = "recording.bin"
PROGRESS_FILENAME = "progress.json"
STARTUP_ALLOWANCE_S = 60.0
"""Time Locust may take to start (and, distributed, to gather its workers)."""
SHUTDOWN_ALLOWANCE_S = 30.0
BACKSTOP_S = 15.0
SHAPE_CEILING_S = 1800.0
"""A locustfile's own LoadTestShape runs as designed, but never longer than this unless -t says otherwise."""


@dataclass(frozen=True)
class Progress:
    """A live view of a running load test, from Locust's own (rounded) statistics."""

    elapsed_s: float
    planned_s: float
    users: int
    requests: int
    failures: int
    current_rps: float
    current_p95_ms: float | None


ProgressCallback = Callable[[Progress], None]


def check_locustfile(path: Path) -> None:
    """The locustfile exists and compiles; a syntax error is the user's to fix, not Locust's to crash on."""
    if not path.exists():
        raise LocustfileError(f"locustfile not found: {path}; pass -f PATH or fix locustfile in the config")
    if not path.is_file():
        raise LocustfileError(f"locustfile is not a file: {path}; pass the path of a .py file with -f")
    try:
        source = path.read_bytes()
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise LocustfileError(f"{path}:{exc.lineno}: {exc.msg}; fix the locustfile's syntax") from None
    except (OSError, ValueError) as exc:
        raise LocustfileError(f"cannot read locustfile {path}: {exc}") from None


LOCUST_CONFIG_FILES = ("locust.conf", "pyproject.toml")
"""Files Locust reads settings from in the folder it runs in (besides ``~/.locust.conf``)."""
MANAGED_FLAGS = frozenset({
    "-f", "--locustfile", "-H", "--host", "-u", "--users", "-r", "--spawn-rate", "-t", "--run-time",
    "-T", "--tags", "-E", "--exclude-tags", "--processes", "--headless", "--autostart", "--only-summary",
    "--stop-timeout", "--exit-code-on-error", "--config", "--config-users", "--master", "--worker",
    "--master-port", "--master-bind-port", "--master-host", "--expect-workers", "--expect-workers-max-wait",
    "--master-bind-host", "--web-ui", "--autoquit",
})
"""Locust flags perfgate sets itself: after ``--`` they would change the load behind the recorded profile."""


def check_locust_config(cwd: Path, home: Path | None = None) -> None:
    """No Locust config file that Locust would read by itself: its settings would apply unrecorded."""
    found = [cwd / name for name in LOCUST_CONFIG_FILES if (cwd / name).is_file()]
    found.append((home or Path.home()) / ".locust.conf")
    for path in found:
        if not path.is_file():
            continue
        if path.name == "pyproject.toml":
            try:
                tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
                continue  # Locust would refuse it too; perfgate's own config check reports a bad pyproject
            if not isinstance(tool, dict) or "locust" not in tool:
                continue
            what = f"{path} has [tool.locust]"
        else:
            what = f"{path} exists"
        raise ConfigError(f"{what}: Locust would apply its settings without perfgate recording them; move them "
                          "to the perfgate profile (or after --) and remove the Locust config")


def check_locust_args(args: list[str]) -> None:
    """Extra Locust arguments do not set what perfgate sets (and records) itself."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in MANAGED_FLAGS or (
            flag[:2] in {"-f", "-H", "-u", "-r", "-t", "-T", "-E"} and not flag.startswith("--")
        ):
            raise ConfigError(f"{arg!r} after --: perfgate sets {flag} itself and records it; pass it before -- "
                              "as perfgate's own option")


_HOSTS_MARKER = "perfgate-user-hosts:"
_SHAPES_MARKER = "perfgate-shapes:"
_FIND_HOSTS = f"""
import json, sys
from locust.util.load_locustfile import load_locustfile
user_classes, shapes = load_locustfile(sys.argv[1])
hosts = {{name: (None if cls.host is None else str(cls.host)) for name, cls in user_classes.items()}}
print({_SHAPES_MARKER!r} + json.dumps([type(shape).__name__ for shape in shapes]))
print({_HOSTS_MARKER!r} + json.dumps(hosts))
"""


def user_class_hosts(locustfile: Path, cwd: Path, timeout_s: float = 60.0) -> dict[str, str | None]:
    """Each User class's ``host`` attribute, read by Locust's own loader in a child process."""
    return inspect_locustfile(locustfile, cwd, timeout_s)[0]


_inspected: dict[tuple[str, int, int, str], tuple[dict[str, str | None], list[str]]] = {}
"""What :func:`inspect_locustfile` found, by the file's path, modification time and size, and the folder."""


def inspect_locustfile(locustfile: Path, cwd: Path,
                       timeout_s: float = 60.0) -> tuple[dict[str, str | None], list[str]]:
    """Each User class's ``host`` and the LoadTestShape classes, read by Locust's own loader in a child process.

    Importing a locustfile costs about a second (Locust and gevent load), so an unchanged file is read once per
    process: a run prepares its profile twice (record, then the Locust runner), and ``ab`` runs the same
    locustfile in every run.
    """
    try:
        stat = locustfile.stat()
    except OSError:
        stat = None
    key = (str(locustfile.resolve()), stat.st_mtime_ns, stat.st_size, str(cwd.resolve())) if stat else None
    if key is not None and key in _inspected:
        hosts, shapes = _inspected[key]
        return dict(hosts), list(shapes)
    found = _inspect(locustfile, cwd, timeout_s)
    if key is not None:
        _inspected[key] = found
    return dict(found[0]), list(found[1])


def _inspect(locustfile: Path, cwd: Path, timeout_s: float) -> tuple[dict[str, str | None], list[str]]:
    try:
        done = subprocess.run([sys.executable, "-c", _FIND_HOSTS, str(locustfile)], check=False, cwd=cwd,
                              env=_clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout_s, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise LocustfileError(f"importing {locustfile} took over {timeout_s:g}s (perfgate reads its User classes "
                              "and shapes before the load): a locustfile must not block at import") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith(_HOSTS_MARKER)]
    if done.returncode != 0 or not lines:
        last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no output")
        raise LocustfileError(f"Locust cannot load {locustfile} ({last.strip()}); fix the locustfile "
                              f"(`locust -f {locustfile.name} --headless` shows the same error)")
    shapes = [line for line in done.stdout.splitlines() if line.startswith(_SHAPES_MARKER)]
    return (json.loads(lines[-1][len(_HOSTS_MARKER):]),
            json.loads(shapes[-1][len(_SHAPES_MARKER):]) if shapes else [])


def with_load_shape(profile: ResolvedProfile, shapes: list[str]) -> ResolvedProfile:
    """The profile with the locustfile's own LoadTestShape: not cut by the profile's run time unless -t was given."""
    if not shapes or profile.load_shape:
        return profile
    if profile.step is not None:
        raise ConfigError(f"{profile.locustfile} has its own LoadTestShape ({shapes[0]}) and the profile is a step "
                          "load; remove step from the profile or the shape from the locustfile")
    run_time = profile.run_time if profile.run_time_given else SHAPE_CEILING_S
    return profile.model_copy(update={"load_shape": shapes[0], "run_time": run_time})


def with_user_class_host(profile: ResolvedProfile, cwd: Path) -> ResolvedProfile:
    """The profile with the host its User classes set, when no host was given; the classes keep their own.

    Also finds the locustfile's own LoadTestShape (see :func:`with_load_shape`).
    """
    if profile.load_shape:
        return profile
    hosts, shapes = inspect_locustfile(Path(profile.locustfile), cwd)
    profile = with_load_shape(profile, shapes)
    if not profile.host_from_user_classes or profile.host:
        return profile
    chosen = {name: host for name, host in hosts.items() if not profile.user_classes or name in profile.user_classes}
    distinct = sorted({host for host in chosen.values() if host})
    if not distinct:
        raise ConfigError(f"no host: no User class in {profile.locustfile} sets host; pass -H http://127.0.0.1:PORT "
                          "or set host in the config")
    if len(distinct) > 1:
        named = ", ".join(f"{name}: {host}" for name, host in sorted(chosen.items()) if host)
        raise ConfigError(f"the User classes set different hosts ({named}); pass -H URL for all of them, or choose "
                          "classes with one host")
    return profile.model_copy(update={"host": distinct[0]})


def prepare(profile: ResolvedProfile, cwd: Path) -> ResolvedProfile:
    """Every check that needs no service, and the profile with its host found when the User classes set it."""
    check_locustfile(Path(profile.locustfile))
    check_locust_config(cwd)
    check_locust_args(list(profile.locust_args))
    return with_user_class_host(profile, cwd)


def check_host(host: str, timeout_s: float = 3.0, *, any_scheme: bool = False) -> None:
    """The host's port accepts a TCP connection.

    Any scheme a User class's client understands (``tcp://``, ``grpc://``, a database) is accepted; its port
    is checked when it names one. ``any_scheme``: the host is a User class's own, which may have no
    host part and is not checked unless http(s); one given with -H needs a host and a port.
    """
    parts = urlsplit(host)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        port = None
    if any_scheme and parts.scheme not in ("http", "https"):
        return  # the class's own client may connect lazily or elsewhere; Locust reports what fails
    if not parts.scheme or not parts.hostname or port is None:
        if any_scheme and parts.scheme:
            return
        raise ConfigError(f"host {host!r} is not a URL with a host and port; pass -H http://127.0.0.1:PORT "
                          "(or the scheme your User class's client speaks, e.g. tcp://127.0.0.1:PORT)")
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise TargetUnreachableError(
            f"cannot connect to {host} ({reason}); start the service first or let perfgate start it with --serve"
        ) from None


def locust_command(profile: ResolvedProfile, master_port: int | None = None) -> list[str]:
    """The Locust command line for a profile; values use Locust's own flags."""
    # The plugin ends the test run_time after it starts; Locust's -t is only a backstop.
    backstop = round(profile.run_time + BACKSTOP_S)
    command = [
        sys.executable, "-m", "locust",
        # Class names come first: -T, -E and --config-users take every word after them.
        *profile.user_classes,
        "-f", f"{profile.locustfile},{PLUGIN_PATH}",
        "--headless", "--only-summary",
        # A host found in the User classes is not passed: -H would replace every class's own host.
        *(() if profile.host_from_user_classes else ("-H", profile.host)),
        "-t", f"{backstop}s",
        "--stop-timeout", f"{profile.stop_timeout:g}",
        # perfgate judges failures itself; a failed request is data, not a crash.
        "--exit-code-on-error", "0",
    ]
    if profile.step is None and profile.load_shape is None:
        command += ["-u", str(profile.users), "-r", f"{profile.spawn_rate:g}"]
    if profile.tags:
        command += ["-T", *profile.tags]
    if profile.exclude_tags:
        command += ["-E", *profile.exclude_tags]
    if profile.user_classes:
        weights = [{"user_class_name": name, "weight": w} for name, w in profile.user_classes.items()]
        command += ["--config-users", json.dumps(weights)]
    if profile.expect_workers:
        command += master_arguments(profile)
    elif profile.processes > 1:
        port = master_port or free_port()
        command += ["--processes", str(profile.processes), "--master-port", str(port),
                    "--master-bind-port", str(port)]
    return command + list(profile.locust_args)


def _clean_env() -> dict[str, str]:
    # LOCUST_* variables would silently change the load; what runs must be what is recorded.
    return {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}


def plugin_settings(profile: ResolvedProfile, workdir: Path,
                    duet: tuple[tuple[str, str], ...] = ()) -> PluginSettings:
    """What the plugin is told for a run of ``profile`` whose files are in ``workdir``."""
    step = None if profile.step is None else StepLoad(
        users=profile.users, spawn_rate=profile.spawn_rate, step_users=profile.step.step_users,
        step_time_s=profile.step.step_time, run_time_s=profile.run_time)
    return PluginSettings(result_path=workdir / RECORDING_FILENAME, progress_path=workdir / PROGRESS_FILENAME,
                          run_time_s=profile.run_time, step=step, duet=duet, arrival_rate=profile.arrival_rate or 0.0,
                          identity=run_identity(Path(profile.locustfile), __version__) if profile.expect_workers
                          else "")


def _locust_env(profile: ResolvedProfile, workdir: Path, duet: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {**_clean_env(), "PYTHONUNBUFFERED": "1", **plugin_settings(profile, workdir, duet).to_env()}


def _read_progress(path: Path, planned_s: float) -> Progress | None:
    snapshot = read_progress(path)
    if snapshot is None:
        return None
    start = snapshot.test_start or snapshot.time
    return Progress(
        elapsed_s=max(0.0, snapshot.time - start), planned_s=planned_s, users=snapshot.users,
        requests=snapshot.requests, failures=snapshot.failures, current_rps=snapshot.current_rps,
        current_p95_ms=snapshot.current_p95_ms,
    )


def run_locust(profile: ResolvedProfile, workdir: Path, *, cwd: Path | None = None,
               on_progress: ProgressCallback | None = None, poll_s: float = 0.5,
               duet: tuple[tuple[str, str], ...] = (), cpus: frozenset[int] | None = None) -> Recording:
    """Run one bounded, headless Locust test and return every request it recorded.

    ``duet``: ``(side, URL)`` of the two versions of a same-moment run, users bound to them alternately
    (see :mod:`perfgate.measure.duet`); ``cpus``: the only CPUs Locust may run on.

    Locust runs in ``cwd`` (default: the current folder), so a locustfile's relative paths mean what they
    mean in plain Locust. Raises :class:`LoadRunError` when Locust crashes, hangs past its planned end
    (it is then killed by process group) or leaves no recording.
    """
    cwd = cwd or Path.cwd()
    profile = prepare(profile, cwd)
    for host in [profile.host, *(url for _, url in duet)]:
        check_host(host, any_scheme=profile.host_from_user_classes and not duet)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "locust.log"
    env = _locust_env(profile, workdir, duet)
    result_path, progress_path = workdir / RECORDING_FILENAME, workdir / PROGRESS_FILENAME
    deadline = (
        time.monotonic()
        + STARTUP_ALLOWANCE_S
        + profile.run_time
        + BACKSTOP_S
        + profile.stop_timeout
        + SHUTDOWN_ALLOWANCE_S
        + (profile.expect_workers_max_wait if profile.expect_workers else 0.0)
    )
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            locust_command(profile),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
        )
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                stop_process_group(process)
                allowed = profile.run_time + STARTUP_ALLOWANCE_S + SHUTDOWN_ALLOWANCE_S
                raise LoadRunError(
                    f"Locust did not finish within {allowed:.0f}s "
                    f"of a {profile.run_time:g}s test and was stopped; last log lines:\n{log_tail(log_path)}")
            if on_progress is not None:
                progress = _read_progress(progress_path, profile.run_time)
                if progress is not None:
                    on_progress(progress)
            time.sleep(poll_s)
    finally:
        # Also on Ctrl-C and on errors above: never leave Locust or its workers behind.
        stop_process_group(process)
    if profile.expect_workers:
        check_master_run(profile, log_path, result_path)
    if not result_path.exists():
        raise LoadRunError(
            f"Locust exited with code {process.returncode} without results; last log lines:\n{log_tail(log_path)}")
    try:
        return read_recording(result_path)
    except (RecordingFormatError, OSError, ValueError) as exc:
        raise LoadRunError(f"cannot read Locust's recording: {exc}") from None


def run_worker(locustfile: Path, master_host: str, master_port: int, cwd: Path, *, processes: int = 1,
               stay: bool = False, notify: Callable[[str], None] = lambda _: None) -> int:
    """Run one worker in the foreground until Locust ends it; its exit code.

    ``stay``: after each run the master ends, start again for the master's next run (``ab`` and ``calibrate``
    start a master per run); stop, with 0, when a worker that ran before finds no master within Locust's
    connection retries (5 min).

    Locust stays in this process's group, so that what stops the group (Ctrl-C in a terminal, a container's
    end, a kill of the group) stops it too; on an error here it is stopped by its own pid."""
    check_locustfile(locustfile)
    check_locust_config(cwd)
    with tempfile.TemporaryDirectory(prefix="perfgate-worker-") as tmp:
        marker = Path(tmp) / "ran"
        settings = PluginSettings(result_path=None, progress_path=None,
                                  identity=run_identity(locustfile, __version__), worker_group=secrets.token_hex(8),
                                  worker_marker=marker)
        env = {**_clean_env(), "PYTHONUNBUFFERED": "1", **settings.to_env()}
        command = worker_command(locustfile, PLUGIN_PATH, master_host, master_port, processes)
        runs = 0
        while True:
            code = _run_worker_once(command, cwd, env)
            if not marker.exists():
                # No run came: the master never showed up (or refused this worker before its test started).
                if runs and stay:
                    notify(f"no master started a run within Locust's connection retries after {runs} run(s): "
                           "stopping")
                    return 0
                return code
            runs += 1
            marker.unlink()
            if not stay:
                return code
            notify(f"run {runs} ended: waiting for the master's next run")


def _run_worker_once(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    try:
        return process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=SHUTDOWN_ALLOWANCE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
