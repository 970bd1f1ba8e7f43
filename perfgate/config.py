"""Configuration: ``perfgate.toml`` or ``[tool.perfgate]`` in ``pyproject.toml``.

A *profile* is a named load shape (users, spawn rate, run time, warm-up, ...).
Six profiles are built in; a config file may override any of their fields or add
new profiles that ``extends`` one of them, and the command line overrides any
field again with Locust's own flag names. The outcome is a frozen
:class:`ResolvedProfile` with every value concrete: it is what the runner runs
and what the store records.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from perfgate.boundary import BoundaryModel
from perfgate.errors import ConfigError

CONFIG_FILENAME = "perfgate.toml"
DEFAULT_LOCUSTFILE = "locustfile.py"
"""Locust's own default: ``locustfile.py`` in the folder perfgate was started in."""
EVERY_CORE = -1
"""``--processes -1``: one Locust process per core, as in Locust."""
DEFAULT_DB = Path(".perfgate/perfgate.db")
DEFAULT_SERVED_HOST = "http://127.0.0.1:{port}"
"""Where a service that perfgate starts is loaded, unless a host is configured."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
MAX_DURATION_S = 7 * 24 * 3600.0
"""No time perfgate waits or loads for is longer than a week: a longer one is a typo (or ``inf``)."""


def _finite(value: float, what: str) -> float:
    """``value``, unless it is NaN or infinite (``inf``, ``nan``, ``1e400`` in TOML or on the command line)."""
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return value


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Locust-style time string (``90``, ``"90s"``, ``"1h30m"``)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '5m' or '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _DURATION_PART.sub("", text) == "":
            factors = {"h": 3600.0, "m": 60.0, "s": 1.0}
            seconds = sum(float(n) * factors[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration such as 90, '90s', '5m' or '1h30m'")
    else:
        raise ValueError("expected a duration such as 90, '90s', '5m' or '1h30m'")
    _finite(seconds, "a duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration cannot be longer than 7 days (got {seconds:g}s)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def parse_fraction(value: Any) -> float:
    """A share from ``0.05`` or ``"5%"``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return _finite(float(value.strip()[:-1]) / 100, "a percentage")
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage such as '5%'") from None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a share such as 0.05 or '5%'")
    try:
        return _finite(float(value), "a share")
    except ValueError:
        raise ValueError(f"{value!r} is not a share such as 0.05 or '5%'") from None


def parse_milliseconds(value: Any) -> float:
    """Milliseconds from a number (ms) or ``"100ms"`` / ``"0.1s"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        for suffix, factor in (("ms", 1.0), ("s", 1000.0)):
            if text.endswith(suffix):
                try:
                    return _finite(float(text[: -len(suffix)]) * factor, "a latency")
                except ValueError:
                    break
        raise ValueError(f"{value!r} is not a latency such as 100, '100ms' or '0.1s'")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a latency such as 100, '100ms' or '0.1s'")
    return _finite(float(value), "a latency")


def check_processes(value: int) -> int:
    """Locust's ``--processes``: a count, or -1 for every core."""
    if value == 0 or value < EVERY_CORE:
        raise ValueError(f"must be at least 1, or -1 for one process per core (got {value})")
    return value


Processes = Annotated[int, AfterValidator(check_processes)]
Fraction = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0)]
Milliseconds = Annotated[float, BeforeValidator(parse_milliseconds), Field(gt=0)]

METRICS = ("p50", "p95", "p99", "failure_rate", "throughput")
DEFAULT_MARGINS = {"p50": 0.05, "p95": 0.10, "p99": 0.10, "failure_rate": 0.01, "throughput": 0.10}
"""Practical margins: relative for latency and throughput, absolute (percentage points) for failures."""


MAX_RELATIVE_MARGIN = 1.0
"""A latency or throughput margin above 100 % would wave through a service twice as slow: a config (which a
pull request can edit) cannot switch the gate off that way."""
MAX_FAILURE_MARGIN = 0.5
"""50 percentage points: the most a failure-rate margin may be."""

