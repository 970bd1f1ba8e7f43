"""The ``perfgate`` command: parse arguments, call the library, render, map outcomes to exit codes.

Errors from the library arrive as :class:`~perfgate.errors.PerfgateError` and are
printed here, once, as one line on stderr; nothing below this module prints errors.
"""

from __future__ import annotations

import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from perfgate import __version__
from perfgate.config import LoadedConfig, Overrides, load_config
from perfgate.console import print_run, progress_display, runs_table
from perfgate.errors import Interrupted, PerfgateError
from perfgate.models import RunRecord
from perfgate.record import RunRequest, exit_code, record_run
from perfgate.store import Store

app = typer.Typer(
    name="perfgate", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="A statistical performance gate for HTTP services, built on Locust.",
)
# Tables must not wrap into unreadable columns in CI logs and pipes.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


ConfigOption = Annotated[Path | None, typer.Option("--config", help="Config file (default: nearest perfgate.toml "
                                                   "or pyproject.toml with [tool.perfgate]).")]
DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite store (default: .perfgate/perfgate.db).")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


def _open_store(loaded: LoadedConfig, db: Path | None) -> Store:
    return Store(db if db is not None else loaded.db_path)


def _split(values: list[str] | None) -> list[str] | None:
    """``-T a -T b,c`` → ``[a, b, c]``."""
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def _print_record(run: RunRecord, output_format: OutputFormat) -> None:
    if output_format is OutputFormat.json:
        print(run.model_dump_json(indent=2))
    else:
        print_run(stdout, run)


@app.command()
def run(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Load profile (smoke, light, medium, "
                                                "heavy, spike, endurance, or one from the config).")] = None,
    locustfile: Annotated[str | None, typer.Option("-f", "--locustfile", help="Locustfile to run.")] = None,
    host: Annotated[str | None, typer.Option("-H", "--host", help="Base URL of the service under test.")] = None,
    users: Annotated[int | None, typer.Option("-u", "--users", help="Peak number of users.")] = None,
    spawn_rate: Annotated[float | None, typer.Option("-r", "--spawn-rate", help="Users started per second.")] = None,
    run_time: Annotated[str | None, typer.Option("-t", "--run-time", help="Run time, e.g. 90s, 5m.")] = None,
    warmup: Annotated[str | None, typer.Option("--warmup", help="Leading time not measured, e.g. 10s.")] = None,
    tags: Annotated[list[str] | None, typer.Option("-T", "--tags", help="Only tasks with these tags.")] = None,
    exclude_tags: Annotated[list[str] | None, typer.Option("-E", "--exclude-tags",
                                                           help="No tasks with these tags.")] = None,
    processes: Annotated[int | None, typer.Option("--processes", help="Locust processes (master + workers).")] = None,
    serve: Annotated[str | None, typer.Option("--serve", help="Command that starts the service; {port} is "
                                              "replaced by a free port.")] = None,
    ready_url: Annotated[str | None, typer.Option("--ready-url", help="URL answering 2xx once the service is "
                                                  "ready, e.g. http://127.0.0.1:{port}/health.")] = None,
    ready_timeout: Annotated[float | None, typer.Option("--ready-timeout", help="Seconds to wait for it.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Run a load profile headless, record every request, and store the run under the current commit."""
    loaded = load_config(config)
    serve_config = loaded.serve(serve, ready_url, ready_timeout)
    overrides = Overrides.from_cli(locustfile=locustfile, host=host, users=users, spawn_rate=spawn_rate,
                                   run_time=run_time, warmup=warmup, tags=_split(tags),
                                   exclude_tags=_split(exclude_tags), processes=processes)
    resolved = loaded.resolve(profile, overrides, served=serve_config is not None)
    with _open_store(loaded, db) as store:
        with progress_display(stderr) as on_progress:
            recorded = record_run(RunRequest(profile=resolved, repo_dir=Path.cwd(), serve=serve_config,
                                             serve_cwd=Path.cwd()), store, on_progress=on_progress)
    _print_record(recorded, output_format)
    raise typer.Exit(exit_code(recorded))


@app.command()
def runs(
    commit: Annotated[str | None, typer.Option("--commit", help="Commit SHA or prefix.")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch name.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile name.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """List stored runs, newest first."""
    with _open_store(load_config(config), db) as store:
        found = store.runs(commit=commit, branch=branch, profile=profile, limit=limit)
    if output_format is OutputFormat.json:
        print("[" + ",\n".join(r.model_dump_json(exclude={"endpoints", "service"}) for r in found) + "]")
    elif found:
        stdout.print(runs_table(found))
    else:
        stderr.print("no runs match; record one with `perfgate run`")


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="Run id, as listed by `perfgate runs`.")],
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Print one stored run."""
    with _open_store(load_config(config), db) as store:
        _print_record(store.get(run_id), output_format)


@app.command()
def demo(
    db: Annotated[Path | None, typer.Option("--db", help="Store for the demo's runs "
                                            "(default: .perfgate/demo.db).")] = None,
    run_time: Annotated[str, typer.Option("-t", "--run-time", help="Length of the demo run.")] = "15s",
) -> None:
    """Serve the bundled demo service, run the smoke profile against it and store the run."""
    from perfgate.demo.walkthrough import run_demo

    raise typer.Exit(run_demo(stdout, stderr, db=db, run_time=run_time))


def _version_callback(value: bool) -> None:
    if value:
        print(f"perfgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """A statistical performance gate for HTTP services, built on Locust."""


def _interrupted(_signum: int, _frame: object) -> None:
    # Raised instead of KeyboardInterrupt so that Click does not turn Ctrl-C into exit code 1 (a regression).
    raise Interrupted("interrupted; nothing was stored")


def main() -> None:
    """Console entry point: the one place where errors become messages and exit codes.

    Typer reports its own usage errors (unknown option, bad type) with exit code 2.
    """
    signal.signal(signal.SIGINT, _interrupted)
    try:
        app()
    except PerfgateError as exc:
        stderr.print(f"perfgate: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(int(exc.exit_code))
