"""Record one same-moment run: base and head served at once, one Locust run driving both, split by side.

On a shared machine the noise is one machine-wide factor that moves by several per cent within a minute,
so two versions measured one after the other differ by that much with no change at all. Measured at the
same moments, both see the same factor and it cancels in their ratio (duet benchmarking).

1. Both versions are started, each fresh on its own free port, in the order given (the A/B swaps it
   between repeats). With four CPUs or more each service gets its own quarter of them and Locust the rest;
   on fewer, all three share every CPU, and what one version costs the machine slows the other too (the
   benchmark measures how much that shrinks a difference).
2. One Locust run, twice the profile's users: each user is bound to one side, alternately per User class
   (the plugin sets its host and tags its requests), so that each side has the profile's users.
3. The recording is split into one run per side, cut at the same warm-up, and every endpoint's measured
   window is cut into blocks of a few seconds, aligned between the sides: the decision pairs base and head
   block by block (:func:`perfgate.decide.stats.duet_shift`).

A side with far fewer requests than the other (its users starved, or its service stalled) is invalid;
requests that carry no side (a client that does not pass the user's context) make both invalid.
"""

from __future__ import annotations

import math
import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from perfgate.config import MetricsConfig, ResolvedProfile, ServeConfig
from perfgate.errors import ConfigError
from perfgate.git import read_git_info
from perfgate.measure.contract import CHECK_REQUEST_TYPE, EndpointRecording, Recording
from perfgate.measure.locust import ProgressCallback, prepare, run_locust
from perfgate.measure.record import measured_run, scraping, store_run, with_metrics
from perfgate.measure.service import serve
from perfgate.measure.summary import Measurement, measure
from perfgate.records import Block, RunPurpose, RunRecord
from perfgate.store import Store

BLOCK_MIN_S = 1.0
"""The shortest block (neighbouring 1-s blocks of the demo's differences barely correlate: lag-1 about 0)."""
BLOCK_REQUESTS = 30
"""Requests a block aims at on the slower side, so that its quantiles mean something."""
MIN_BLOCKS = 12
"""Blocks a measured window is cut into at least, shortening them when the run is short."""
STARVED_SHARE = 0.5
"""A side with fewer requests than this share of the other's is invalid: its users did not get to run."""


@dataclass(frozen=True)
class DuetSide:
    """One version of a same-moment run."""

    label: str
    """``base`` or ``head``."""
    repo_dir: Path
    """Work tree whose commit the side's run is recorded under."""
    serve_cwd: Path


@dataclass(frozen=True)
class DuetRequest:
    profile: ResolvedProfile
    """The profile of each side (Locust runs twice its users)."""
    serve: ServeConfig
    sides: tuple[DuetSide, DuetSide]
    """In the order they are started and handed users."""
    pair_id: str | None = None
    trial_id: str | None = None
    purpose: RunPurpose = RunPurpose.DUET
    metrics: MetricsConfig | None = None
    """Each side's own metrics endpoint (``{port}``: that side's port), scraped during the run."""


def cpu_sets(count: int | None = None) -> tuple[frozenset[int], frozenset[int], frozenset[int]] | None:
    """Disjoint CPUs for the first side, the second side and Locust; ``None`` below four CPUs."""
    cpus = sorted(os.sched_getaffinity(0)) if count is None else list(range(count))
    if len(cpus) < 4:
        return None
    k = len(cpus) // 4
    return frozenset(cpus[:k]), frozenset(cpus[k:2 * k]), frozenset(cpus[2 * k:])


def unsplittable(profile: ResolvedProfile) -> str | None:
    """What in the profile a same-moment run cannot split in two (it doubles the users); ``None``: nothing."""
    if profile.step is not None:
        return "a step load"
    if profile.load_shape:
        return f"the locustfile's own shape {profile.load_shape}"
    return None