RelativeMargin = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0, le=MAX_RELATIVE_MARGIN)]
FailureMargin = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0, le=MAX_FAILURE_MARGIN)]


class Margins(BoundaryModel):
    """Changes smaller than these are neither regressions nor improvements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p50: RelativeMargin | None = None
    p95: RelativeMargin | None = None
    p99: RelativeMargin | None = None
    failure_rate: FailureMargin | None = None
    """Absolute: 0.01 is one percentage point."""
    throughput: RelativeMargin | None = None


class EndpointSettings(BoundaryModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    margins: Margins = Margins()


class CompareConfig(BoundaryModel):
    """How ``perfgate compare`` decides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """False-regression rate per comparison, over all endpoint × metric tests (Holm)."""
    margins: Margins = Margins()
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    """Per endpoint (``"METHOD name"``) settings, e.g. wider margins for a noisy endpoint."""
    min_requests: int = Field(default=50, ge=1)
    """Fewer measured requests per run make an endpoint invalid."""
    p99_min_requests: int = Field(default=10_000, ge=1)
    """p99 is tested only when every run has this many requests for the endpoint."""
    strict: bool = False
    """Inconclusive or invalid comparisons fail (exit 3)."""
    baselines_dir: str = "baselines"

    def margin(self, endpoint: str, metric: str) -> float:
        override = self.endpoints.get(endpoint)
        if override is not None and getattr(override.margins, metric) is not None:
            return getattr(override.margins, metric)
        value = getattr(self.margins, metric)
        return DEFAULT_MARGINS[metric] if value is None else value

    def default_margins(self) -> dict[str, float]:
        return {m: self.margin("", m) for m in METRICS}


