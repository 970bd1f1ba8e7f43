"""The environment fingerprint: what must match for two runs to be compared.

It imports nothing heavy: the verdict carries fingerprints, and posting a verdict must not load NumPy.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from pydantic import ConfigDict, Field

from perfgate import __version__
from perfgate.boundary import BoundaryModel


class EnvironmentFingerprint(BoundaryModel):
    """Where a run ran; runs on different fingerprints are not compared."""

    model_config = ConfigDict(frozen=True)

    cpu_model: str
    cores: int
    os: str
    python: str
    locust: str
    perfgate: str


class Topology(BoundaryModel):
    """Where a run's load came from: a distributed run's workers and their machines; none, this machine alone.
    Runs of different topologies are not compared."""

    model_config = ConfigDict(frozen=True)

    workers: int = Field(default=0, ge=0)
    """Locust worker processes, as Locust counts them (``--expect-workers``)."""
    machines: tuple[tuple[str, int], ...] = ()
    """``(CPU model, N cores, OS`` of the workers' machines, how many workers ran on one like it), sorted."""
    processes: tuple[int, ...] = ()
    """Worker processes of each ``perfgate worker`` command (``--processes``), sorted; empty: one each."""

    @classmethod
    def of_workers(cls, machines: list[dict[str, object]]) -> Topology:
        counts: dict[str, int] = {}
        groups: dict[str, int] = {}
        for number, m in enumerate(machines):
            key = f"{m.get('cpu_model')}, {m.get('cores')} cores, {m.get('os')}"[:300]
            counts[key] = counts.get(key, 0) + 1
            group = str(m.get("group") or "") or f"#{number}"
            groups[group] = groups.get(group, 0) + 1
        processes = tuple(sorted(groups.values())) if any(n > 1 for n in groups.values()) else ()
        return cls(workers=len(machines), machines=tuple(sorted(counts.items())), processes=processes)

    def describe(self) -> str:
        if not self.workers:
            return "this machine alone"
        machines = "; ".join(f"{n} × {m}" for m, n in self.machines)
        if self.processes:
            each = (f"{self.processes[0]} each" if len(set(self.processes)) == 1
                    else "+".join(str(n) for n in self.processes))
            workers = f"{self.workers} worker process(es) from {len(self.processes)} `perfgate worker`, {each}"
        else:
            workers = f"{self.workers} worker(s)"
        return f"{workers}: {machines}" if machines else workers


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def fingerprint() -> EnvironmentFingerprint:
    """This machine's fingerprint (Locust's version is read without importing it)."""
    return EnvironmentFingerprint(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 1,
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        locust=_package_version("locust"),
        perfgate=__version__,
    )


def environment_key(environment: EnvironmentFingerprint) -> str:
    """What must match for two runs' environments to be comparable."""
    return "|".join((environment.cpu_model, str(environment.cores), environment.os,
                     environment.python, environment.locust))