def check_duet_profile(profile: ResolvedProfile) -> None:
    """A same-moment run doubles the profile's users: a load shape of its own cannot be split in two, and
    Locust's workers must each get a share of the users that splits evenly in all."""
    what = unsplittable(profile)
    if what is not None:
        raise ConfigError(f"the same-moment mode cannot run {what}: it hands each side half of the users; "
                          "run it with --mode alternate, or use a steady profile")
    workers = profile.expect_workers or profile.processes
    if workers > 1 and (2 * profile.users) % workers:
        fits = next(u for u in range(profile.users, profile.users + workers + 1) if (2 * u) % workers == 0)
        raise ConfigError(f"the same-moment mode runs 2 × {profile.users} users on {workers} worker processes, "
                          "which Locust cannot share out evenly, and each process binds its own users to base "
                          f"and head alternately: pass --users {fits} (twice the users must divide by {workers})")


def record_duet(request: DuetRequest, store: Store, *,
                on_progress: ProgressCallback | None = None) -> dict[str, RunRecord]:
    """Serve both sides, run the load once, store one run per side; returns them by label."""
    profile = prepare(request.profile, Path.cwd())
    check_duet_profile(profile)
    if request.metrics is not None and "{port}" not in request.metrics.url:
        raise ConfigError(f"the metrics URL {request.metrics.url!r} has no {{port}}: in the same-moment mode both "
                          "versions run at once, each on its own port, and each one's metrics must be its own; "
                          "serve them on the service's port, or use --mode alternate")
    store.check_writable()
    gits = {side.label: read_git_info(side.repo_dir) for side in request.sides}
    sets = cpu_sets()
    usage = {}
    with tempfile.TemporaryDirectory(prefix="perfgate-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        services = {}
        scraped = {}
        for number, side in enumerate(request.sides):
            services[side.label] = stack.enter_context(serve(
                request.serve.command, request.serve.ready_url, port=None, ready_timeout_s=request.serve.ready_timeout,
                log_path=workdir / f"service-{side.label}.log", cwd=side.serve_cwd,
                cpus=None if sets is None else sets[number]))
            scraped[side.label] = stack.enter_context(scraping(request.metrics, services[side.label].port))
        hosts = tuple((label, profile.host.replace("{port}", str(s.port))) for label, s in services.items())
        load = profile.model_copy(update={"users": 2 * profile.users, "spawn_rate": 2 * profile.spawn_rate,
                                          "host": hosts[0][1]})
        recording = run_locust(load, workdir, on_progress=on_progress, duet=hosts,
                               cpus=None if sets is None else sets[2])
        for label, service in services.items():
            service.check_alive(f"the {label} service")
            usage[label] = service.usage()
    measured = measure_duet(recording, profile, [side.label for side in request.sides])
    series = request.metrics.series if request.metrics else []
    runs = {}
    for label, m in measured.items():
        run = measured_run(m, profile, gits[label], usage.get(label), request.pair_id, request.trial_id,
                           request.purpose)
        runs[label] = store_run(store, with_metrics(run, scraped[label][0], series) if scraped[label] else run)
    return runs


def split_by_side(recording: Recording, labels: list[str]) -> tuple[dict[str, Recording], list[str]]:
    """One recording per side, and the endpoints whose requests carry no side.

    Checks without a side count on both sides. Locust's own count is shared out so that a side's count
    matches its recording exactly when no request was lost, and misses on both sides when any was.
    """
    sideless = [e for e in recording.endpoints if not e.side]
    missing = [f"{e.request_type} {e.name}" for e in sideless if e.request_type != CHECK_REQUEST_TYPE]
    shared_checks = [e for e in sideless if e.request_type == CHECK_REQUEST_TYPE]
    lost = (recording.meta.locust_request_count or 0) - recording.request_count
    sides = {}
    for label in labels:
        endpoints = [e for e in recording.endpoints if e.side == label] + shared_checks
        counted = sum(len(e) for e in endpoints) + lost
        sides[label] = Recording(meta=replace(recording.meta, locust_request_count=counted), endpoints=endpoints)
    return sides, sorted(missing)


def measure_duet(recording: Recording, profile: ResolvedProfile, labels: list[str]) -> dict[str, Measurement]:
    """Each side's measurement, with blocks aligned between the sides and the duet's own validity."""
    sides, sideless = split_by_side(recording, labels)
    measured = {label: measure(sides[label], profile) for label in labels}
    first, second = labels
    measure_from = float(recording.meta.test_start or 0.0) + measured[first].warmup_end_s
    duration_s = measured[first].duration_s
    by_key = {label: {_key(e): e for e in sides[label].endpoints if e.request_type != CHECK_REQUEST_TYPE}
              for label in labels}
    cut = {key: blocks(by_key[first][key], by_key[second][key], measure_from, duration_s)
           for key in set(by_key[first]) & set(by_key[second])}
    result = {}
    for label, other in ((first, second), (second, first)):
        m = measured[label]
        reasons = list(m.invalid_reasons)
        if sideless:
            reasons.append(f"requests of {', '.join(sideless[:3])} carry no side: the same-moment mode needs "
                           "Locust's HttpUser or FastHttpUser clients (which pass the user's context); "
                           "use --mode alternate")
        if uneven := _uneven_users(recording.meta.side_users):
            reasons.append(uneven)
        if m.total_requests < STARVED_SHARE * (theirs := measured[other].total_requests):
            reasons.append(f"the {label} side served {m.total_requests} requests against {theirs} "
                           f"of the {other} side, below {STARVED_SHARE:.0%}: its users starved or its service stalled")
        endpoints = []
        for e in m.endpoints:
            if (key := (e.stats.method, e.stats.name)) in cut:
                length, per_side = cut[key]
                e = e.model_copy(update={"block_s": length, "blocks": per_side[labels.index(label)]})
            endpoints.append(e)
        result[label] = replace(m, endpoints=endpoints, invalid_reasons=reasons)
    return result


def _uneven_users(side_users: dict[str, int]) -> str | None:
    """Why a same-moment run whose sides had different numbers of users is invalid; ``None``: they were even."""
    if len(set(side_users.values())) <= 1:
        return None
    counts = ", ".join(f"{side} {n}" for side, n in side_users.items())
    return (f"the users were bound unevenly to the sides ({counts}): each side must carry the same load; give "
            "every User class a number of users that Locust's processes can split evenly")


def _key(e: EndpointRecording) -> tuple[str, str]:
    return e.request_type, e.name


def block_length(rate_per_s: float, duration_s: float) -> float:
    """Seconds per block: at least :data:`BLOCK_MIN_S` and :data:`BLOCK_REQUESTS` requests at ``rate_per_s``,
    shortened so that the window holds :data:`MIN_BLOCKS` blocks; in half seconds."""
    length = max(BLOCK_MIN_S, BLOCK_REQUESTS / rate_per_s) if rate_per_s > 0 else duration_s
    length = min(length, duration_s / MIN_BLOCKS)
    return max(0.5, math.floor(length * 2) / 2)


def blocks(a: EndpointRecording, b: EndpointRecording, measure_from: float,
           duration_s: float) -> tuple[float, tuple[list[Block], list[Block]]]:
    """The blocks of one endpoint on both sides, on one grid over the measured window (a last partial block
    is left out)."""
    counts = [int((np.frombuffer(e.start_times, dtype=np.float64) >= measure_from).sum()) for e in (a, b)]
    length = block_length(min(counts) / duration_s if duration_s > 0 else 0.0, duration_s)
    n = int(duration_s // length)
    return length, (_blocks(a, measure_from, length, n), _blocks(b, measure_from, length, n))


def _blocks(e: EndpointRecording, measure_from: float, length: float, n: int) -> list[Block]:
    starts = np.frombuffer(e.start_times, dtype=np.float64)
    latencies = np.frombuffer(e.latencies_ms, dtype=np.float64)
    failed = np.frombuffer(e.outcomes, dtype=np.uint16) != 0
    index = np.floor((starts - measure_from) / length)
    inside = (index >= 0) & (index < n)
    # One sort, then each block is a slice: a long run has thousands of blocks.
    order = np.argsort(index[inside], kind="stable")
    index, latencies, failed = index[inside][order].astype(np.int64), latencies[inside][order], failed[inside][order]
    bounds = np.searchsorted(index, np.arange(n + 1))
    out = []
    for i in range(n):
        lo, hi = bounds[i], bounds[i + 1]
        ok = latencies[lo:hi][~failed[lo:hi]]
        p50, p95, p99 = (round(float(q), 3) for q in np.quantile(ok, (0.5, 0.95, 0.99))) if ok.size else (None,) * 3
        out.append(Block(t=round(i * length, 3), requests=int(hi - lo), failures=int(failed[lo:hi].sum()),
                         p50=p50, p95=p95, p99=p99))
    return out
