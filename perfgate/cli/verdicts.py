"""Commands that decide: ``perfgate compare`` (stored runs), ``ab`` (base and head measured in this job),
``calibrate`` (A/A noise and margins) and ``report`` (the HTML report). Each asks :mod:`perfgate.gate` for the
verdict and renders it; :func:`deliver` writes it everywhere it was asked for and exits by it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perfgate.cli.capacity import ab_capacity_command, deliver_capacity
from perfgate.cli.common import (
    BudgetOption,
    ConfigOption,
    DbOption,
    ExcludeTagsOption,
    FormatOption,
    HtmlOption,
    JsonFileOption,
    JunitOption,
    LocustfileOption,
    MarkdownFileOption,
    MasterBindHostOption,
    MasterBindPortOption,
    MetricOption,
    MetricsUrlOption,
    OutputFormat,
    OutputOption,
    ProcessesOption,
    ProfileOption,
    ReadyTimeoutOption,
    ReadyUrlOption,
    ResetOption,
    RunTimeOption,
    ServedHostOption,
    ServeOption,
    SetupOption,
    SpawnRateOption,
    StrictOption,
    TagsOption,
    UsersOption,
    VerdictFormat,
    VerdictFormatOption,
    WarmupOption,
    WorkersMaxWaitOption,
    WorkersOption,
    app,
    budgets_from,
    load,
    load_profile,
    notify,
    open_store,
    stderr,
    stdout,
)
from perfgate.config import AbMode, LoadedConfig
from perfgate.errors import UsageError
from perfgate.output import write_text_atomic

# The statistics (SciPy) load only for the commands that decide: the others start fast.
if TYPE_CHECKING:
    from perfgate.gate import GateResult


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
    capacity: Annotated[bool, typer.Option("--capacity", help="Compare the capacity searches (`perfgate "
                                           "capacity`) of head and base instead of their runs.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    output_format: VerdictFormatOption = VerdictFormat.text,
) -> None:
    """Compare the head's runs with the baseline's: per endpoint and metric, regressed, unchanged or inconclusive."""
    from perfgate.gate import Comparison, compare_stored

    if capacity:
        compare_capacity(profile, head, base, strict, output, json_path, markdown_path, db, config, output_format)
        return
    what = Comparison(profile=profile, head_ref=head, head_run_ids=head_run or [], base_ref=base,
                      base_run_ids=base_run or [], pinned=pinned, command_line_budgets=budgets_from(budget))
    loaded = load(config)
    with open_store(loaded, db, create=False) as store:
        result = compare_stored(loaded, store, Path.cwd(), what)
    deliver(result, loaded, output_format, output, strict, html_path,
            files=VerdictFiles(junit=junit, json=json_path, markdown=markdown_path), command="compare")


def compare_capacity(profile: str | None, head: str | None, base: str | None, strict: bool | None,
                     output: Path | None, json_path: Path | None, markdown_path: Path | None, db: Path | None,
                     config: Path | None, output_format: VerdictFormat) -> None:
    """``compare --capacity``: the head's capacity against the baseline's, rendered, exiting by the verdict."""
    from perfgate.capacity.judge import judge_capacity, select_capacity

    loaded = load(config)
    settings = loaded.capacity_settings()
    name = profile or loaded.config.profile
    with open_store(loaded, db, create=False) as store:
        heads, head_label, bases, base_label = select_capacity(store, Path.cwd(), name, loaded.config.main_branch,
                                                               head_ref=head, base_ref=base)
    verdict = judge_capacity(bases, heads, base_label=base_label, head_label=head_label, margin=settings.margin,
                             alpha=loaded.config.compare.alpha)
    deliver_capacity(verdict, output_format.value, strict, json_path=json_path, markdown_path=markdown_path,
                     output=output)


@dataclass(frozen=True)
class VerdictFiles:
    """The files a verdict is also written to, each in its own format (``--junit``, ``--json``, ``--markdown``)."""

    junit: Path | None = None
    json: Path | None = None
    markdown: Path | None = None


def deliver(result: GateResult, loaded: LoadedConfig, output_format: VerdictFormat, output: Path | None,
            strict: bool | None, html_path: Path | None, *, files: VerdictFiles, command: str) -> None:
    """Print the verdict, write it to ``output`` and ``files`` (and the HTML report to ``html_path``), publish it
    in GitHub Actions, and exit by it."""
    from perfgate.decide.verdict import exit_code
    from perfgate.publish.github import workflow_run_url
    from perfgate.publish.github_actions import in_github_actions, publish
    from perfgate.reports.console import print_verdict
    from perfgate.reports.html import render_html
    from perfgate.reports.junit import verdict_junit
    from perfgate.reports.markdown import CommentLinks, render_markdown

    verdict = result.verdict
    # The HTML report, when asked for or when GitHub Actions will want it.
    html = (render_html(verdict=verdict, base=result.base_runs, head=result.head_runs)
            if html_path is not None or in_github_actions() else None)
    if html is not None and html_path is not None:
        write_text_atomic(html_path, html)
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
    code = exit_code(verdict, strict=loaded.config.compare.strict if strict is None else strict)
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
    host: ServedHostOption = None,
    workers: WorkersOption = None,
    expect_workers_max_wait: WorkersMaxWaitOption = None,
    master_bind_host: MasterBindHostOption = None,
    master_bind_port: MasterBindPortOption = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    metrics_url: MetricsUrlOption = None,
    metric: MetricOption = None,
    base: Annotated[str | None, typer.Option("--base", help="Base commit or ref (default: the merge-base "
                                             "with the main branch).")] = None,
    setup: SetupOption = None,
    reset: ResetOption = None,
    mode: Annotated[AbMode | None, typer.Option("--mode", help="duet: both versions served at once under one "
                                                "load, so the machine's noise cancels; alternate: pairs of "
                                                "runs one after the other.")] = None,
    looks: Annotated[str | None, typer.Option("--looks", help="Pair counts (same-moment runs in the duet mode) "
                                              "at which to judge, e.g. 3,6,10.")] = None,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="Stop after this many pairs (same-moment "
                                                "runs in the duet mode; the alternate mode needs 2).")] = None,
    max_time: Annotated[str | None, typer.Option("--max-time", help="Start no pair that would end later "
                                                 "than this, e.g. 10m.")] = None,
    confirm: Annotated[bool | None, typer.Option("--confirm/--no-confirm", help="Measure a regression again "
                                                 "in fresh pairs and report it only if it holds.")] = None,
    confirm_pairs: Annotated[int | None, typer.Option("--confirm-pairs", min=2, help="Pairs of the "
                                                      "confirmation.")] = None,
    budget: BudgetOption = None,
    capacity: Annotated[bool, typer.Option("--capacity", help="Search the capacity of base and head instead "
                                           "(objectives from --slo and [capacity]; -t is each step's "
                                           "length), and judge head/base.")] = False,
    slo: Annotated[list[str] | None, typer.Option("--slo", help="With --capacity: an objective every step must "
                                                  "meet, e.g. 'p95<60ms' (repeatable).")] = None,
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
    """Measure base and head in this job, at the same moments by default (or in alternate pairs), and decide per
    endpoint; with --capacity, search each one's capacity and judge head/base.

    Extra Locust arguments go after --.
    """
    from perfgate.ab.session import AbRequest
    from perfgate.gate import ab as ab_gate

    latency_only = {"-u": users, "-r": spawn_rate, "--processes": processes, "--workers": workers, "--mode": mode,
                    "--looks": looks, "--max-pairs": max_pairs, "--max-time": max_time, "--confirm": confirm,
                    "--confirm-pairs": confirm_pairs, "--budget": budget, "--metrics-url": metrics_url,
                    "--reset": reset, "--html": html_path, "--junit": junit}
    if capacity and (given := [flag for flag, value in latency_only.items() if value]):
        raise UsageError(f"{', '.join(given)} do(es) not apply with --capacity: a capacity search sets its own "
                         "users and rates (see perfgate capacity --help)")
    if slo and not capacity:
        raise UsageError("--slo applies with --capacity only; latency changes are judged by margins and --budget")
    if capacity:
        ab_capacity_command(config=config, profile=profile, locustfile=locustfile, host=host, run_time=run_time,
                            warmup=warmup, tags=tags, exclude_tags=exclude_tags, serve=serve, ready_url=ready_url,
                            ready_timeout=ready_timeout, slo=slo, base=base, setup=setup, db=db, strict=strict,
                            output_format=output_format.value, json_path=json_path, markdown_path=markdown_path)
        return

    command_line_budgets = budgets_from(budget)
    loaded, serve_config, resolved = load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, always_served=True,
        locustfile=locustfile, users=users, spawn_rate=spawn_rate, run_time=run_time, warmup=warmup, tags=tags,
        exclude_tags=exclude_tags, processes=processes, host=host, expect_workers=workers,
        expect_workers_max_wait=expect_workers_max_wait, master_bind_host=master_bind_host,
        master_bind_port=master_bind_port)
    settings = loaded.ab_settings(mode=mode, looks=looks, max_pairs=max_pairs, max_time=max_time, setup=setup,
                                  reset=reset, confirm=confirm, confirm_pairs=confirm_pairs)
    request = AbRequest(loaded=loaded, settings=settings, profile=resolved, serve=serve_config, cwd=Path.cwd(),
                        base_ref=base, command_line_budgets=command_line_budgets,
                        metrics=loaded.metrics(metrics_url, metric))
    with open_store(loaded, db) as store:
        result = ab_gate(request, store, notify)
    deliver(result, loaded, output_format, output, strict, html_path,
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
    host: ServedHostOption = None,
    workers: WorkersOption = None,
    expect_workers_max_wait: WorkersMaxWaitOption = None,
    master_bind_host: MasterBindHostOption = None,
    master_bind_port: MasterBindPortOption = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    pairs: Annotated[int, typer.Option("--pairs", help="A/A pairs (same-moment runs in the duet mode) to run "
                                       "(at least 3).")] = 6,
    mode: Annotated[AbMode | None, typer.Option("--mode", help="The ab mode whose noise to measure: duet "
                                                "(the default) or alternate.")] = None,
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
    from perfgate.ab.calibrate import check_writable_config, write_suggestions
    from perfgate.gate import calibrate as calibrate_gate
    from perfgate.reports.console import print_calibration

    loaded, serve_config, resolved = load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, always_served=True,
        locustfile=locustfile, users=users, spawn_rate=spawn_rate, run_time=run_time, warmup=warmup, tags=tags,
        exclude_tags=exclude_tags, processes=processes, host=host, expect_workers=workers,
        expect_workers_max_wait=expect_workers_max_wait, master_bind_host=master_bind_host,
        master_bind_port=master_bind_port)
    if write:
        check_writable_config(loaded)  # before minutes of measuring, not after
    with open_store(loaded, db) as store:
        result = calibrate_gate(loaded, loaded.ab_settings(mode=mode, setup=setup, reset=reset), resolved, serve_config,
                                Path.cwd(), pairs, store, notify)
    if output_format is OutputFormat.json:
        print(result.to_json())
    else:
        print_calibration(stdout, result, loaded.config.compare.min_requests)
    if write:
        stderr.print(write_suggestions(loaded, result)[1], markup=False)


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
    from perfgate.gate import Comparison, compare_stored
    from perfgate.reports.html import render_html

    loaded = load(config)
    with open_store(loaded, db, create=False) as store:
        if run_id is not None:
            html = render_html(verdict=None, base=[], head=[store.get(run_id)], title=f"perfgate · run {run_id}")
        else:
            what = Comparison(profile=profile, head_ref=head, head_run_ids=head_run or [], base_ref=base,
                              base_run_ids=base_run or [], pinned=pinned)
            result = compare_stored(loaded, store, Path.cwd(), what)
            html = render_html(verdict=result.verdict, base=result.base_runs, head=result.head_runs)
    write_text_atomic(output, html)
    stdout.print(f"wrote {output}", markup=False)
