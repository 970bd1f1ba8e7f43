"""What every command shares: the Typer app, the two consoles, the options, and the steps that open the config,
the store and a load profile from the command line.

Commands read the config only through :func:`load`: one place, also for tests that replace it.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from perfgate.config import Budget, LoadedConfig, Overrides, ResolvedProfile, ServeConfig, load_config, parse_budget
from perfgate.errors import UsageError

# Modules that load Locust's runner, SQLite utilities or NumPy are imported by the commands that use them:
# `comment` and `github` run in a job that installs only what posting needs.
if TYPE_CHECKING:
    from perfgate.records import RunRecord
    from perfgate.store import Store

# Help text is shown as written: rich markup would take "[tool.perfgate]" or "[report]" for a style tag.
app = typer.Typer(
    name="perfgate", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="A statistical performance gate for HTTP services, built on Locust.",
)
baseline_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="Accepted baselines: reviewed files in baselines/.")
PIPE_WIDTH = 1000
"""Columns when writing to a pipe or a CI log: wide enough that a table row never wraps (logs scroll sideways)."""
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class VerdictFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class CommentModeOption(StrEnum):
    always = "always"
    on_change = "on-change"


class CheckOption(StrEnum):
    none = "none"
    check_run = "check-run"
    status = "status"


ConfigOption = Annotated[Path | None, typer.Option("--config", help="Config file (default: nearest perfgate.toml "
                                                   "or pyproject.toml with [tool.perfgate]).")]
DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite store (default: .perfgate/perfgate.db).")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]

ProfileOption = Annotated[str | None, typer.Option("--profile", "-p", help="Load profile (smoke, light, medium, "
                                                   "heavy, spike, endurance, or one from the config).")]
LocustfileOption = Annotated[str | None, typer.Option("-f", "--locustfile", help="Locustfile to run.")]
UsersOption = Annotated[int | None, typer.Option("-u", "--users", help="Peak number of users.")]
SpawnRateOption = Annotated[float | None, typer.Option("-r", "--spawn-rate", help="Users started per second.")]
RunTimeOption = Annotated[str | None, typer.Option("-t", "--run-time", help="Run time, e.g. 90s, 5m.")]
WarmupOption = Annotated[str | None, typer.Option("--warmup", help="Leading time not measured, e.g. 10s.")]
TagsOption = Annotated[list[str] | None, typer.Option("-T", "--tags", help="Only tasks with these tags "
                                                     "(-T a b, -T a -T b or -T a,b).")]
ExcludeTagsOption = Annotated[list[str] | None, typer.Option("-E", "--exclude-tags", help="No tasks with these "
                                                             "tags (as -T).")]
ProcessesOption = Annotated[int | None, typer.Option("--processes", help="Locust processes (master + workers); "
                                                     "-1: one per core.")]
MasterOption = Annotated[bool, typer.Option("--master", help="Run as Locust's master: the load comes from "
                                            "`perfgate worker` processes, here or on other machines.")]
ExpectWorkersOption = Annotated[int | None, typer.Option("--expect-workers", help="Workers the master waits "
                                                         "for before the load starts.")]
WorkersMaxWaitOption = Annotated[str | None, typer.Option("--expect-workers-max-wait", help="How long the master "
                                                          "waits for them, e.g. 2m (default 120 s).")]
MasterBindHostOption = Annotated[str | None, typer.Option("--master-bind-host", help="Interface the master "
                                                          "listens on for workers (default: every interface).")]
MasterBindPortOption = Annotated[int | None, typer.Option("--master-bind-port", help="Port the master listens "
                                                          "on for workers (default 5557).")]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="Make the load with this many "
                                                  "remote Locust workers (`perfgate worker --stay`, as processes): "
                                                  "each run starts a master that waits for them; the services "
                                                  "stay here.")]
ServedHostOption = Annotated[str | None, typer.Option("-H", "--host", help="URL the load reaches each served "
                                                      "version at, with {port} (default http://127.0.0.1:{port}; "
                                                      "for workers on other machines an address of this one).")]
MetricsUrlOption = Annotated[str | None, typer.Option("--metrics-url", help="The service's Prometheus or "
                                                      "OpenMetrics endpoint, scraped once a second during the "
                                                      "run ({port}: the served port), e.g. "
                                                      "http://127.0.0.1:{port}/metrics.")]
MetricOption = Annotated[list[str] | None, typer.Option("--metric", help="A series to keep besides resident "
                                                        "memory, CPU seconds and open files, e.g. "
                                                        "app_db_queries_total (repeatable).")]
ServeOption = Annotated[str | None, typer.Option("--serve", help="Command that starts the service (for ab: in "
                                                 "each version's tree); {port} is replaced by a free port.")]
ReadyUrlOption = Annotated[str | None, typer.Option("--ready-url", help="URL answering 2xx once the service is "
                                                    "ready, e.g. http://127.0.0.1:{port}/health.")]
ReadyTimeoutOption = Annotated[str | None, typer.Option("--ready-timeout", help="How long to wait for it, e.g. "
                                                      "30s, 2m (a plain number is seconds).")]
StrictOption = Annotated[bool | None, typer.Option("--strict/--no-strict", help="Inconclusive verdicts fail "
                                                   "with exit code 3 too (invalid ones always do).")]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Also write the verdict to this file "
                                                   "(format from --format; Markdown for text).")]
VerdictFormatOption = Annotated[VerdictFormat, typer.Option("--format", help="Output format.")]
SetupOption = Annotated[str | None, typer.Option("--setup", help="Command run once in each fresh worktree before "
                                                 "serving it, e.g. 'uv sync' (ignored files are not there).")]
ResetOption = Annotated[str | None, typer.Option("--reset", help="Command run in each tree before every serve, "
                                                 "e.g. 'rm -f app.db', so every run starts from the same state.")]
BudgetOption = Annotated[list[str] | None, typer.Option("--budget", help="A one-off budget, repeatable, e.g. "
                                                       "'GET /items*: p95<100ms, failure_rate<1%, rps>20' (no "
                                                       "'ENDPOINT:' means every endpoint); judged with the "
                                                       "config's budgets.")]
HtmlOption = Annotated[Path | None, typer.Option("--html", help="Also write the HTML report (charts of every "
                                                 "run, self-contained) to this file.")]
JunitOption = Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML test report (for "
                                                  "GitLab, Jenkins and other CIs) to this file.")]
JsonFileOption = Annotated[Path | None, typer.Option("--json", help="Also write the JSON to this file, whatever "
                                                     "--format is.")]
MarkdownFileOption = Annotated[Path | None, typer.Option("--markdown", help="Also write the Markdown verdict to "
                                                         "this file, whatever --format is.")]

VerdictFileOption = Annotated[Path, typer.Option("--verdict", help="The verdict JSON written by compare or ab "
                                                 "(--format json -o, or the json-path output).")]
RepoOption = Annotated[str | None, typer.Option("--repo", help="OWNER/NAME (default: GITHUB_REPOSITORY).")]
PrOption = Annotated[int | None, typer.Option("--pr", help="Pull request number (default: from the event).")]
AuthorOption = Annotated[str, typer.Option("--author", help="Login whose comment is the sticky one.")]
CommentOption = Annotated[CommentModeOption, typer.Option("--mode", help="always: comment on every run; "
                                                          "on-change: only for a verdict other than unchanged.")]
CheckKindOption = Annotated[CheckOption, typer.Option("--check", help="Also create a check run or a commit "
                                                      "status with the verdict.")]
ReportIdOption = Annotated[str | None, typer.Option("--id", help="Added to the comment's marker (default: "
                                                    "[report] id).")]
RunUrlOption = Annotated[str | None, typer.Option("--run-url", help="The workflow run that measured the verdict, "
                                                  "linked from the comment (an https URL).")]
ReportUrlOption = Annotated[str | None, typer.Option("--report-url", help="Where the full report is (the run's "
                                                     "artifact), linked from the comment (an https URL).")]


def load(config: Path | None) -> LoadedConfig:
    """The config at ``--config``, or the nearest one: the one place commands read it."""
    return load_config(config)


def open_store(loaded: LoadedConfig, db: Path | None, *, create: bool = True) -> Store:
    """The store at ``--db`` or the config's path; ``create=False`` for commands that only read."""
    from perfgate.store import Store

    return Store(db if db is not None else loaded.db_path, create=create)