class Budget(BoundaryModel):
    """Absolute limits for the endpoints matching a glob, checked on the head's runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = "*"
    """Glob over ``"METHOD name"``, e.g. ``"GET /items*"``."""
    p50: Milliseconds | None = None
    p95: Milliseconds | None = None
    p99: Milliseconds | None = None
    failure_rate: Fraction | None = None
    """At most this share of requests may fail."""
    rps: float | None = Field(default=None, gt=0)
    """At least this many requests per second."""


BUDGET_FLAG = "--budget"
_CONDITION = re.compile(r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*|p\(\d+\))\s*(?P<op><=|>=|<|>)\s*(?P<value>\S+)\s*$")
_BUDGET_METRICS = {"p50": "p50", "p(50)": "p50", "p95": "p95", "p(95)": "p95", "p99": "p99", "p(99)": "p99",
                   "failure_rate": "failure_rate", "rps": "rps"}
_BUDGET_SYNTAX = "such as 'GET /items*: p95<100ms, failure_rate<1%, rps>20'"


def parse_budget(text: str) -> Budget:
    """A :class:`Budget` from its command-line form ``[ENDPOINT:] METRIC<LIMIT, ...``.

    Latencies (``p50``, ``p95``, ``p99``; k6's ``p(95)`` too) and ``failure_rate`` take ``<`` or ``<=``,
    ``rps`` takes ``>`` or ``>=``; the limit itself passes either way, as in the config file. Limits take the
    config's units: ``100ms``, ``0.1s`` or a bare number of ms; ``1%`` or ``0.01``; requests per second.
    Without ``ENDPOINT:`` the budget covers every endpoint. Raises :class:`ConfigError`, one line.
    """
    where = f"{BUDGET_FLAG} {text!r}"
    endpoint, colon, conditions = text.rpartition(":")
    endpoint = endpoint.strip() if colon else "*"
    if colon and not endpoint:
        raise ConfigError(f"{where}: the endpoint pattern before ':' is empty; write one "
                          f"{_BUDGET_SYNTAX}, or leave out the ':' for every endpoint")
    parts = [part for part in conditions.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"{where}: no limit given; write limits {_BUDGET_SYNTAX}")
    limits: dict[str, str] = {}
    for part in parts:
        match = _CONDITION.match(part)
        if match is None:
            raise ConfigError(f"{where}: {part.strip()!r} is not a limit; write METRIC<LIMIT {_BUDGET_SYNTAX}")
        metric = _BUDGET_METRICS.get(match["metric"].lower())
        if metric is None:
            raise ConfigError(f"{where}: unknown metric {match['metric']!r} in {part.strip()!r}; use p50, p95, "
                              "p99, failure_rate or rps")
        wanted = ">" if metric == "rps" else "<"
        if not match["op"].startswith(wanted):
            bound = "at least (rps>20)" if metric == "rps" else f"at most ({metric}<...)"
            raise ConfigError(f"{where}: {part.strip()!r} points the wrong way; a {metric} budget is {bound}")
        if metric in limits:
            raise ConfigError(f"{where}: {metric} is limited twice; keep one limit per metric")
        limits[metric] = match["value"]
    try:
        # A bare number is milliseconds, as in the config file (where TOML gives it as a number).
        values: dict[str, Any] = {k: float(v) if k != "failure_rate" and re.fullmatch(r"\d+(\.\d+)?", v) else v
                                  for k, v in limits.items()}
        if "rps" in values:
            try:
                values["rps"] = _finite(float(values["rps"]), "a throughput")
            except ValueError:
                raise ConfigError(f"{where}: rps {limits['rps']!r} is not a number of requests per second "
                                  "such as 20") from None
        return Budget(endpoint=endpoint, **values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "limit"
        message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
        raise ConfigError(f"{where}: {field} {limits.get(field, '')!r}: {message}") from None


class StepShape(BoundaryModel):
    """A step load: add ``step_users`` every ``step_time`` until the profile's users are reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step_users: int = Field(ge=1)
    """Users added at each step."""
    step_time: Duration = Field(gt=0)
    """Seconds between steps."""


class ProfileOverlay(BoundaryModel):
    """A profile as written in a config file: every field optional."""

    model_config = ConfigDict(extra="forbid")

    extends: str | None = None
    """Built-in profile this one starts from (required for a new profile name)."""
    locustfile: str | None = None
    host: str | None = None
    users: int | None = Field(default=None, ge=1)
    spawn_rate: float | None = Field(default=None, gt=0)
    run_time: Duration | None = Field(default=None, gt=0)
    warmup: Duration | None = None
    user_classes: dict[str, Annotated[int, Field(ge=1)]] | None = None
    tags: list[str] | None = None
    exclude_tags: list[str] | None = None
    processes: Processes | None = None
    step: StepShape | None = None
    stop_timeout: Duration | None = None
    target_rps: float | None = Field(default=None, gt=0)
    """Requests per second the profile should achieve; a run below 90 % of it is invalid."""


class ServeConfig(BoundaryModel):
    """How to start the service under test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str
    """Shell command; ``{port}`` is replaced by the port to listen on."""
    ready_url: str | None = None
    """URL that answers 2xx once the service is ready; ``{port}`` allowed."""
    ready_timeout: Duration = 30.0
    """Seconds to wait for the ready URL."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Fixed port for ``{port}``; a free one is chosen when unset."""


class AbConfig(BoundaryModel):
    """``perfgate ab``: how many pairs, when to look, what to run first."""

    model_config = ConfigDict(extra="forbid")

    looks: list[Annotated[int, Field(ge=2)]] = Field(default_factory=lambda: [3, 6, 10])
    """Numbers of pairs after which the data are judged (increasing)."""
    max_pairs: int | None = Field(default=None, ge=2)
    """Stop after this many pairs (default: the last look)."""
    max_time: Duration = 900.0
    """Start no pair that would end after this many seconds; judge what was measured."""
    setup: str | None = None
    """Shell command run once in each tree before serving it (``uv sync``, a build)."""
    reset: str | None = None
    """Shell command run in each tree before every serve (``rm -f app.db``): every run starts from the same state."""
    confirm: bool = False
    """Re-measure a REGRESSED verdict in fresh pairs; report it only if it holds."""
    confirm_pairs: int = Field(default=5, ge=2)
    """Pairs of the confirmation."""

    @field_validator("looks")
    @classmethod
    def _increasing(cls, looks: list[int]) -> list[int]:
        if not looks or any(b <= a for a, b in zip(looks, looks[1:], strict=False)):
            raise ValueError("must be a non-empty, increasing list of pair counts, e.g. [3, 6, 10]")
        return looks

    def planned_looks(self) -> list[int]:
        """The looks up to the pair budget; the budget itself is always the last look."""
        budget = self.max_pairs or self.looks[-1]
        return [n for n in self.looks if n < budget] + [budget]


class ReportConfig(BoundaryModel):
    """How verdicts are presented."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    """Added to the sticky comment's marker, for several gates of one profile on one pull request."""
    full_report: str | None = Field(default=None, max_length=300)
    """Where readers find the full report (a URL or a phrase), named when the comment had to be cut."""


class PerfgateConfig(BoundaryModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid")

    db: Path = DEFAULT_DB
    """SQLite store, relative to the config file's folder."""
    main_branch: str = "main"
    profile: str = "smoke"
    """Profile used when none is named on the command line."""
    locustfile: str | None = None
    """Default locustfile for every profile."""
    host: str | None = None
    """Default host for every profile."""
    serve: ServeConfig | None = None
    profiles: dict[str, ProfileOverlay] = Field(default_factory=dict)
    compare: CompareConfig = CompareConfig()
    ab: AbConfig = AbConfig()
    report: ReportConfig = ReportConfig()
    budgets: list[Budget] = Field(default_factory=list)


class ResolvedProfile(BoundaryModel):
    """A profile with every value concrete: what is run and what is recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    locustfile: str
    """Absolute path of the locustfile."""
    host: str
    host_from_user_classes: bool = False
    """The host is the User classes' own ``host``: Locust gets no ``-H``, so no class's host is replaced."""
    users: int
    spawn_rate: float
    run_time: float
    """Seconds of load, warm-up included."""
    warmup: float
    """Seconds at the start whose requests are not measured."""
    user_classes: dict[str, int] = Field(default_factory=dict)
    """User class name → weight; empty means every class in the locustfile."""
    tags: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    processes: int = 1
    step: StepShape | None = None
    stop_timeout: float = 0.0
    target_rps: float | None = None
    """Requests per second the load should achieve; a run below 90 % of it is invalid."""
    locust_args: list[str] = Field(default_factory=list)
    """Extra Locust arguments given after ``--``, passed through unchanged."""
    run_time_given: bool = False
    """``-t`` was given on the command line: it also bounds a locustfile's own LoadTestShape."""
    load_shape: str | None = None
    """The locustfile's own LoadTestShape class; ``users`` is then the peak it reached."""

    def load_parameters(self) -> dict[str, Any]:
        """The parameters that must match for two runs to be comparable."""
        parameters = self.model_dump(include={
            "users", "spawn_rate", "run_time", "warmup", "user_classes", "tags",
            "exclude_tags", "step", "target_rps",
        })
        # Only when given: runs and baseline files from before extra arguments existed lack the key.
        if self.locust_args:
            parameters["locust_args"] = list(self.locust_args)
        if self.load_shape:
            parameters["load_shape"] = self.load_shape
        return parameters


BUILTIN_PROFILES: dict[str, ProfileOverlay] = {
    "smoke": ProfileOverlay(users=5, spawn_rate=5, run_time=15, warmup=2),
    "light": ProfileOverlay(users=10, spawn_rate=1, run_time=60, warmup=10),
    "medium": ProfileOverlay(users=20, spawn_rate=2, run_time=300, warmup=15),
    "heavy": ProfileOverlay(users=50, spawn_rate=5, run_time=600, warmup=15),
    "spike": ProfileOverlay(users=100, spawn_rate=10, run_time=180, warmup=10),
    "endurance": ProfileOverlay(users=50, spawn_rate=1, run_time=1800, warmup=60),
}


class Overrides(BoundaryModel):
    """Command-line values, named like Locust's flags; ``None`` means not given."""

    model_config = ConfigDict(extra="forbid")

    locustfile: str | None = None
    host: str | None = None
    users: int | None = Field(default=None, ge=1)
    spawn_rate: float | None = Field(default=None, gt=0)
    run_time: Duration | None = Field(default=None, gt=0)
    warmup: Duration | None = None
    tags: list[str] | None = None
    exclude_tags: list[str] | None = None
    processes: Processes | None = None
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
        return resolve_profile(self, profile or self.config.profile, overrides or Overrides(), served=served)

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
            raise ConfigError(_flag_message(exc, typed, AB_FLAGS, self.source, "ab")) from None

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
            raise ConfigError(_flag_message(exc, typed, SERVE_FLAGS, self.source, "serve")) from None


def _describe(source: Path | None) -> str:
    return str(source) if source else "command line"


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
"""What pydantic puts before the message of a validator's own ``ValueError``: noise to a user."""

AB_FLAGS = {"looks": "--looks", "max_pairs": "--max-pairs", "max_time": "--max-time", "setup": "--setup",
            "reset": "--reset", "confirm": "--confirm", "confirm_pairs": "--confirm-pairs"}
"""The command-line flag of each ``[ab]`` setting."""
SERVE_FLAGS = {"command": "--serve", "ready_url": "--ready-url", "ready_timeout": "--ready-timeout"}
"""The command-line flag of each ``[serve]`` setting."""


def _message(item: Mapping[str, Any]) -> str:
    message = str(item["msg"])
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def _validation_message(source: Path | None, error: ValidationError, prefix: str = "") -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in (*([prefix] if prefix else []), *item["loc"]))
        message = _message(item)
        if "input" in item and item["type"] not in ("missing",) and not isinstance(item["input"], dict):
            message += f" (got {item['input']!r})"
        parts.append(f"{location}: {message}")
    return f"{_describe(source)}: " + "; ".join(parts)


def _flag_message(error: ValidationError, typed: Mapping[str, Any], flags: Mapping[str, str],
                  source: Path | None, table: str) -> str:
    """Errors of command-line values by the flag and the value as typed; the others by their place in the file."""
    parts = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if field in typed and field in flags:
            value = typed[field]
            shown = value if isinstance(value, str) else repr(value)
            parts.append(f"{flags[field]} {shown}: {_message(item)}")
        else:
            location = ".".join(str(p) for p in (table, *item["loc"]))
            got = f" (got {item['input']!r})" if "input" in item and item["type"] != "missing" \
                and not isinstance(item["input"], dict) else ""
            parts.append(f"{_describe(source)}: {location}: {_message(item)}{got}")
    return "; ".join(parts)


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
        raise ConfigError(_validation_message(path, exc, prefix)) from None
    return LoadedConfig(config=config, source=path, root=path.parent)


def _extends_message(source: Path | None, name: str, extends: str | None) -> str:
    """One line naming the profile, what its ``extends`` says, and the profiles it may extend."""
    choices = ", ".join(BUILTIN_PROFILES)
    where = f"{_describe(source)}: profiles.{name}"
    if extends is None:
        return (f"{where}: profile {name!r} is not built in, so it needs extends = one of: {choices} "
                f"(e.g. extends = \"light\")")
    return f"{where}.extends = {extends!r} is not a built-in profile; extend one of: {choices}"


def resolve_profile(loaded: LoadedConfig, name: str, overrides: Overrides, *, served: bool = False) -> ResolvedProfile:
    """Merge built-in profile, config file and command line into a :class:`ResolvedProfile`."""
    config = loaded.config
    overlay = config.profiles.get(name)
    if name in BUILTIN_PROFILES:
        base = BUILTIN_PROFILES[name]
    elif overlay is not None:
        if overlay.extends is None or overlay.extends not in BUILTIN_PROFILES:
            raise ConfigError(_extends_message(loaded.source, name, overlay.extends))
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
    locustfile = Path(merged["locustfile"])
    if not locustfile.is_absolute():
        locustfile = (Path.cwd() if from_cli else loaded.root) / locustfile
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
        raise ConfigError(_validation_message(loaded.source, exc, f"profiles.{name}")) from None
