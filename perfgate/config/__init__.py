"""Configuration: ``perfgate.toml`` or ``[tool.perfgate]`` in ``pyproject.toml``.

A *profile* is a named load shape (users, spawn rate, run time, warm-up, ...).
Six profiles are built in; a config file may override any of their fields or add
new profiles that ``extends`` one of them, and the command line overrides any
field again with Locust's own flag names. The outcome is a frozen
:class:`ResolvedProfile` with every value concrete: it is what the runner runs
and what the store records.

The package: :mod:`~perfgate.config.units` (durations, shares, milliseconds),
:mod:`~perfgate.config.budgets` (budgets and their command-line syntax),
:mod:`~perfgate.config.schema` (the file's models), :mod:`~perfgate.config.profiles`
(built-in profiles, overrides, resolving a profile), :mod:`~perfgate.config.loading`
(finding and reading the file) and :mod:`~perfgate.config.messages` (error messages).
Every public name is importable from ``perfgate.config`` itself.
"""

from perfgate.config.budgets import BUDGET_FLAG, Budget, parse_budget
from perfgate.config.loading import AB_FLAGS, CONFIG_FILENAME, SERVE_FLAGS, LoadedConfig, find_config_file, load_config
from perfgate.config.profiles import (
    BUILTIN_PROFILES,
    DEFAULT_LOCUSTFILE,
    DEFAULT_SERVED_HOST,
    Overrides,
    resolve_profile,
)
from perfgate.config.schema import (
    DEFAULT_DB,
    DEFAULT_LOOKS,
    DEFAULT_MARGINS,
    MAX_FAILURE_MARGIN,
    MAX_RELATIVE_MARGIN,
    METRICS,
    AbConfig,
    AbMode,
    CapacityConfig,
    CompareConfig,
    EndpointSettings,
    EnduranceConfig,
    FailureMargin,
    LoadParameters,
    Margins,
    MetricsConfig,
    PerfgateConfig,
    ProfileOverlay,
    RelativeMargin,
    ReportConfig,
    ResolvedProfile,
    ServeConfig,
    StepShape,
)
from perfgate.config.units import (
    EVERY_CORE,
    MAX_DURATION_S,
    Duration,
    Fraction,
    Milliseconds,
    Processes,
    check_processes,
    parse_duration,
    parse_fraction,
    parse_milliseconds,
)

__all__ = [
    "AB_FLAGS", "BUDGET_FLAG", "BUILTIN_PROFILES", "CONFIG_FILENAME", "DEFAULT_DB", "DEFAULT_LOCUSTFILE",
    "DEFAULT_LOOKS", "DEFAULT_MARGINS", "DEFAULT_SERVED_HOST", "EVERY_CORE", "MAX_DURATION_S", "MAX_FAILURE_MARGIN",
    "MAX_RELATIVE_MARGIN", "METRICS", "SERVE_FLAGS", "AbConfig", "AbMode", "Budget", "CapacityConfig",
    "CompareConfig", "Duration",
    "EndpointSettings", "EnduranceConfig", "FailureMargin", "Fraction", "LoadedConfig", "Margins", "MetricsConfig",
    "Milliseconds",
    "Overrides", "LoadParameters", "PerfgateConfig", "Processes", "ProfileOverlay", "RelativeMargin", "ReportConfig",
    "ResolvedProfile",
    "ServeConfig", "StepShape", "check_processes", "find_config_file", "load_config", "parse_budget",
    "parse_duration", "parse_fraction", "parse_milliseconds", "resolve_profile",
]
