"""Commands on baselines and history: ``perfgate baseline accept|show|list|import`` (reviewed files in
``baselines/``) and ``perfgate history`` (an endpoint's metric along the main branch)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from perfgate.cli.common import (
    ConfigOption,
    DbOption,
    FormatOption,
    OutputFormat,
    app,
    baseline_app,
    load,
    open_store,
    stderr,
    stdout,
)
from perfgate.errors import NotFoundError

app.add_typer(baseline_app, name="baseline")


class HistoryMetric(StrEnum):
    """The quantities ``perfgate history`` follows (a subset of :class:`~perfgate.decide.verdict.Quantity`)."""

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
    from perfgate.baselines.history import branch_history
    from perfgate.decide.verdict import Quantity
    from perfgate.reports.console import print_history

    loaded = load(config)
    branch = branch or loaded.config.main_branch
    profile = profile or loaded.config.profile
    margin = loaded.config.compare.margin("", Quantity(metric.value).metric.value)
    with open_store(loaded, db, create=False) as store:
        found, left_out = branch_history(store, Path.cwd(), branch, profile, metric=metric.value,
                                         endpoints=endpoint or [], commits=limit or commits, margin=margin)
    if not found:
        raise NotFoundError(f"no history of profile {profile!r} on {branch!r} in the store: it needs runs on two "
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
    from perfgate.baselines.accept import accept

    loaded = load(config)
    with open_store(loaded, db, create=False) as store:
        path = accept(store, loaded, Path.cwd(), profile=profile or loaded.config.profile, reason=reason,
                      run_ids=run, commit_ref=commit, expires=expires)
    stdout.print(f"wrote {path}; commit it and open a pull request so the change is reviewed")


@baseline_app.command("show")
def baseline_show(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile.")] = None,
    config: ConfigOption = None,
) -> None:
    """Print the pinned baseline of a profile."""
    from perfgate.baselines.pinned import baseline_path, read_pinned
    from perfgate.reports.console import print_pinned

    loaded = load(config)
    path = baseline_path(loaded, profile or loaded.config.profile)
    pinned = read_pinned(path)
    if pinned is None:
        raise NotFoundError(f"no pinned baseline at {path}; accept one with `perfgate baseline accept`")
    print_pinned(stdout, path, pinned)


@baseline_app.command("list")
def baseline_list(config: ConfigOption = None) -> None:
    """List the pinned baselines."""
    from perfgate.baselines.pinned import list_pinned
    from perfgate.reports.console import pinned_table

    loaded = load(config)
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
    from perfgate.baselines.accept import import_expected

    loaded = load(config)
    path = import_expected(loaded, Path.cwd(), profile=profile or loaded.config.profile, table=table, reason=reason)
    stdout.print(f"wrote {path}; `perfgate compare` now checks the head against these expectations")
