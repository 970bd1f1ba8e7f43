"""The ``perfgate`` command: parse arguments, call the library, render, map outcomes to exit codes.

Each command lives in the module of its group (:mod:`~perfgate.cli.runs`, :mod:`~perfgate.cli.verdicts`,
:mod:`~perfgate.cli.forges`, :mod:`~perfgate.cli.baselines`, :mod:`~perfgate.cli.setup`), all on the one
Typer app of :mod:`~perfgate.cli.common`. Errors from the library arrive as
:class:`~perfgate.errors.PerfgateError` and are printed here, once, by :func:`main`, as one line on stderr;
nothing below prints errors.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Annotated

import typer

from perfgate import __version__, interrupts
from perfgate.cli import baselines, capacity, forges, runs, setup, verdicts  # noqa: F401 - each registers its commands
from perfgate.cli.common import app, locust_args, split_locust_style, stderr
from perfgate.errors import ExitCode, Interrupted, PerfgateError

__all__ = ["app", "main", "split_locust_style"]

HELP_ORDER = ("run", "worker", "runs", "import", "show", "compare", "ab", "calibrate", "capacity", "report", "github",
              "comment", "gitlab", "history", "init", "demo")
"""The order ``perfgate --help`` lists the commands in: the order of the work, not of the modules."""
app.registered_commands.sort(key=lambda command: HELP_ORDER.index(command.name or getattr(command.callback,
                                                                                         "__name__", "")))


def _version_callback(value: bool) -> None:
    if value:
        print(f"perfgate {__version__}")
        raise typer.Exit()


_debug = False
"""``--debug`` or ``PERFGATE_DEBUG=1``: an internal error shows its traceback."""


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an "
                                        "error (also: PERFGATE_DEBUG=1).")] = False,
) -> None:
    """A statistical performance gate for HTTP services, built on Locust."""
    global _debug
    _debug = _debug or debug


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def main() -> None:
    """Console entry point: the one place where errors become messages and exit codes.

    Typer reports its own usage errors (unknown option, bad type) with exit code 2, and ``typer.Exit``
    gives each command's own code. A perfgate error is its one line and its exit code; anything else is a
    bug of perfgate, reported as one line with exit code 4, never 1 (the code of a regression).
    """
    global _debug
    _debug = os.environ.get("PERFGATE_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    interrupts.install()
    try:
        own, locust_args[:] = split_locust_style(sys.argv[1:])
        # Standalone mode: Click prints its usage errors and exits 2, typer.Exit exits with its code;
        # every other exception propagates to here.
        app(args=own)
    except PerfgateError as exc:
        if _debug:
            traceback.print_exc()
        message = str(exc)
        stopped_by = interrupts.received()
        if isinstance(exc, Interrupted) and stopped_by is not None and stopped_by != signal.SIGINT:
            message += f" (stopped by {stopped_by.name})"
        code = int(exc.exit_code)
        if isinstance(exc, Interrupted):
            interrupts.ignore_from_now_on()
            if stopped_by is not None:
                code = 128 + stopped_by  # the signal that stopped perfgate, whatever message the error carries
        stderr.print(f"perfgate: error: {message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(code)
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug must not look like a regression
        if _debug:
            traceback.print_exc()
        hint = "" if _debug else "; run with --debug for the traceback"
        stderr.print(f"perfgate: internal error: {type(exc).__name__}: {_one_line(str(exc))}{hint}; please "
                     "report it", markup=False, highlight=False, soft_wrap=True)
        sys.exit(int(ExitCode.TOOL))
