"""The ``perfgate`` command: parse arguments, call the library, render, map outcomes to exit codes.

Errors from the library arrive as :class:`~perfgate.errors.PerfgateError` and are
printed here, once, as one line on stderr; nothing below this module prints errors.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from perfgate import __version__, interrupts
from perfgate.config import Budget, LoadedConfig, Overrides, ResolvedProfile, ServeConfig, load_config, parse_budget
from perfgate.errors import BaselineError, ConfigError, ExitCode, Interrupted, PerfgateError
from perfgate.output import write_text_atomic

# Modules that load Locust's runner, SQLite utilities or NumPy are imported by the commands that use them:
# `comment` and `github` run in a job that installs only what posting needs.
if TYPE_CHECKING:
    from perfgate.decide.verdict import Verdict
    from perfgate.records import RunRecord
    from perfgate.reports.markdown import CommentLinks
    from perfgate.store import Store

# Help text is shown as written: rich markup would take "[tool.perfgate]" or "[report]" for a style tag.
app = typer.Typer(
    name="perfgate", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="A statistical performance gate for HTTP services, built on Locust.",
)
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


def _open_store(loaded: LoadedConfig, db: Path | None, *, create: bool = True) -> Store:
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

_locust_args: list[str] = []
"""Extra Locust arguments: what followed ``--`` on a load command's command line."""


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
            raise ConfigError(f"{option} needs at least one tag, e.g. {option} read write")
        option, values = (token, 0) if token in MULTI_VALUE_OPTIONS else (None, 0)
        if option is None:
            spelt.append(token)
    if option is not None and values == 0:
        raise ConfigError(f"{option} needs at least one tag, e.g. {option} read write")
    return spelt, extra


def _load_profile(config: Path | None, profile: str | None, *, serve: str | None, ready_url: str | None,
                  ready_timeout: str | None, always_served: bool = False,
                  **load: object) -> tuple[LoadedConfig, ServeConfig | None, ResolvedProfile]:
    """The config, the serve settings and the profile, from the file with the command line's load flags on top."""
    loaded = load_config(config)
    serve_config = loaded.serve(serve, ready_url, ready_timeout)
    for key in ("tags", "exclude_tags"):
        load[key] = _split(load.get(key))  # type: ignore[arg-type]
    load["locust_args"] = list(_locust_args) or None
    resolved = loaded.resolve(profile, Overrides.from_cli(**load),
                              served=always_served or serve_config is not None)
    return loaded, serve_config, resolved


def _budgets(texts: list[str] | None) -> list[Budget]:
    """The ``--budget`` flags as budgets (a :class:`ConfigError` naming the flag for a bad one)."""
    return [parse_budget(text) for text in texts or []]


def _notify(line: str) -> None:
    """Progress of a long command (ab, calibrate), one line each, on stderr."""
    stderr.print(line, markup=False, highlight=False)


def _print_record(run: RunRecord, output_format: OutputFormat, min_requests: int | None = None) -> None:
    from perfgate.reports.console import print_run

    if output_format is OutputFormat.json:
        print(run.model_dump_json(indent=2))
    else:
        print_run(stdout, run, min_requests)


