"""Profiles: the built-in ones, and resolving one from built-in ← config file ← command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from perfgate.config.messages import describe_source, validation_message
from perfgate.config.schema import LoadFields, PerfgateConfig, ProfileOverlay, ResolvedProfile
from perfgate.config.units import EVERY_CORE
from perfgate.errors import ConfigError

DEFAULT_LOCUSTFILE = "locustfile.py"
"""Locust's own default: ``locustfile.py`` in the folder perfgate was started in."""
DEFAULT_SERVED_HOST = "http://127.0.0.1:{port}"
"""Where a service that perfgate starts is loaded, unless a host is configured."""

BUILTIN_PROFILES: dict[str, ProfileOverlay] = {
    "smoke": ProfileOverlay(users=5, spawn_rate=5, run_time=15, warmup=2),
    "light": ProfileOverlay(users=10, spawn_rate=1, run_time=60, warmup=10),
    "medium": ProfileOverlay(users=20, spawn_rate=2, run_time=300, warmup=15),
    "heavy": ProfileOverlay(users=50, spawn_rate=5, run_time=600, warmup=15),
    "spike": ProfileOverlay(users=100, spawn_rate=10, run_time=180, warmup=10),
    "endurance": ProfileOverlay(users=50, spawn_rate=1, run_time=1800, warmup=60),
}


class Overrides(LoadFields):
    """Command-line values, named like Locust's flags; ``None`` means not given."""

    locust_args: list[str] | None = None

    @classmethod
    def from_cli(cls, **values: Any) -> Overrides:
        """Overrides from command-line values, with errors named by their flags."""
        try:
            return cls(**values)
        except ValidationError as exc:
            item = exc.errors()[0]
            message = item["msg"].removeprefix("Value error, ")
            raise ConfigError(f"--{str(item['loc'][0]).replace('_', '-')}: {message}") from None


def _extends_message(source: Path | None, name: str, extends: str | None) -> str:
    """One line naming the profile, what its ``extends`` says, and the profiles it may extend."""
    choices = ", ".join(BUILTIN_PROFILES)
    where = f"{describe_source(source)}: profiles.{name}"
    if extends is None:
        return (f"{where}: profile {name!r} is not built in, so it needs extends = one of: {choices} "
                f"(e.g. extends = \"light\")")
    return f"{where}.extends = {extends!r} is not a built-in profile; extend one of: {choices}"


def resolve_profile(config: PerfgateConfig, name: str, overrides: Overrides, *, source: Path | None, root: Path,
                    served: bool = False) -> ResolvedProfile:
    """Merge built-in profile, config file and command line into a :class:`ResolvedProfile`.

    ``source`` is the config file (for messages), ``root`` the folder its relative paths start from.
    """
    overlay = config.profiles.get(name)
    if name in BUILTIN_PROFILES:
        base = BUILTIN_PROFILES[name]
    elif overlay is not None:
        if overlay.extends is None or overlay.extends not in BUILTIN_PROFILES:
            raise ConfigError(_extends_message(source, name, overlay.extends))
        base = BUILTIN_PROFILES[overlay.extends]
    else:
        known = sorted({*BUILTIN_PROFILES, *config.profiles})
        raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(known)}")

    merged: dict[str, Any] = {"locustfile": config.locustfile,
                              "host": config.host or (DEFAULT_SERVED_HOST if served else None)}
    for layer in (base, overlay, overrides):
        if layer is not None:
            merged.update({k: v for k, v in layer.model_dump(exclude={"extends"}).items() if v is not None})

    # As in Locust: no -f and none configured is locustfile.py in the current folder. A locustfile from the
    # command line (or that default) is relative to the cwd, one from a file to the file.
    from_cli = overrides.locustfile is not None or not merged.get("locustfile")
    merged["locustfile"] = merged.get("locustfile") or DEFAULT_LOCUSTFILE
    # No host anywhere: the User classes' own (found by the runner, which may import the locustfile).
    if not merged.get("host"):
        merged["host"], merged["host_from_user_classes"] = "", True
    if merged.get("processes") == EVERY_CORE:
        merged["processes"] = os.cpu_count() or 1
    if merged.get("expect_workers") and merged.get("processes", 1) > 1:
        raise ConfigError(f"profile {name!r}: --expect-workers (a master with remote workers) and --processes "
                          "(workers on this machine) exclude each other; start `perfgate worker` processes "
                          "instead, as many as you need")
    locustfile = Path(merged["locustfile"])
    if not locustfile.is_absolute():
        locustfile = (Path.cwd() if from_cli else root) / locustfile
    merged["locustfile"] = str(locustfile.resolve())
    merged["warmup"] = merged.get("warmup", 0.0)
    merged["run_time_given"] = overrides.run_time is not None
    if merged["warmup"] >= merged["run_time"]:
        raise ConfigError(
            f"profile {name!r}: warm-up ({merged['warmup']:g}s) must be shorter than the run time "
            f"({merged['run_time']:g}s); lower --warmup or raise -t"
        )
    try:
        return ResolvedProfile(name=name, **merged)
    except ValidationError as exc:
        raise ConfigError(validation_message(source, exc, f"profiles.{name}")) from None
