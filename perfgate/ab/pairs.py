"""The pairs of an A/B: what is measured, and how one pair of base and head is measured.

A pair is two runs one after the other (the alternate mode) or one same-moment run of both
(the duet mode, :mod:`perfgate.measure.duet`). Each version starts alike: its reset command in its
own tree before every serve, and a note of the files its last run left there
(:mod:`perfgate.measure.treestate`). A pair with an invalid run is measured once more.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from perfgate.ab.trees import Notify, run_reset
from perfgate.config import AbMode, Budget, CompareConfig, MetricsConfig, ResolvedProfile, ServeConfig
from perfgate.errors import ConfigError, RunNotStoredError, ServiceError, UsageError
from perfgate.measure.duet import DuetRequest, DuetSide, record_duet
from perfgate.measure.record import RunRequest, record_run
from perfgate.measure.treestate import TreeWatch
from perfgate.records import RunPurpose, RunRecord
from perfgate.store import Store

_LOOPBACK_HOST = re.compile(r"^https?://(localhost|127(\.\d{1,3}){3}|\[::1\])(:|/|$)", re.IGNORECASE)


def check_served(serve: ServeConfig | None, profile: ResolvedProfile, command: str, notify: Notify) -> ServeConfig:
    """What ``ab`` and ``calibrate`` need to serve each version fresh on its own port, and where the load reaches
    it: a serve command and a host with ``{port}``; with remote workers, a host they can reach (said when it is
    loopback: fine for workers on this machine only)."""
    if serve is None:
        raise UsageError(f"perfgate {command} serves each version itself, fresh for every run: pass --serve CMD "
                          "with a {port} placeholder and --ready-url (or set [serve] in the config)")
    if "{port}" not in serve.command:
        raise ConfigError(f"the serve command {serve.command!r} has no {{port}} placeholder; each version "
                          "needs its own port: add {port} where the service takes its port")
    if "{port}" not in profile.host:
        raise ConfigError(f"the host {profile.host!r} has no {{port}}: perfgate {command} serves each version on "
                          "a port of its own; write it as http://ADDRESS:{port} (or leave it out for "
                          "http://127.0.0.1:{port})")
    if profile.expect_workers and _LOOPBACK_HOST.match(profile.host):
        notify(f"the load comes from {profile.expect_workers} worker(s), which reach the services at "
               f"{profile.host}: a loopback address, so only workers on this machine can; for workers elsewhere "
               "pass -H http://ADDRESS:{port} with an address of this machine they reach, and serve on it")
    return serve


@dataclass(frozen=True)
class Version:
    """One side of the A/B: a tree to serve and record from."""

    label: str
    """``base`` or ``head``."""
    tree: Path
    """Work tree whose commit the runs are recorded under (the user's own for the head)."""
    serve_cwd: Path
    """Folder the serve command runs in (the config's folder inside the served tree)."""
    checkout: Path | None = None
    """The fresh worktree this version is served from; ``None``: served in place."""


@dataclass(frozen=True)
class AbPlan:
    """What to run and how long to go on."""

    profile: ResolvedProfile
    serve: ServeConfig
    base: Version
    head: Version
    compare: CompareConfig
    looks: list[int]
    max_time_s: float
    budgets: list[Budget] = field(default_factory=list)
    command_line_budgets: list[Budget] = field(default_factory=list)
    """One-off budgets given with ``--budget``."""
    confirm_pairs: int | None = None
    """Pairs of the confirmation; ``None``: no confirmation."""
    reset: str | None = None
    """Shell command run in each version's serve folder before every serve."""
    mode: AbMode = AbMode.ALTERNATE
    metrics: MetricsConfig | None = None
    """The service's own metrics endpoint, scraped in every run of either version."""

    @property
    def min_pairs(self) -> int:
        """Pairs a look needs: one same-moment run carries its own replicates, alternate pairs need two."""
        return 1 if self.mode is AbMode.DUET else 2


@dataclass
class Pair:
    """Base and head runs measured back to back."""

    number: int
    base: RunRecord
    head: RunRecord
    attempts: int = 1

    @property
    def valid(self) -> bool:
        return self.base.valid and self.head.valid


class Session:
    """Runs pairs and keeps the time (also used by calibration, with one build on both sides)."""

    def __init__(self, plan: AbPlan, store: Store, notify: Notify) -> None:
        self.plan = plan
        self.store = store
        self.notify = notify
        self.id = uuid.uuid4().hex[:12]
        self.started = time.monotonic()
        self.pair_seconds: list[float] = []
        self.watches = {v.label: TreeWatch(v.label, v.checkout or v.serve_cwd, plan.reset)
                        for v in (plan.base, plan.head)}

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def time_left_for_a_pair(self) -> bool:
        """Whether one more pair would end within the time budget (judged by the slowest pair so far)."""
        if not self.pair_seconds:
            return True
        return self.elapsed + max(self.pair_seconds) <= self.plan.max_time_s

    def state_notes(self) -> list[str]:
        """For the verdict: files a served tree carried from one run into the next."""
        return [note for watch in self.watches.values() if (note := watch.note())]

    def _prepare(self, version: Version) -> None:
        """Before a version is served: its reset command, and a note of the files its last run left behind."""
        if self.plan.reset:
            run_reset(self.plan.reset, version.serve_cwd, what=version.label)
        if carried := self.watches[version.label].before_serve():
            self.notify(carried)

    def _served(self, version: Version, run: RunRecord) -> None:
        self.watches[version.label].after_run()
        status = "valid" if run.valid else "INVALID: " + "; ".join(run.invalid_reasons)
        self.notify(f"  {version.label} run {run.id} ({run.git.commit[:10] if run.git.commit else 'no commit'}): "
                    f"{run.total_requests} requests, {status}")

    def _record(self, version: Version, pair_id: str, purpose: RunPurpose) -> RunRecord:
        self._prepare(version)
        request = RunRequest(profile=self.plan.profile, repo_dir=version.tree, serve=self.plan.serve,
                             serve_cwd=version.serve_cwd, pair_id=pair_id, trial_id=self.id, purpose=purpose,
                             metrics=self.plan.metrics)
        with _stopping_at(version, pair_id):
            run = record_run(request, self.store)
        self._served(version, run)
        return run

    def _duet(self, order: tuple[Version, Version], pair_id: str, purpose: RunPurpose) -> tuple[RunRecord, ...]:
        """Both versions served at once and measured by one Locust run; their runs in ``order``."""
        for version in order:
            self._prepare(version)
        request = DuetRequest(profile=self.plan.profile, serve=self.plan.serve,
                              sides=tuple(DuetSide(v.label, v.tree, v.serve_cwd) for v in order),  # type: ignore[arg-type]
                              pair_id=pair_id, trial_id=self.id, metrics=self.plan.metrics,
                              # Measured beside another service: never a baseline, whatever it was run for.
                              purpose=purpose if purpose is RunPurpose.CONFIRM else RunPurpose.DUET)
        with _stopping_at(order[0], pair_id, both=order):
            runs = record_duet(request, self.store)
        for version in order:
            self._served(version, runs[version.label])
        return tuple(runs[v.label] for v in order)

    def pair(self, number: int, purpose: RunPurpose) -> Pair:
        """One pair, in the order that balances the sequence (A B, B A, A B, …); re-run once if invalid.

        In the duet mode a pair is one same-moment run; the order says which version starts first and
        gets the first user of each class."""
        started = time.monotonic()
        first_base = number % 2 == 1
        attempt = 1
        while True:
            pair_id = f"{self.id}-{purpose[0]}{number}" + ("" if attempt == 1 else f"-{attempt}")
            order = (self.plan.base, self.plan.head) if first_base else (self.plan.head, self.plan.base)
            again = ' (re-run)' if attempt > 1 else ''
            if self.plan.mode is AbMode.DUET:
                self.notify(f"pair {number}{again}: {order[0].label} and {order[1].label} at the same moments")
                first, second = self._duet(order, pair_id, purpose)
            else:
                self.notify(f"pair {number}{again}: {order[0].label} then {order[1].label}")
                first, second = (self._record(v, pair_id, purpose) for v in order)
            base, head = (first, second) if order[0] is self.plan.base else (second, first)
            pair = Pair(number=number, base=base, head=head, attempts=attempt)
            if pair.valid or attempt == 2:
                break
            attempt += 1
        self.pair_seconds.append((time.monotonic() - started) / attempt)
        return pair


@contextmanager
def _stopping_at(version: Version, pair_id: str, both: tuple[Version, ...] = ()) -> Iterator[None]:
    """A service that does not start, or a run the store cannot take, said in the A/B's terms."""
    what = " and ".join(v.label for v in both) if both else version.label
    try:
        yield
    except ServiceError as exc:
        if version.checkout is None:
            raise
        raise ServiceError(f"the {what} tree did not serve; it is a fresh worktree, {version.checkout}, "
                           "without the ignored files of your tree (a .venv, built assets or data must come "
                           f"from the setup command: --setup or [ab] setup); {exc}") from None
    except RunNotStoredError as exc:
        # Going on would judge pairs the store does not hold: stop, and say where the run is.
        raise RunNotStoredError(f"stopped at the {what} run of pair {pair_id}: {exc} (the runs "
                                "before it are stored)", spill_path=exc.spill_path) from exc