@app.command()
def run(
    profile: ProfileOption = None,
    locustfile: LocustfileOption = None,
    host: Annotated[str | None, typer.Option("-H", "--host", help="Base URL of the service under test.")] = None,
    users: UsersOption = None,
    spawn_rate: SpawnRateOption = None,
    run_time: RunTimeOption = None,
    warmup: WarmupOption = None,
    tags: TagsOption = None,
    exclude_tags: ExcludeTagsOption = None,
    processes: ProcessesOption = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    junit: JunitOption = None,
    json_path: JsonFileOption = None,
    budget: BudgetOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Run a load profile headless, record every request, store the run under the current commit, and judge
    the budgets on it.

    Extra Locust arguments go after --; they are recorded and must match across a comparison.
    """
    from perfgate.decide.budgets import run_budgets
    from perfgate.measure.record import RunRequest, exit_code, record_run
    from perfgate.reports.console import print_budgets, progress_display
    from perfgate.reports.junit import run_junit

    command_line_budgets = _budgets(budget)
    loaded, serve_config, resolved = _load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, locustfile=locustfile,
        host=host, users=users, spawn_rate=spawn_rate, run_time=run_time, warmup=warmup, tags=tags,
        exclude_tags=exclude_tags, processes=processes)
    with _open_store(loaded, db) as store:
        with progress_display(stderr) as on_progress:
            recorded = record_run(RunRequest(profile=resolved, repo_dir=Path.cwd(), serve=serve_config,
                                             serve_cwd=Path.cwd(), ignore=loaded.own_paths()),
                                  store, on_progress=on_progress)
    budgets = run_budgets(recorded, loaded.config.budgets, command_line_budgets)
    run_json = json.dumps({**json.loads(recorded.model_dump_json()),
                           "budgets": [b.model_dump(mode="json") for b in budgets]}, indent=2)
    if json_path is not None:
        write_text_atomic(json_path, run_json + "\n")
    if junit is not None:
        write_text_atomic(junit, run_junit(recorded))
    if output_format is OutputFormat.json:
        print(run_json)
    else:
        _print_record(recorded, output_format, loaded.config.compare.min_requests)
        print_budgets(stdout, budgets)
    raise typer.Exit(exit_code(recorded, budgets))


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
    from perfgate.reports.console import runs_table

    with _open_store(load_config(config), db, create=False) as store:
        found = store.runs(commit=commit, branch=branch, profile=profile, limit=limit, endpoints=False)
    if output_format is OutputFormat.json:
        print("[" + ",\n".join(r.model_dump_json(exclude={"endpoints", "service"}) for r in found) + "]")
    elif found:
        stdout.print(runs_table(found))
    else:
        stderr.print("no runs match; record one with `perfgate run`")


@app.command("import")
def import_runs(
    files: Annotated[list[Path], typer.Argument(help="Unsaved-run files, as named when the store could not "
                                                "take a run (in unsaved/ beside the store).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Store runs that were kept in files because the store could not take them; a run already stored is skipped."""
    from perfgate.spill import read_spill

    spilled = [(path, read_spill(path)) for path in files]  # every file checked before anything is stored
    with _open_store(load_config(config), db) as store:
        for path, item in spilled:
            run = item.run
            what = f"{(run.git.commit or 'no commit')[:10]} {run.profile.name} {run.started_at.isoformat()}"
            if (existing := store.find_same(run)) is not None:
                stdout.print(f"skipped {path}: already stored as run {existing} ({what})", markup=False)
                continue
            saved = store.save(run)
            stdout.print(f"stored {path} as run {saved.id} ({what})", markup=False)
    stdout.print("the files are kept; delete them once you no longer need them", markup=False)


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="Run id, as listed by `perfgate runs`.")],
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Print one stored run."""
    with _open_store(load_config(config), db, create=False) as store:
        _print_record(store.get(run_id), output_format)


@app.command()
def compare(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile to compare.")] = None,
    base: Annotated[str | None, typer.Option("--base", help="Baseline commit or ref (default: the merge-base "
                                             "with the main branch, or its nearest ancestor with runs).")] = None,
    head: Annotated[str | None, typer.Option("--head", help="Head commit or ref (default: the current tree).")] = None,
    base_run: Annotated[list[int] | None, typer.Option("--base-run", help="Baseline run id (repeatable).")] = None,
    head_run: Annotated[list[int] | None, typer.Option("--head-run", help="Head run id (repeatable).")] = None,
    pinned: Annotated[bool | None, typer.Option("--pinned/--no-pinned", help="Force or ignore the pinned "
                                                "baseline in baselines/<profile>.json.")] = None,
    budget: BudgetOption = None,
    strict: StrictOption = None,
    output: OutputOption = None,
    html_path: HtmlOption = None,
    junit: JunitOption = None,
    json_path: JsonFileOption = None,
    markdown_path: MarkdownFileOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: VerdictFormatOption = VerdictFormat.text,
) -> None:
    """Compare the head's runs with the baseline's: per endpoint and metric, regressed, unchanged or inconclusive."""
    # The statistics (SciPy) load only for the commands that decide: the others start fast.
    from perfgate.baselines.gate_inputs import gate_changes
    from perfgate.baselines.history import with_history
    from perfgate.baselines.selection import changed_baselines, select
    from perfgate.decide.compare import compare as compare_sides

    command_line_budgets = _budgets(budget)
    loaded = load_config(config)
    settings = loaded.config.compare
    with _open_store(loaded, db, create=False) as store:
        chosen = select(store, loaded, profile or loaded.config.profile, Path.cwd(), head_ref=head,
                        head_run_ids=head_run, base_ref=base, base_run_ids=base_run, pinned=pinned,
                        has_command_line_budgets=bool(command_line_budgets))
        verdict = compare_sides(chosen.base, chosen.head, settings, budgets=loaded.config.budgets,
                                command_line_budgets=command_line_budgets,
                                expected_budgets=chosen.expected_budgets, expected_source=chosen.expected_source,
                                notes=chosen.notes)
        verdict = with_history(verdict, store, Path.cwd(), loaded.config.main_branch)
        verdict = verdict.model_copy(update={"baseline_changes": changed_baselines(loaded, Path.cwd()),
                                             "gate_changes": gate_changes(loaded, Path.cwd(), profile=verdict.profile)})
        html = _html_report(verdict, store, html_path)
    _deliver_verdict(verdict, loaded, output_format, output, strict, html,
                     files=VerdictFiles(junit=junit, json=json_path, markdown=markdown_path), command="compare")


def _html_report(verdict: Verdict, store: Store, path: Path | None) -> str | None:
    """The HTML report, when asked for or when GitHub Actions will want it; written to ``path`` when given."""
    from perfgate.publish.github_actions import in_github_actions
    from perfgate.reports.html import report_for_verdict

    if path is None and not in_github_actions():
        return None
    html = report_for_verdict(verdict, store)
    if path is not None:
        write_text_atomic(path, html)
    return html


@dataclass(frozen=True)
class VerdictFiles:
    """The files a verdict is also written to, each in its own format (``--junit``, ``--json``, ``--markdown``)."""

    junit: Path | None = None
    json: Path | None = None
    markdown: Path | None = None


def _deliver_verdict(verdict: Verdict, loaded: LoadedConfig, output_format: VerdictFormat, output: Path | None,
                     strict: bool | None, html: str | None = None, *, files: VerdictFiles = VerdictFiles(),
                     command: str = "compare") -> None:
    """Print the verdict, write it to ``output`` and ``files``, publish it in GitHub Actions, and exit by it."""
    from perfgate.decide.compare import exit_code as verdict_exit_code
    from perfgate.publish.github import workflow_run_url
    from perfgate.publish.github_actions import publish
    from perfgate.reports.console import print_verdict
    from perfgate.reports.junit import verdict_junit
    from perfgate.reports.markdown import CommentLinks, render_markdown

    settings = loaded.config.report
    links = CommentLinks.for_run(workflow_run_url(os.environ), with_report=html is not None)
    markdown = render_markdown(verdict, marker_id=settings.id, full_report=settings.full_report, links=links)
    rendered = {VerdictFormat.json: verdict.to_json(), VerdictFormat.markdown: markdown}
    if output_format is VerdictFormat.text:
        print_verdict(stdout, verdict)
    else:
        sys.stdout.write(rendered[output_format])
    if output is not None:
        write_text_atomic(output, rendered.get(output_format, markdown))
    if files.json is not None:
        write_text_atomic(files.json, rendered[VerdictFormat.json])
    if files.markdown is not None:
        write_text_atomic(files.markdown, markdown)
    if files.junit is not None:
        write_text_atomic(files.junit, verdict_junit(verdict, command))
    code = verdict_exit_code(verdict, strict=loaded.config.compare.strict if strict is None else strict)
    publish(verdict=verdict.outcome.value, exit_code=int(code), markdown=markdown,
            json_text=rendered[VerdictFormat.json], html=html, profile=verdict.profile)
    raise typer.Exit(code)


@app.command()
def ab(
    profile: ProfileOption = None,
    locustfile: LocustfileOption = None,
    users: UsersOption = None,
    spawn_rate: SpawnRateOption = None,
    run_time: RunTimeOption = None,
    warmup: WarmupOption = None,
    tags: TagsOption = None,
    exclude_tags: ExcludeTagsOption = None,
    processes: ProcessesOption = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    base: Annotated[str | None, typer.Option("--base", help="Base commit or ref (default: the merge-base "
                                             "with the main branch).")] = None,
    setup: SetupOption = None,
    reset: ResetOption = None,
    looks: Annotated[str | None, typer.Option("--looks", help="Pair counts at which to judge, e.g. 3,6,10.")] = None,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=2, help="Stop after this many pairs.")] = None,
    max_time: Annotated[str | None, typer.Option("--max-time", help="Start no pair that would end later "
                                                 "than this, e.g. 10m.")] = None,
    confirm: Annotated[bool | None, typer.Option("--confirm/--no-confirm", help="Measure a regression again "
                                                 "in fresh pairs and report it only if it holds.")] = None,
    confirm_pairs: Annotated[int | None, typer.Option("--confirm-pairs", min=2, help="Pairs of the "
                                                      "confirmation.")] = None,
    budget: BudgetOption = None,
    strict: StrictOption = None,
    output: OutputOption = None,
    html_path: HtmlOption = None,
    junit: JunitOption = None,
    json_path: JsonFileOption = None,
    markdown_path: MarkdownFileOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: VerdictFormatOption = VerdictFormat.text,
) -> None:
    """Measure base and head in this job, in balanced pairs, and decide per endpoint with a paired test.

    Extra Locust arguments go after --.
    """
    from perfgate.ab.session import AbRequest, ab_in_repository
    from perfgate.baselines.gate_inputs import gate_changes
    from perfgate.baselines.history import with_history
    from perfgate.baselines.selection import changed_baselines

    command_line_budgets = _budgets(budget)
    loaded, serve_config, resolved = _load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, always_served=True,
        locustfile=locustfile, users=users, spawn_rate=spawn_rate, run_time=run_time, warmup=warmup, tags=tags,
        exclude_tags=exclude_tags, processes=processes)
    settings = loaded.ab_settings(looks=looks, max_pairs=max_pairs, max_time=max_time, setup=setup, reset=reset,
                                  confirm=confirm, confirm_pairs=confirm_pairs)
    request = AbRequest(loaded=loaded, settings=settings, profile=resolved, serve=serve_config, cwd=Path.cwd(),
                        base_ref=base, command_line_budgets=command_line_budgets)
    with _open_store(loaded, db) as store:
        result = ab_in_repository(request, store, notify=_notify)
        verdict = with_history(result.verdict, store, Path.cwd(), loaded.config.main_branch)
        verdict = verdict.model_copy(update={"baseline_changes": changed_baselines(loaded, Path.cwd()),
                                             "gate_changes": gate_changes(loaded, Path.cwd(), profile=verdict.profile,
                                                                          locustfiles=[resolved.locustfile])})
        html = _html_report(verdict, store, html_path)
    _deliver_verdict(verdict, loaded, output_format, output, strict, html,
                     files=VerdictFiles(junit=junit, json=json_path, markdown=markdown_path), command="ab")


@app.command()
def calibrate(
    profile: ProfileOption = None,
    locustfile: LocustfileOption = None,
    users: UsersOption = None,
    spawn_rate: SpawnRateOption = None,
    run_time: RunTimeOption = None,
    warmup: WarmupOption = None,
    tags: TagsOption = None,
    exclude_tags: ExcludeTagsOption = None,
    processes: ProcessesOption = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    pairs: Annotated[int, typer.Option("--pairs", help="A/A pairs to run (at least 3).")] = 6,
    setup: SetupOption = None,
    reset: ResetOption = None,
    write: Annotated[bool, typer.Option("--write", help="Add the suggested margins (and run length) to the "
                                        "config file.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Run A/A pairs of the current build: noise per endpoint, what the gate can detect, suggested margins.

    Extra Locust arguments go after --.
    """
    import dataclasses

    from perfgate.ab.calibrate import calibrate as run_calibration
    from perfgate.ab.calibrate import check_writable_config, write_suggestions
    from perfgate.reports.console import print_calibration

    loaded, serve_config, resolved = _load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, always_served=True,
        locustfile=locustfile, users=users, spawn_rate=spawn_rate, run_time=run_time, warmup=warmup, tags=tags,
        exclude_tags=exclude_tags, processes=processes)
    if write:
        check_writable_config(loaded)  # before minutes of measuring, not after
    with _open_store(loaded, db) as store:
        result = run_calibration(loaded, loaded.ab_settings(setup=setup, reset=reset), resolved, serve_config,
                                 Path.cwd(), pairs, store, notify=_notify)
    if output_format is OutputFormat.json:
        data = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("verdict", "profile")}
        print(json.dumps(data, indent=2, default=str))
    else:
        print_calibration(stdout, result, loaded.config.compare.min_requests)
    if write:
        path = write_suggestions(loaded, result)
        stderr.print(f"wrote the suggestions to {path}", markup=False)