def _split(values: list[str] | None) -> list[str] | None:
    """``-T a -T b,c`` → ``[a, b, c]``."""
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


LOAD_COMMANDS = frozenset({"run", "ab", "calibrate"})
"""Commands that run Locust: they take Locust's multi-value -T/-E and extra Locust arguments after ``--``."""
MULTI_VALUE_OPTIONS = frozenset({"-T", "--tags", "-E", "--exclude-tags"})

locust_args: list[str] = []
"""Extra Locust arguments: what followed ``--`` on a load command's command line (set by :func:`main`)."""


def split_locust_style(argv: list[str]) -> tuple[list[str], list[str]]:
    """perfgate's own arguments, spelt for Click, and the extra Locust arguments after ``--``.

    Locust's ``-T a b`` takes every word up to the next option; Click options take one value, so on a load
    command it becomes ``-T a -T b`` (no load command has a positional argument to confuse it with).
    """
    command = next((token for token in argv if not token.startswith("-")), None)
    if command not in LOAD_COMMANDS:
        return list(argv), []
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (list(argv), [])
    spelt: list[str] = []
    option, values = None, 0
    for token in own:
        if option is not None and not token.startswith("-"):
            spelt += [option, token]
            values += 1
            continue
        if option is not None and values == 0:
            raise UsageError(f"{option} needs at least one tag, e.g. {option} read write")
        option, values = (token, 0) if token in MULTI_VALUE_OPTIONS else (None, 0)
        if option is None:
            spelt.append(token)
    if option is not None and values == 0:
        raise UsageError(f"{option} needs at least one tag, e.g. {option} read write")
    return spelt, extra


def load_profile(config: Path | None, profile: str | None, *, serve: str | None, ready_url: str | None,
                 ready_timeout: str | None, always_served: bool = False,
                 **load_flags: object) -> tuple[LoadedConfig, ServeConfig | None, ResolvedProfile]:
    """The config, the serve settings and the profile, from the file with the command line's load flags on top."""
    loaded = load(config)
    serve_config = loaded.serve(serve, ready_url, ready_timeout)
    for key in ("tags", "exclude_tags"):
        load_flags[key] = _split(load_flags.get(key))  # type: ignore[arg-type]  # -T/-E arrive as lists
    load_flags["locust_args"] = list(locust_args) or None
    resolved = loaded.resolve(profile, Overrides.from_cli(**load_flags),
                              served=always_served or serve_config is not None)
    return loaded, serve_config, resolved


def budgets_from(texts: list[str] | None) -> list[Budget]:
    """The ``--budget`` flags as budgets (an error naming the flag for a bad one)."""
    return [parse_budget(text) for text in texts or []]


def notify(line: str) -> None:
    """Progress of a long command (ab, calibrate), one line each, on stderr."""
    stderr.print(line, markup=False, highlight=False)


def print_record(run: RunRecord, output_format: OutputFormat, min_requests: int | None = None) -> None:
    from perfgate.reports.console import print_run

    if output_format is OutputFormat.json:
        print(run.model_dump_json(indent=2))
    else:
        print_run(stdout, run, min_requests)
