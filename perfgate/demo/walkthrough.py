"""``perfgate demo``: the whole recording path on the bundled demo service, in one command.

It serves the demo service on a free loopback port, runs the smoke profile of the
bundled demo locustfile against it, stores the run in a demo store, and prints
the run and the commands to look at it again.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from rich.console import Console

from perfgate.config import LoadedConfig, Overrides, PerfgateConfig, ServeConfig
from perfgate.console import print_run, progress_display
from perfgate.errors import ConfigError
from perfgate.record import RunRequest, exit_code, record_run
from perfgate.store import Store

DEMO_DB = Path(".perfgate/demo.db")


def bundled_locustfile(name: str) -> Path:
    """A locustfile shipped with perfgate: in the wheel, or in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "bundled_locustfiles" / name, package.parent / "locustfiles" / name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"bundled locustfile {name} is missing from this installation; reinstall perfgate")


def demo_serve_command(extra: str = "") -> str:
    """The command that serves the demo service on ``{port}`` with this interpreter."""
    return f"{shlex.quote(sys.executable)} -m perfgate.demo --port {{port}}" + (f" {extra}" if extra else "")


def run_demo(out: Console, err: Console, *, db: Path | None, run_time: str) -> int:
    db_path = db or DEMO_DB
    loaded = LoadedConfig(config=PerfgateConfig(), source=None, root=Path.cwd())
    profile = loaded.resolve("smoke", Overrides.from_cli(locustfile=str(bundled_locustfile("demo.py")),
                                                         run_time=run_time), served=True)
    serve = ServeConfig(command=demo_serve_command(), ready_url="http://127.0.0.1:{port}/health")
    err.print(f"perfgate demo: serving the demo service and running the smoke profile "
              f"({profile.users} users, {profile.run_time:g}s, first {profile.warmup:g}s not measured)…")
    with Store(db_path) as store, progress_display(err) as on_progress:
        run = record_run(RunRequest(profile=profile, repo_dir=Path.cwd(), serve=serve), store,
                         on_progress=on_progress)
    print_run(out, run)
    out.print(f"\nStored as run {run.id} in {db_path}. Look again with:\n"
              f"  perfgate runs --db {db_path}\n  perfgate show {run.id} --db {db_path}")
    return exit_code(run)