@app.command()
def report(
    run_id: Annotated[int | None, typer.Argument(help="One run to report on (default: the comparison that "
                                                 "`perfgate compare` would make).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile to compare.")] = None,
    base: Annotated[str | None, typer.Option("--base", help="Baseline commit or ref.")] = None,
    head: Annotated[str | None, typer.Option("--head", help="Head commit or ref.")] = None,
    base_run: Annotated[list[int] | None, typer.Option("--base-run", help="Baseline run id (repeatable).")] = None,
    head_run: Annotated[list[int] | None, typer.Option("--head-run", help="Head run id (repeatable).")] = None,
    pinned: Annotated[bool | None, typer.Option("--pinned/--no-pinned", help="Force or ignore the pinned "
                                                "baseline.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a self-contained HTML report: the verdict with charts of every run, or one run's charts."""
    from perfgate.baselines.history import with_history
    from perfgate.baselines.selection import select
    from perfgate.decide.compare import compare as compare_sides
    from perfgate.reports.html import render_html, report_for_verdict

    loaded = load_config(config)
    with _open_store(loaded, db, create=False) as store:
        if run_id is not None:
            html = render_html(verdict=None, base=[], head=[store.get(run_id)], title=f"perfgate · run {run_id}")
        else:
            chosen = select(store, loaded, profile or loaded.config.profile, Path.cwd(), head_ref=head,
                            head_run_ids=head_run, base_ref=base, base_run_ids=base_run, pinned=pinned)
            verdict = compare_sides(chosen.base, chosen.head, loaded.config.compare, budgets=loaded.config.budgets,
                                    expected_budgets=chosen.expected_budgets,
                                    expected_source=chosen.expected_source, notes=chosen.notes)
            verdict = with_history(verdict, store, Path.cwd(), loaded.config.main_branch)
            html = report_for_verdict(verdict, store)
    write_text_atomic(output, html)
    stdout.print(f"wrote {output}", markup=False)


class CommentModeOption(StrEnum):
    always = "always"
    on_change = "on-change"


class CheckOption(StrEnum):
    none = "none"
    check_run = "check-run"
    status = "status"


def _post(verdict_path: Path, repo: str | None, pr: int | None, author: str, mode: CommentModeOption,
          check: CheckOption, report_id: str | None, config: Path | None, *, require_head: bool,
          links: CommentLinks, head_sha: str | None = None, post_comment: bool = True) -> int:
    """Post the verdict of ``verdict_path``; the verdict's exit code, or 4 when GitHub failed."""
    import os

    from perfgate.decide.verdict import exit_code as verdict_exit_code
    from perfgate.decide.verify import VerdictRefusedError, describe_problems
    from perfgate.publish.github import (
        UNVERIFIED_NOTICE,
        CheckKind,
        CommentMode,
        client_from_environment,
        load_verdict,
        post_verdict,
        pull_request_from_event,
        refusal_markdown,
        refused_check,
        with_unverified_notice,
        workflow_run_url,
    )
    from perfgate.publish.github_actions import write_step_summary
    from perfgate.reports.markdown import MAX_COMMENT_CHARS, marker, render_markdown

    loaded = load_config(config)
    settings = loaded.config.report
    marker_id = report_id or settings.id
    target = pull_request_from_event(os.environ, repo, pr, head_sha)
    try:
        verdict = load_verdict(verdict_path)
    except VerdictRefusedError as refused:
        # A verdict whose parts disagree never passes: its comment and check are replaced by a refusal.
        stderr.print("perfgate: the verdict's parts disagree:\n  "
                     + describe_problems(refused.problems, most=50, separator="\n  "), markup=False)
        text = marker(refused.verdict.profile, marker_id)
        post_verdict(client_from_environment(os.environ), target, refused.verdict, refusal_markdown(text), text,
                     exit_code=int(refused.exit_code), author=author, mode=CommentMode.ALWAYS,
                     check=CheckKind(check.value), require_head=require_head, comment=post_comment,
                     details_url=workflow_run_url(os.environ), outcome=refused_check())
        raise
    if target.from_fork:
        room = MAX_COMMENT_CHARS - 2 * len(UNVERIFIED_NOTICE) - 4
        markdown = with_unverified_notice(render_markdown(verdict, marker_id=marker_id, links=links,
                                                          full_report=settings.full_report, limit=room))
    else:
        markdown = render_markdown(verdict, marker_id=marker_id, full_report=settings.full_report, links=links)
    code = int(verdict_exit_code(verdict, strict=loaded.config.compare.strict))
    result = post_verdict(client_from_environment(os.environ), target, verdict, markdown,
                          marker(verdict.profile, marker_id), exit_code=code, author=author,
                          mode=CommentMode(mode.value), check=CheckKind(check.value), require_head=require_head,
                          comment=post_comment, details_url=workflow_run_url(os.environ))
    where = f"{target.repository}#{target.number}"
    if result.comment == "stale":
        stderr.print(f"perfgate: notice: {result.message}", markup=False)
        return 0
    if result.comment == "forbidden" or result.check == "forbidden":
        write_step_summary(markdown, once=True)
        stderr.print(f"perfgate: warning: {result.message}; the verdict is in the job summary", markup=False)
    if result.comment not in ("forbidden", "off"):
        stdout.print(f"comment {result.comment} on {where}" + (f": {result.comment_url}" if result.comment_url
                                                                 else ""), markup=False)
    if result.check != "none":
        stdout.print(f"{check.value} {result.check}", markup=False)
    return code


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


@app.command()
def github(
    verdict: VerdictFileOption,
    repo: RepoOption = None,
    pr: PrOption = None,
    author: AuthorOption = "github-actions[bot]",
    mode: CommentOption = CommentModeOption.always,
    check: CheckKindOption = CheckOption.none,
    report_id: ReportIdOption = None,
    post_comment: Annotated[bool, typer.Option("--comment/--no-comment", help="Post the comment (off: only "
                                               "the check).")] = True,
    run_url: RunUrlOption = None,
    report_url: ReportUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Post the verdict as the pull request's sticky comment from the gate's own job; exit by the verdict."""
    from perfgate.publish.github import workflow_run_url
    from perfgate.reports.markdown import CommentLinks

    links = CommentLinks(run=run_url or workflow_run_url(os.environ), report=report_url or None)
    raise typer.Exit(_post(verdict, repo, pr, author, mode, check, report_id, config, require_head=False,
                           links=links, post_comment=post_comment))


@app.command()
def comment(
    verdict: VerdictFileOption,
    repo: RepoOption = None,
    pr: PrOption = None,
    author: AuthorOption = "github-actions[bot]",
    mode: CommentOption = CommentModeOption.always,
    check: CheckKindOption = CheckOption.none,
    report_id: ReportIdOption = None,
    head_sha: Annotated[str | None, typer.Option("--head-sha", help="The head the measuring workflow ran for "
                                                 "(default: from the workflow_run event).")] = None,
    run_url: RunUrlOption = None,
    report_url: ReportUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Post a verdict from an artifact (untrusted) to its pull request, only if it is about the PR's current head.

    This job's own run is not the one that measured: the links come from ``--run-url`` and ``--report-url``.
    """
    from perfgate.reports.markdown import CommentLinks

    _post(verdict, repo, pr, author, mode, check, report_id, config, require_head=True, head_sha=head_sha,
          links=CommentLinks(run=run_url or None, report=report_url or None))


@app.command()
def gitlab(
    verdict: VerdictFileOption,
    mr: Annotated[int | None, typer.Option("--mr", help="Merge request IID (default: CI_MERGE_REQUEST_IID).")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project ID or path (default: CI_PROJECT_ID).")]
    = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help="GitLab API URL (default: CI_API_V4_URL).")] = None,
    report_id: ReportIdOption = None,
    config: ConfigOption = None,
) -> None:
    """Post the verdict as the merge request's sticky note (token: PERFGATE_GITLAB_TOKEN); exit by the verdict."""
    from perfgate.decide.verdict import exit_code as verdict_exit_code
    from perfgate.decide.verify import VerdictRefusedError
    from perfgate.publish.github import load_verdict, refusal_markdown
    from perfgate.publish.gitlab import (
        MAX_NOTE_CHARS,
        GitLabClient,
        post_note,
        target_from_environment,
        token_from_environment,
    )
    from perfgate.reports.markdown import marker, render_markdown

    loaded = load_config(config)
    marker_id = report_id or loaded.config.report.id
    target = target_from_environment(os.environ, api_url=api_url, project=project, iid=mr)
    client = GitLabClient(target.api_url, token_from_environment(os.environ))
    try:
        parsed = load_verdict(verdict)
    except VerdictRefusedError as refused:  # never posted as it is: the note says it was refused
        text = marker(refused.verdict.profile, marker_id)
        post_note(client, target, refusal_markdown(text), text)
        raise
    markdown = render_markdown(parsed, marker_id=marker_id, full_report=loaded.config.report.full_report,
                               limit=MAX_NOTE_CHARS)
    result = post_note(client, target, markdown, marker(parsed.profile, marker_id))
    stdout.print(f"note {result.state} on {target} (note {result.note_id})", markup=False)
    raise typer.Exit(int(verdict_exit_code(parsed, strict=loaded.config.compare.strict)))


class HistoryMetric(StrEnum):
    p50 = "p50"
    p95 = "p95"
    p99 = "p99"
    rps = "rps"


@app.command()
def history(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
    endpoint: Annotated[list[str] | None, typer.Option("--endpoint", "-e", help="Endpoint, e.g. 'GET /items' "
                                                       "(a glob; repeatable; default: all).")] = None,
    metric: Annotated[HistoryMetric, typer.Option("--metric", "-m", help="Metric.")] = HistoryMetric.p50,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch (default: the main branch).")] = None,
    commits: Annotated[int, typer.Option("--commits", min=2, help="Commits to look back.")] = 30,
    # The old name, kept working; -n is `perfgate runs`' count of runs only.
    limit: Annotated[int | None, typer.Option("--limit", min=2, hidden=True)] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """An endpoint's metric over the commits of a branch, with the commits where its level shifted."""
    import fnmatch

    from perfgate.baselines.history import branch_runs, same_parameters, trends
    from perfgate.environment import environment_key
    from perfgate.reports.console import print_history

    loaded = load_config(config)
    branch = branch or loaded.config.main_branch
    profile = profile or loaded.config.profile
    with _open_store(loaded, db, create=False) as store:
        line = branch_runs(store, Path.cwd(), branch, profile, None, limit=limit or commits)
    if line:  # one environment: the newest run's, as a comparison would use
        newest = max((r for _, runs in line for r in runs), key=lambda r: r.started_at)
        line = [(c, kept) for c, runs in line
                if (kept := [r for r in runs if environment_key(r.environment) == environment_key(newest.environment)])]
    line, left_out = same_parameters(line)
    keys = sorted({e.stats.key for _, runs in line for r in runs for e in r.endpoints})
    if endpoint:
        keys = [k for k in keys if any(fnmatch.fnmatchcase(k, pattern) for pattern in endpoint)]
    margin = loaded.config.compare.margin("", "throughput" if metric is HistoryMetric.rps else metric.value)
    found = trends(line, branch, metric=metric.value, endpoints=keys, margin=margin)
    if not found:
        raise BaselineError(f"no history of profile {profile!r} on {branch!r} in the store: it needs runs on two "
                            f"or more of its commits{' for these endpoints' if endpoint else ''}; record them with "
                            "`perfgate run` on the branch")
    if output_format is OutputFormat.json:
        print(json.dumps([t.model_dump(mode="json") for t in found], indent=2))
    else:
        print_history(stdout, found)
    if left_out:
        # On stderr, so the JSON on stdout stays one document.
        stderr.print(f"{left_out} run{'s' if left_out != 1 else ''} with other load parameters than the newest run's "
                     "left out (users, spawn rate, run time, warm-up, tags or Locust arguments differ)")


baseline_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="Accepted baselines: reviewed files in baselines/.")
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("accept")
def baseline_accept(
    reason: Annotated[str, typer.Option("--reason", help="Why this baseline is accepted (kept in the file).")],
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
    run: Annotated[list[int] | None, typer.Option("--run", help="Run id to accept (repeatable; default: the "
                                                  "runs of the current commit).")] = None,
    commit: Annotated[str | None, typer.Option("--commit", help="Accept the runs of this commit.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 90d.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write baselines/<profile>.json from chosen runs, to be reviewed and merged like code."""
    from perfgate.baselines.selection import accept

    loaded = load_config(config)
    with _open_store(loaded, db, create=False) as store:
        path = accept(store, loaded, Path.cwd(), profile=profile or loaded.config.profile, reason=reason,
                      run_ids=run, commit_ref=commit, expires=expires)
    stdout.print(f"wrote {path}; commit it and open a pull request so the change is reviewed")


@baseline_app.command("show")
def baseline_show(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
    config: ConfigOption = None,
) -> None:
    """Print the pinned baseline of a profile."""
    from perfgate.baselines.selection import baseline_path, read_pinned
    from perfgate.reports.console import print_pinned

    loaded = load_config(config)
    path = baseline_path(loaded, profile or loaded.config.profile)
    pinned = read_pinned(path)
    if pinned is None:
        raise BaselineError(f"no pinned baseline at {path}; accept one with `perfgate baseline accept`")
    print_pinned(stdout, path, pinned)


@baseline_app.command("list")
def baseline_list(config: ConfigOption = None) -> None:
    """List the pinned baselines."""
    from perfgate.baselines.selection import list_pinned
    from perfgate.reports.console import pinned_table

    loaded = load_config(config)
    found = list_pinned(loaded)
    if not found:
        stderr.print(f"no pinned baselines in {loaded.baselines_dir}")
        return
    stdout.print(pinned_table(found))


@baseline_app.command("import")
def baseline_import(
    table: Annotated[Path, typer.Argument(help="JSON table of expected p50/p95/p99/rps per endpoint.")],
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Where the expectations come from.")] = "",
    config: ConfigOption = None,
) -> None:
    """Import expected values per endpoint as the profile's absolute budgets."""
    from perfgate.baselines.selection import import_expected

    loaded = load_config(config)
    path = import_expected(loaded, Path.cwd(), profile=profile or loaded.config.profile, table=table, reason=reason)
    stdout.print(f"wrote {path}; `perfgate compare` now checks the head against these expectations")


@app.command()
def init(
    check: Annotated[bool, typer.Option("--check", help="Try the config init wrote: a short run of the service "
                                        "under load, in a throwaway store.")] = False,
    locustfile: Annotated[str | None, typer.Option("-f", "--locustfile", help="The locustfile (default: the one "
                                                   "found, locustfile.py first).")] = None,
    serve: Annotated[str | None, typer.Option("--serve", help="The command that serves the app on {port} "
                                              "(default: proposed from the app found).")] = None,
    ready_url: Annotated[str | None, typer.Option("--ready-url", help="URL that answers once the app is up "
                                                  "(FastAPI: http://127.0.0.1:{port}/openapi.json).")] = None,
    host: Annotated[str | None, typer.Option("-H", "--host", help="A service that is already running, "
                                             "instead of --serve.")] = None,
    setup: Annotated[str | None, typer.Option("--setup", help="Run in each fresh tree before serving it "
                                              "(default: uv sync, or pip install -r requirements.txt).")] = None,
    perfgate_ref: Annotated[str | None, typer.Option("--perfgate-ref", help="OWNER/REPO@SHA of the perfgate the "
                                                     "workflows pin (default: the commit this one was installed "
                                                     "from).")] = None,
    main_branch: Annotated[str, typer.Option("--main-branch", help="The branch whose pushes are recorded.")] = "main",
    force: Annotated[bool, typer.Option("--force", help="Replace files that exist.")] = False,
    config: ConfigOption = None,
) -> None:
    """Set perfgate up in this repository: perfgate.toml and the three workflows, pinned to this perfgate."""
    from perfgate import scaffold

    root = Path.cwd()
    if check:
        code = scaffold.check(root, config or root / "perfgate.toml")
        if code == 0:
            stdout.print("init --check passed: the service served, took load and gave a valid run")
        else:
            stderr.print(f"init --check failed: `perfgate run` exited {code} (see above); fix perfgate.toml and "
                         "run `perfgate init --check` again")
        raise typer.Exit(code)
    ref = scaffold.PerfgateRef.parse(perfgate_ref) if perfgate_ref else scaffold.installed_ref()
    if ref is None:
        raise ConfigError("cannot tell which commit of perfgate this is (it was not installed from a GitHub "
                          "commit): pass --perfgate-ref OWNER/REPO@<40-hex SHA> of the perfgate the workflows "
                          "should use")
    found = scaffold.detect(root)
    chosen_locustfile = locustfile or (found.locustfiles[0] if found.locustfiles else None)
    if chosen_locustfile is None:
        raise ConfigError("no locustfile found (a .py file importing locust); write one, or pass -f PATH")
    chosen_serve = None if host else (serve or found.serve)
    if not host and chosen_serve is None:
        raise ConfigError("no app found to serve (FastAPI, Flask, Django, or a uvicorn/gunicorn command in "
                          "Procfile, Dockerfile, Makefile or README.md); pass --serve 'CMD --port {port}' "
                          "or -H URL")
    files = scaffold.render(ref=ref, version=__version__, locustfile=chosen_locustfile, serve=chosen_serve,
                            ready_url=ready_url or (found.ready_url if not serve else None), host=host,
                            setup=setup if setup is not None else found.setup, main_branch=main_branch)
    for line in (f"locustfile: {chosen_locustfile}" + (f" (also found: {', '.join(found.locustfiles[1:4])})"
                                                         if len(found.locustfiles) > 1 else ""),
                 f"app: {found.app or 'none found'}", f"serve: {chosen_serve or 'none: ' + str(host)}",
                 *found.notes, f"perfgate: {ref.action}"):
        stdout.print(line, markup=False)
    for path in scaffold.write(root, files, force=force):
        name = str(path.relative_to(root))
        stdout.print(f"wrote {name}: {scaffold.EXPLAINED[name]}", markup=False)
    stdout.print("next: `perfgate init --check`, then commit the files and add the label performance-test to a "
                 "pull request", markup=False)


@app.command()
def demo(
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Folder for the verdict and the "
                                                    "store (default: a new temporary folder).")] = None,
    run_time: Annotated[str, typer.Option("-t", "--run-time", help="Length of each run.")] = "10s",
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=2, help="Stop after this many pairs.")] = None,
) -> None:
    """The whole gate in a few minutes: A/B of two commits of the demo service, one of them slower."""
    import importlib

    from perfgate.demo.walkthrough import run_demo

    missing = []
    for name in ("fastapi", "uvicorn"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"perfgate demo needs the demo extra ({', '.join(missing)} missing): install perfgate "
                          "with it, e.g. `uv tool install 'perfgate[demo]'` or `pip install 'perfgate[demo]'`")

    raise typer.Exit(run_demo(stdout, stderr, output_dir=output_dir, run_time=run_time, max_pairs=max_pairs))


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
    global _debug, _locust_args
    _debug = os.environ.get("PERFGATE_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    interrupts.install()
    try:
        own, _locust_args = split_locust_style(sys.argv[1:])
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
