"""``perfgate demo``: the whole gate, end to end, on the bundled demo service.

It makes a throwaway git repository with two commits of a small service (the
demo service behind a one-file launcher); the second commit slows one endpoint
down. Then it runs ``perfgate ab`` between the two commits, prints the verdict,
writes the Markdown verdict and the store to an output folder, and removes the
throwaway repository. The user's own repository and working folder are not touched.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from perfgate.errors import ConfigError, ExitCode, GitError

DEMO_SLOW_ENDPOINT = "GET /items"
DEMO_SLOWDOWN_PCT = 40.0
"""Added to the slow endpoint's service time: about +30 % on its measured latency."""

SERVICE_PY = '''"""The service of this demo repository: perfgate's demo service, with the slowdown below."""

import sys

from perfgate.demo.__main__ import main

SLOWDOWN: list[str] = {slowdown!r}

if __name__ == "__main__":
    sys.exit(main([*sys.argv[1:], *SLOWDOWN]))
'''

PERFGATE_TOML = '''# perfgate's configuration of the demo repository.
profile = "demo"
locustfile = "locustfile.py"

[serve]
command = "{python} service.py --port {{port}}"
ready_url = "http://127.0.0.1:{{port}}/health"

[profiles.demo]
extends = "smoke"
users = 40
spawn_rate = 40
run_time = "{run_time}"
warmup = "2s"
'''


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


def _git(repo: Path, *args: str) -> None:
    done = subprocess.run(["git", "-c", "user.name=perfgate demo", "-c", "user.email=demo@perfgate.invalid",
                           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
                          cwd=repo, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise GitError(f"`git {' '.join(args)}` failed in the demo repository: {done.stderr.strip()}")


def make_demo_repo(repo: Path, *, run_time: str = "10s", slowdown_pct: float = DEMO_SLOWDOWN_PCT,
                   slow_endpoint: str = DEMO_SLOW_ENDPOINT, tail_fraction: float = 0.0,
                   slow_kind: str = "wait") -> None:
    """A git repository whose ``main`` has the demo service and whose branch ``slower`` is slowed down.

    The slowdown is the demo service's knob: ``slow_endpoint`` empty slows every endpoint, and
    ``tail_fraction`` slows only that share of requests, ten times as much; ``slow_kind="cpu"`` computes the
    added time instead of awaiting it.
    """
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "--quiet")
    shutil.copyfile(bundled_locustfile("demo.py"), repo / "locustfile.py")
    python = shlex.quote(sys.executable).replace("\\", "\\\\").replace('"', '\\"')
    (repo / "perfgate.toml").write_text(PERFGATE_TOML.format(python=python, run_time=run_time), encoding="utf-8")
    (repo / ".gitignore").write_text(".perfgate/\n__pycache__/\n", encoding="utf-8")
    (repo / "service.py").write_text(SERVICE_PY.format(slowdown=[]), encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "Demo service")
    _git(repo, "checkout", "--quiet", "-b", "slower")
    slowdown = ["--slowdown-pct", f"{slowdown_pct:g}", "--slow-endpoint", slow_endpoint,
                "--slow-tail-fraction", f"{tail_fraction:g}", "--slow-kind", slow_kind]
    (repo / "service.py").write_text(SERVICE_PY.format(slowdown=slowdown), encoding="utf-8")
    _git(repo, "commit", "--quiet", "-am", f"Slow down {slow_endpoint or 'every endpoint'}")


def run_demo(out: Console, err: Console, *, output_dir: Path | None, run_time: str, max_pairs: int | None,
             mode: str = "duet") -> int:
    """Build the throwaway repository, A/B its two commits, report, clean up; the verdict's exit code."""
    from perfgate.ab.session import AbRequest
    from perfgate.config import Overrides, load_config
    from perfgate.decide.verdict import Outcome, exit_code
    from perfgate.gate import ab
    from perfgate.output import write_text_atomic
    from perfgate.reports.console import print_verdict
    from perfgate.reports.html import render_html
    from perfgate.reports.markdown import render_markdown
    from perfgate.store import Store

    output_dir = (output_dir or Path(tempfile.mkdtemp(prefix="perfgate-demo-"))).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    db = output_dir / "demo.db"
    with tempfile.TemporaryDirectory(prefix="perfgate-demo-repo-") as tmp:
        repo = Path(tmp) / "shop"
        make_demo_repo(repo, run_time=run_time)
        err.print(f"perfgate demo: a throwaway repository with two commits of a small service; the second "
                  f"adds {DEMO_SLOWDOWN_PCT:g} % to the service time of {DEMO_SLOW_ENDPOINT}.\n"
                  f"Running `perfgate ab --base main --mode {mode}` on branch `slower`: "
                  + ("both versions served fresh at once, loaded at the same moments, judged block by block…"
                     if mode == "duet" else "both versions served fresh, measured in balanced pairs, judged "
                     "with a paired test…"), markup=False)
        loaded = load_config(start=repo)
        request = AbRequest(loaded=loaded, settings=loaded.ab_settings(max_pairs=max_pairs, mode=mode),
                            profile=loaded.resolve(None, Overrides(), served=True), serve=loaded.serve(),
                            cwd=repo, base_ref="main")
        with Store(db) as store:
            result = ab(request, store, notify=lambda line: err.print(line, markup=False, highlight=False))
        verdict = result.verdict
        write_text_atomic(output_dir / "report.html",
                          render_html(verdict=verdict, base=result.base_runs, head=result.head_runs))
    write_text_atomic(output_dir / "verdict.md", render_markdown(verdict))
    write_text_atomic(output_dir / "verdict.json", verdict.to_json())
    out.print()
    print_verdict(out, verdict)
    out.print(f"\nWritten to {output_dir}:\n"
              f"  report.html   the full report: distributions, runs over time, the service's CPU and memory\n"
              f"  verdict.md    the Markdown a pull request gets as its comment\n"
              f"  verdict.json  the verdict for machines\n"
              f"  demo.db       every run of the A/B; list them with: perfgate runs --db {db}\n"
              "The throwaway repository was removed. In your own repository the same A/B is:\n"
              "  perfgate ab --serve 'python -m yourservice --port {port}' "
              "--ready-url 'http://127.0.0.1:{port}/health' -f locustfile.py", markup=False)
    found = next((e for e in verdict.endpoints if e.endpoint == DEMO_SLOW_ENDPOINT), None)
    if found is not None and found.outcome is Outcome.REGRESSED:
        out.print(f"The gate found the slowdown it was shown ({DEMO_SLOW_ENDPOINT}); in CI that verdict "
                  f"fails the job with exit code {int(exit_code(verdict, strict=False))}.", markup=False)
        return int(ExitCode.OK)
    out.print(f"The gate did not call {DEMO_SLOW_ENDPOINT} REGRESSED on this machine within the pair budget "
              "(see the table); a busy machine makes runs noisier. Run the demo again, or with a higher --max-pairs.",
              markup=False)
    return int(ExitCode.UNDECIDED)
