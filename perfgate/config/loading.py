"""Finding and reading the configuration file, and the loaded config with its command-line merges."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from perfgate.boundary import BoundaryModel
from perfgate.config.messages import flag_message, validation_message
from perfgate.config.profiles import Overrides, resolve_profile
from perfgate.config.schema import (
    AbConfig,
    CapacityConfig,
    MetricsConfig,
    PerfgateConfig,
    ResolvedProfile,
    ServeConfig,
)
from perfgate.errors import ConfigError

CONFIG_FILENAME = "perfgate.toml"

AB_FLAGS = {"mode": "--mode", "looks": "--looks", "max_pairs": "--max-pairs", "max_time": "--max-time",
            "setup": "--setup", "reset": "--reset", "confirm": "--confirm", "confirm_pairs": "--confirm-pairs"}
"""The command-line flag of each ``[ab]`` setting."""
CAPACITY_FLAGS = {"start_rate": "--start-rate", "growth": "--growth", "max_rate": "--max-rate",
                  "repeats": "--repeats", "resolution": "--resolution", "margin": "--margin"}
"""The command-line flag of each ``[capacity]`` setting."""
SERVE_FLAGS = {"command": "--serve", "ready_url": "--ready-url", "ready_timeout": "--ready-timeout"}
"""The command-line flag of each ``[serve]`` setting."""


class LoadedConfig(BoundaryModel):
    """A config and where it came from (paths in it are relative to ``root``)."""

    def own_paths(self) -> tuple[Path, ...]:
        """perfgate's own files, whose edits do not make a tree dirty: a ``perfgate.toml`` (not a
        ``pyproject.toml``, which also holds the project's dependencies) and the ``baselines/`` folder."""
        paths = [self.root / "baselines"]
        if self.source is not None and self.source.name != "pyproject.toml":
            paths.append(self.source)
        return tuple(paths)

    config: PerfgateConfig
    source: Path | None
    """The file read, or ``None`` when no file was found."""
    root: Path
    """Folder that relative paths are resolved against."""

    @property
    def db_path(self) -> Path:
        return self.root / self.config.db

    @property
    def baselines_dir(self) -> Path:
        return self.root / self.config.compare.baselines_dir

    def resolve(self, profile: str | None = None, overrides: Overrides | None = None, *,
                served: bool = False) -> ResolvedProfile:
        """Built-in profile ← config file ← command line, checked and made absolute.

        ``served``: perfgate starts the service, so the host defaults to its loopback port.
        """
        return resolve_profile(self.config, profile or self.config.profile, overrides or Overrides(),
                               source=self.source, root=self.root, served=served)

    def ab_settings(self, **given: Any) -> AbConfig:
        """The config's ``[ab]`` with command-line values on top (``looks`` as ``"3,6,10"``).

        A wrong command-line value is reported by its flag and as it was typed (``--looks 3,2``).
        """
        typed = {k: v for k, v in given.items() if v is not None}
        values = dict(typed)
        if isinstance(values.get("looks"), str):
            values["looks"] = [part.strip() for part in values["looks"].split(",") if part.strip()]
        try:
            return AbConfig.model_validate({**self.config.ab.model_dump(exclude_unset=True), **values})
        except ValidationError as exc:
            raise ConfigError(flag_message(exc, typed, AB_FLAGS, self.source, "ab")) from None

    def capacity_settings(self, **given: Any) -> CapacityConfig:
        """The config's ``[capacity]`` with command-line values on top (a wrong one named by its flag)."""
        typed = {k: v for k, v in given.items() if v is not None}
        try:
            return CapacityConfig.model_validate({**self.config.capacity.model_dump(exclude_unset=True), **typed})
        except ValidationError as exc:
            raise ConfigError(flag_message(exc, typed, CAPACITY_FLAGS, self.source, "capacity")) from None

    def serve(self, command: str | None = None, ready_url: str | None = None,
              ready_timeout: str | float | None = None) -> ServeConfig | None:
        """The config's ``[serve]`` with command-line values on top; ``None`` when nothing is served."""
        given = {k: v for k, v in (("ready_url", ready_url), ("ready_timeout", ready_timeout)) if v is not None}
        if self.config.serve is None and command is None:
            if given:
                raise ConfigError("--ready-url and --ready-timeout need --serve (or [serve] in the config)")
            return None
        # A command from the command line keeps the config's ready URL and timeout unless given too.
        kept = self.config.serve.model_dump(exclude_unset=True) if self.config.serve is not None else {}
        typed = {**given, **({"command": command} if command is not None else {})}
        try:
            return ServeConfig.model_validate({**kept, **typed})
        except ValidationError as exc:
            raise ConfigError(flag_message(exc, typed, SERVE_FLAGS, self.source, "serve")) from None

    def metrics(self, url: str | None = None, series: list[str] | None = None) -> MetricsConfig | None:
        """The config's ``[metrics]`` with ``--metrics-url`` and ``--metric`` on top; ``None``: not scraped."""
        if self.config.metrics is None and url is None:
            if series:
                raise ConfigError("--metric needs --metrics-url (or [metrics] url in the config)")
            return None
        kept = self.config.metrics.model_dump() if self.config.metrics is not None else {}
        merged = {**kept, **({"url": url} if url is not None else {})}
        merged["series"] = [*kept.get("series", []), *(series or [])]
        try:
            return MetricsConfig.model_validate(merged)
        except ValidationError as exc:
            item = exc.errors()[0]
            where = "--metrics-url / --metric" if url is not None or series else f"{self.source}: metrics"
            raise ConfigError(f"{where}: {item['msg']} ({item.get('input')!r:.80}); give an http(s) URL such as "
                              "http://127.0.0.1:{port}/metrics and Prometheus metric names") from None


def find_config_file(start: Path) -> Path | None:
    """The nearest ``perfgate.toml``, or ``pyproject.toml`` with ``[tool.perfgate]``, at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
                continue
            if "perfgate" in _tool_table(pyproject, data):
                return pyproject
    return None


def _toml_type(value: object) -> str:
    return {str: "string", bool: "boolean", int: "number", float: "number", list: "list"}.get(type(value),
                                                                                            type(value).__name__)


def _tool_table(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``[tool]`` of a pyproject.toml; one that is not a table is an error (every tool would misread it)."""
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table such as [tool.perfgate], not a {_toml_type(tool)}; "
                          "fix pyproject.toml")
    return tool


def load_config(path: Path | None = None, start: Path | None = None) -> LoadedConfig:
    """Read the config file at ``path``, or the nearest one above ``start`` (default: cwd).

    With no file anywhere the defaults apply, rooted at ``start``.
    """
    start = (start or Path.cwd()).resolve()
    if path is not None:
        path = path.resolve()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found; check the --config path")
    else:
        path = find_config_file(start)
    if path is None:
        return LoadedConfig(config=PerfgateConfig(), source=None, root=start)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    prefix = ""
    if path.name == "pyproject.toml":
        data = _tool_table(path, data).get("perfgate", {})
        prefix = "tool.perfgate"
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: tool.perfgate must be a table ([tool.perfgate]), not a "
                              f"{_toml_type(data)}; fix pyproject.toml")
    try:
        config = PerfgateConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, prefix)) from None
    return LoadedConfig(config=config, source=path, root=path.parent)
