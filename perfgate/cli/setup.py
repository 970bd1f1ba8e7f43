"""Commands that set perfgate up: ``perfgate init`` (config and workflows for a repository) and ``perfgate demo``
(the whole gate on the bundled demo service)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perfgate import __version__
from perfgate.cli.common import ConfigOption, app, stderr, stdout
from perfgate.config.schema import AbMode
from perfgate.errors import UsageError


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
        raise UsageError("cannot tell which commit of perfgate this is (it was not installed from a GitHub "
                          "commit): pass --perfgate-ref OWNER/REPO@<40-hex SHA> of the perfgate the workflows "
                          "should use")
    found = scaffold.detect(root)
    chosen_locustfile = locustfile or (found.locustfiles[0] if found.locustfiles else None)
    if chosen_locustfile is None:
        raise UsageError("no locustfile found (a .py file importing locust); write one, or pass -f PATH")
    chosen_serve = None if host else (serve or found.serve)
    if not host and chosen_serve is None:
        raise UsageError("no app found to serve (FastAPI, Flask, Django, or a uvicorn/gunicorn command in "
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
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="Stop after this many pairs (same-moment "
                                                "runs in the duet mode; the alternate mode needs 2).")] = None,
    mode: Annotated[AbMode, typer.Option("--mode", help="duet: both commits served at once under one load; "
                                         "alternate: pairs of runs one after the other.")] = AbMode.DUET,
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
        raise UsageError(f"perfgate demo needs the demo extra ({', '.join(missing)} missing): install perfgate "
                          "with it, e.g. `uv tool install 'perfgate[demo]'` or `pip install 'perfgate[demo]'`")

    raise typer.Exit(run_demo(stdout, stderr, output_dir=output_dir, run_time=run_time, max_pairs=max_pairs,
                              mode=mode))
