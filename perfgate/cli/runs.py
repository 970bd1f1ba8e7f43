"""Commands on runs: ``perfgate run`` (measure and store one), ``runs`` (list), ``show`` (one), ``import`` (store
runs kept in files when the store could not take them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from perfgate.cli.common import (
    BudgetOption,
    ConfigOption,
    DbOption,
    ExcludeTagsOption,
    ExpectWorkersOption,
    FormatOption,
    JsonFileOption,
    JunitOption,
    LocustfileOption,
    MasterBindHostOption,
    MasterBindPortOption,
    MasterOption,
    MetricOption,
    MetricsUrlOption,
    OutputFormat,
    ProcessesOption,
    ProfileOption,
    ReadyTimeoutOption,
    ReadyUrlOption,
    RunTimeOption,
    ServeOption,
    SpawnRateOption,
    TagsOption,
    UsersOption,
    WarmupOption,
    WorkersMaxWaitOption,
    app,
    budgets_from,
    load,
    load_profile,
    notify,
    open_store,
    print_record,
    stderr,
    stdout,
)
from perfgate.config.schema import DEFAULT_MASTER_PORT
from perfgate.errors import ExitCode, UsageError
from perfgate.output import write_text_atomic


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
    master: MasterOption = False,
    expect_workers: ExpectWorkersOption = None,
    expect_workers_max_wait: WorkersMaxWaitOption = None,
    master_bind_host: MasterBindHostOption = None,
    master_bind_port: MasterBindPortOption = None,
    serve: ServeOption = None,
    ready_url: ReadyUrlOption = None,
    ready_timeout: ReadyTimeoutOption = None,
    metrics_url: MetricsUrlOption = None,
    metric: MetricOption = None,
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
    from perfgate.decide.budgets import run_budgets, run_exit_code
    from perfgate.decide.endurance import judge_endurance
    from perfgate.measure.record import RunRequest, record_run
    from perfgate.reports.console import print_budgets, print_endurance, progress_display
    from perfgate.reports.junit import run_junit

    command_line_budgets = budgets_from(budget)
    loaded, serve_config, resolved = load_profile(
        config, profile, serve=serve, ready_url=ready_url, ready_timeout=ready_timeout, locustfile=locustfile,
        host=host, users=users, spawn_rate=spawn_rate, run_time=run_time, warmup=warmup, tags=tags,
        exclude_tags=exclude_tags, processes=processes, expect_workers=expect_workers,
        expect_workers_max_wait=expect_workers_max_wait, master_bind_host=master_bind_host,
        master_bind_port=master_bind_port)
    if master and not resolved.expect_workers:
        raise UsageError("--master needs the number of workers to wait for: --expect-workers N "
                         "(or expect_workers in the profile)")
    metrics = loaded.metrics(metrics_url, metric)
    with open_store(loaded, db) as store:
        with progress_display(stderr) as on_progress:
            recorded = record_run(RunRequest(profile=resolved, repo_dir=Path.cwd(), serve=serve_config,
                                             serve_cwd=Path.cwd(), ignore=loaded.own_paths(), metrics=metrics),
                                  store, on_progress=on_progress)
    budgets = run_budgets(recorded, loaded.config.budgets, command_line_budgets)
    endurance = judge_endurance(recorded, loaded.config.endurance)
    run_json = json.dumps({**json.loads(recorded.model_dump_json()),
                           "budgets": [b.model_dump(mode="json") for b in budgets],
                           **({"endurance": [f.model_dump(mode="json") for f in endurance]} if endurance else {})},
                          indent=2)
    if json_path is not None:
        write_text_atomic(json_path, run_json + "\n")
    if junit is not None:
        write_text_atomic(junit, run_junit(recorded))
    if output_format is OutputFormat.json:
        print(run_json)
    else:
        print_record(recorded, output_format, loaded.config.compare.min_requests)
        print_budgets(stdout, budgets)
        print_endurance(stdout, endurance)
    code = run_exit_code(recorded, budgets)
    raise typer.Exit(ExitCode.REGRESSION if any(not f.passed for f in endurance) else code)


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

    with open_store(load(config), db, create=False) as store:
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
    with open_store(load(config), db) as store:
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
    with open_store(load(config), db, create=False) as store:
        print_record(store.get(run_id), output_format)


@app.command()
def worker(
    master_host: Annotated[str, typer.Option("--master-host", help="Host or address of the master "
                                             "(`perfgate run --master`).")],
    master_port: Annotated[int, typer.Option("--master-port", min=1, max=65535,
                                             help="The master's port for workers.")] = DEFAULT_MASTER_PORT,
    locustfile: LocustfileOption = None,
    processes: Annotated[int, typer.Option("--processes", min=1, max=256,
                                           help="Locust worker processes on this machine (Locust's --processes): "
                                           "each counts as one of the master's --expect-workers.")] = 1,
    stay: Annotated[bool, typer.Option("--stay", help="After each run, wait for the master's next one (`perfgate "
                                       "ab --workers` and `calibrate --workers` start a master per run); stop "
                                       "when none comes within 5 minutes.")] = False,
    config: ConfigOption = None,
) -> None:
    """Make load for a distributed run: a Locust worker with perfgate's recorder, which ships every request to
    the master; the master stores the run. It runs the same locustfile as the master (-f, or the config's) and
    stops when the master ends the run.
    """
    from perfgate.measure.locust import run_worker

    loaded = load(config)
    # As for `perfgate run`: -f is relative to this folder, the config's locustfile to the config's folder.
    path = Path(locustfile) if locustfile else (
        loaded.root / loaded.config.locustfile if loaded.config.locustfile else Path("locustfile.py"))
    raise typer.Exit(run_worker(path.resolve(), master_host, master_port, Path.cwd(), processes=processes, stay=stay,
                                notify=notify))
