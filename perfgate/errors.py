"""One error hierarchy for perfgate, and the exit code each failure domain maps to.

Everything below the CLI raises a subclass of :class:`PerfgateError`; the CLI is the
only place that catches them, prints their one-line message and exits with
their ``exit_code``. A message says what is wrong and how to fix it.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Process exit codes; documented in the README."""

    OK = 0
    """Pass: the run was recorded (or the gate found no regression)."""
    REGRESSION = 1
    """A regression, a failed budget or a failed correctness check."""
    USAGE = 2
    """Usage or configuration error: fix the command, the config or the locustfile."""
    UNDECIDED = 3
    """The run or comparison is invalid (or inconclusive under --strict)."""
    TOOL = 4
    """Tool or infrastructure error: Locust crashed, the service or store failed."""
    HANGUP = 129
    """Stopped by SIGHUP (128 + 1): the terminal went away; the unfinished run was not stored."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C, SIGINT (128 + 2); the unfinished run was not stored."""
    TERMINATED = 143
    """Stopped by SIGTERM (128 + 15), e.g. a cancelled CI job; the unfinished run was not stored."""


class PerfgateError(Exception):
    """Base of every error perfgate reports to a user."""

    exit_code: ExitCode = ExitCode.TOOL


class UsageError(PerfgateError):
    """A command-line value is wrong: a flag's value, a ref that names no commit, options that exclude each
    other, a command run where it cannot work (outside a git repository)."""

    exit_code = ExitCode.USAGE


class ConfigError(PerfgateError):
    """The configuration file or one of its profiles is wrong (or a value that overrides it)."""

    exit_code = ExitCode.USAGE


class NotFoundError(PerfgateError):
    """Something asked for is not there: a run, a baseline, a history; the message says how to make it."""

    exit_code = ExitCode.USAGE


class LocustfileError(PerfgateError):
    """The locustfile is missing or cannot be loaded."""

    exit_code = ExitCode.USAGE


class StoreError(PerfgateError):
    """The run store cannot be opened, read or written."""

    exit_code = ExitCode.USAGE


class StoreBusyError(StoreError):
    """The store is locked by another process."""

    exit_code = ExitCode.TOOL


class StoreDiskError(StoreError):
    """The disk under the store refused a read or write (full, failing, gone): infrastructure, not usage."""

    exit_code = ExitCode.TOOL


class StoreNotFoundError(StoreError):
    """A command that only reads found no store at the path given (and created none)."""

    exit_code = ExitCode.USAGE


class RunNotStoredError(StoreError):
    """A finished run could not be stored; it was written to a spill file instead (or, failing that, lost)."""

    exit_code = ExitCode.TOOL

    def __init__(self, message: str, spill_path: Path | None = None) -> None:
        super().__init__(message)
        self.spill_path = spill_path
        """Where the run is kept until ``perfgate import`` stores it; ``None`` when no file could be written."""


class SpillFileError(PerfgateError):
    """A file given to ``perfgate import`` is not a readable, valid unsaved-run file."""

    exit_code = ExitCode.USAGE


class BaselineError(PerfgateError):
    """A pinned baseline file is damaged or unusable."""

    exit_code = ExitCode.USAGE


class OutputError(PerfgateError):
    """A file perfgate was asked to write cannot be written."""

    exit_code = ExitCode.USAGE


class RunNotFoundError(NotFoundError):
    """No stored run matches what was asked for."""


class TargetUnreachableError(PerfgateError):
    """The host under test does not accept connections."""

    exit_code = ExitCode.TOOL


class ServiceError(PerfgateError):
    """The service under test failed to start, become ready or stop."""

    exit_code = ExitCode.TOOL


class LoadRunError(PerfgateError):
    """Locust crashed, hung or produced no results."""

    exit_code = ExitCode.TOOL


class WorkersMissingError(LoadRunError):
    """A distributed run's master gave up waiting for its workers."""


class WorkerRefusedError(PerfgateError):
    """A worker of a distributed run runs another locustfile or perfgate than its master."""

    exit_code = ExitCode.USAGE


class GitError(PerfgateError):
    """A git command failed where perfgate needed its answer."""

    exit_code = ExitCode.TOOL


class Interrupted(PerfgateError):
    """Ctrl-C, or SIGTERM or SIGHUP: perfgate was told to stop. The exit code is 128 + the signal."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, *, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum
        if signum is not None and 128 + signum in ExitCode._value2member_map_:
            self.exit_code = ExitCode(128 + signum)


class SetupError(PerfgateError):
    """A setup or reset command (``--setup``, ``--reset``) failed in one of the trees."""

    exit_code = ExitCode.TOOL


class GitHubError(PerfgateError):
    """GitHub could not be read or written, after retries (a token that may not write is not an error)."""

    exit_code = ExitCode.TOOL


class GitLabError(PerfgateError):
    """GitLab could not be read or written: a token it refuses, a project or merge request it does not show,
    or server errors that outlasted the retries."""

    exit_code = ExitCode.TOOL
