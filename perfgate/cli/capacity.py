"""``perfgate capacity``: search the highest arrival rate meeting the objectives, store it by commit, print it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perfgate.cli.common import (
    ConfigOption,
    DbOption,
    ExcludeTagsOption,
    FormatOption,
    HtmlOption,
    JsonFileOption,
    LocustfileOption,
    OutputFormat,
    ProfileOption,
    ReadyTimeoutOption,
    ReadyUrlOption,
    ServeOption,
    TagsOption,
    WarmupOption,
    app,
    load_profile,
    notify,
    open_store,
    stdout,
)
from perfgate.config import CapacityConfig, LoadedConfig, ResolvedProfile, ServeConfig
from perfgate.errors import ExitCode
from perfgate.output import write_text_atomic

if TYPE_CHECKING:
    from perfgate.capacity.judge import CapacityVerdict
    from perfgate.capacity.steps import CapacityRequest

DEFAULT_STEP_TIME = "10s"
DEFAULT_STEP_WARMUP = "2s"


@app.command()
def capacity(
    slo: Annotated[list[str] | None, typer.Option("--slo", help="An objective every step must meet, in the "
                                                  "budgets' syntax: 'p95<60ms', 'failures<1%', "
                                                  "'GET /items*: p99<200ms' (repeatable).")] = None,
    profile: ProfileOption = None,
    locustfile: LocustfileOption = None,
    host: Annotated[str | None, typer.Option("-H", "--host", help="Base URL of the service under test.")] = None,
    run_time: Annotated[str | None, typer.Option("-t", "--run-time", help="Each step's length, e.g. 10s "
                                                 f"(default {DEFAULT_STEP_TIME}).")] = None,
    warmup: WarmupOption = None,
    tags: TagsOption = None,
    exclude_tags: ExcludeTagsOption = None,
    start_rate: Annotated[float | None, typer.Option("--start-rate", help="The first rate offered, task "
                                                     "iterations per second (default 10).")] = None,
    growth: Annotated[float | None, typer.Option("--growth", help="Each climbing step offers this many times "
                                                 "the last (default 1.5).")] = None,
    max_rate: Annotated[float | None, typer.Option("--max-rate", help="The most the search offers "
                                                   "(default 2000/s).")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", help="Refinements of the knee; their spread "
                                                "makes the interval (default 3).")] = None,
    resolution: Annotated[str | None, typer.Option("--resolution", help="A refinement stops when its bracket "
                                                   "is this narrow, e.g. 5% (default).")] = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    json_path: JsonFileOption = None,
    html_path: HtmlOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Find the service's capacity: the highest arrival rate (open loop: iterations start on a schedule, however
    slowly the service answers) at which every objective holds, with an interval, and store it by commit.

    Exits 0 with a capacity, 3 when the search could not tell (the generator could not offer a rate, or the
    capacity lies outside the rates searched). Compare two commits with `perfgate compare --capacity`.
    """
    from perfgate.capacity.steps import run_capacity
    from perfgate.reports.capacity import capacity_html, print_capacity, step_line

    loaded, serve_config, resolved = load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, locustfile=locustfile,
        host=host, run_time=run_time or DEFAULT_STEP_TIME, warmup=warmup or DEFAULT_STEP_WARMUP, tags=tags,
        exclude_tags=exclude_tags)
    settings = loaded.capacity_settings(start_rate=start_rate, growth=growth, max_rate=max_rate, repeats=repeats,
                                        resolution=resolution)
    request = capacity_request(loaded, settings, serve_config, resolved, slo)
    with open_store(loaded, db) as store:
        record = run_capacity(request, store, on_step=lambda step: notify(step_line(step)))
    text = record.model_dump_json(indent=2)
    if json_path is not None:
        write_text_atomic(json_path, text + "\n")
    if html_path is not None:
        write_text_atomic(html_path, capacity_html(record))
    if output_format is OutputFormat.json:
        print(text)
    else:
        print_capacity(stdout, record)
    raise typer.Exit(ExitCode.OK if record.valid and record.capacity is not None else ExitCode.UNDECIDED)


def ab_capacity_command(*, config: Path | None, profile: str | None, locustfile: str | None, host: str | None,
                        run_time: str | None, warmup: str | None, tags: list[str] | None,
                        exclude_tags: list[str] | None, serve: str | None, ready_url: str | None,
                        ready_timeout: str | None, slo: list[str] | None, base: str | None, setup: str | None,
                        db: Path | None, strict: bool | None, output_format: str, json_path: Path | None,
                        markdown_path: Path | None) -> None:
    """``perfgate ab --capacity``: search base and head in fresh trees, judge, exit by the verdict."""
    from perfgate.capacity.ab import ab_capacity
    from perfgate.reports.capacity import step_line

    loaded, serve_config, resolved = load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, always_served=True,
        locustfile=locustfile, host=host, run_time=run_time or DEFAULT_STEP_TIME,
        warmup=warmup or DEFAULT_STEP_WARMUP, tags=tags, exclude_tags=exclude_tags)
    settings = loaded.capacity_settings()
    request = capacity_request(loaded, settings, serve_config, resolved, slo)
    with open_store(loaded, db) as store:
        verdict, _, _ = ab_capacity(request, store, notify, base_ref=base, main_branch=loaded.config.main_branch,
                                    setup=setup or loaded.config.ab.setup, margin=settings.margin,
                                    alpha=loaded.config.compare.alpha,
                                    on_step=lambda side, step: notify(f"{side} {step_line(step)}"))
    deliver_capacity(verdict, output_format, strict, json_path=json_path, markdown_path=markdown_path)


def capacity_request(loaded: LoadedConfig, settings: CapacityConfig, serve_config: ServeConfig | None,
                     resolved: ResolvedProfile, slo: list[str] | None) -> CapacityRequest:
    """What to search, from the config's ``[capacity]`` with the command line on top."""
    from perfgate.capacity.search import SearchPlan
    from perfgate.capacity.steps import CapacityRequest, objectives_of

    objectives = objectives_of(settings.slo, slo or [], str(loaded.source or "the config"))
    plan = SearchPlan(start=settings.start_rate, growth=settings.growth, max_rate=settings.max_rate,
                      repeats=settings.repeats, resolution=settings.resolution)
    return CapacityRequest(profile=resolved, objectives=objectives, plan=plan, repo_dir=Path.cwd(),
                           serve=serve_config, serve_cwd=Path.cwd(), ignore=loaded.own_paths())


def deliver_capacity(verdict: CapacityVerdict, output_format: str, strict: bool | None, *,
                     json_path: Path | None = None, markdown_path: Path | None = None,
                     output: Path | None = None) -> None:
    """Print a capacity verdict, write it to the files asked for, and exit by it."""
    from perfgate.reports.capacity import capacity_markdown, print_capacity_verdict

    as_json, as_markdown = verdict.model_dump_json(indent=2) + "\n", capacity_markdown(verdict)
    if json_path is not None:
        write_text_atomic(json_path, as_json)
    if markdown_path is not None:
        write_text_atomic(markdown_path, as_markdown)
    if output is not None:
        write_text_atomic(output, as_json if output_format == "json" else as_markdown)
    if output_format == "json":
        print(as_json, end="")
    elif output_format == "markdown":
        print(as_markdown, end="")
    else:
        print_capacity_verdict(stdout, verdict)
    raise typer.Exit(verdict.exit_code(strict=bool(strict)))
