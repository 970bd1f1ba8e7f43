"""``perfgate init``: what an adopter's repository holds, and the files that put perfgate in it.

Detection reads the project (bounded: a few thousand files, a few folders deep, no virtual environments),
finds the locustfile(s) and the app, and proposes a serve command and a ready URL. The files are rendered
from templates shipped in the package (``templates/``): ``perfgate.toml`` and three workflows, each
pinned to the exact commit of the perfgate that runs ``init``. Nothing is overwritten: a file that exists
stops the whole write before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import jinja2

from perfgate.errors import ConfigError
from perfgate.output import write_text_atomic

SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", ".nox", "build",
                          "dist", ".mypy_cache", ".pytest_cache", ".perfgate", "site-packages"})
MAX_FILES = 4000
MAX_DEPTH = 4
MAX_READ = 200_000
"""Bytes read of one file: enough for any app module or locustfile, bounded for a stray data file."""

REF = re.compile(r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100})@(?P<sha>[0-9a-f]{40})$")
GITHUB_URL = re.compile(r"^(?:https://|ssh://git@|git\+https://|git@)github\.com[/:]"
                        r"(?P<repo>[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}?)(?:\.git)?/?$")
PORT_FLAG = re.compile(r"(--port[ =]|-p |-b [\w.:]*:|--bind[ =][\w.:]*:)\s*(\$\{?PORT\}?|\d+)")

WORKFLOWS = ("perf.yml", "perf-comment.yml", "perf-main.yml")
EXPLAINED = {
    "perfgate.toml": "the locustfile, how to serve the app, the profile and a first budget",
    ".github/workflows/perf.yml": "the gate: `perfgate ab` on pull requests labelled performance-test (read-only)",
    ".github/workflows/perf-comment.yml": "posts the verdict as one sticky comment and a check (never runs PR code)",
    ".github/workflows/perf-main.yml": "records runs of every push to main, for history and baselines",
}


@dataclass(frozen=True)
class PerfgateRef:
    """The perfgate that the workflows use: a GitHub repository and a full commit SHA."""

    repo: str
    sha: str

    @classmethod
    def parse(cls, text: str) -> PerfgateRef:
        found = REF.match(text.strip())
        if not found:
            raise ConfigError(f"--perfgate-ref must be OWNER/REPO@<40-hex commit SHA> (got {text.strip()[:120]!r})")
        return cls(found["repo"], found["sha"])

    @property
    def action(self) -> str:
        return f"{self.repo}@{self.sha}"


def installed_ref() -> PerfgateRef | None:
    """The commit this perfgate was installed from, when pip or uv recorded one (PEP 610), else ``None``."""
    try:
        raw = metadata.distribution("perfgate").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
        url, sha = data["url"], data["vcs_info"]["commit_id"]
    except (ValueError, KeyError, TypeError):
        return None
    found = GITHUB_URL.match(str(url))
    if not found or not re.fullmatch(r"[0-9a-f]{40}", str(sha)):
        return None
    return PerfgateRef(found["repo"], str(sha))


@dataclass
class Detection:
    """What ``init`` found in the project, and what it proposes."""

    locustfiles: list[str] = field(default_factory=list)
    app: str | None = None            # e.g. "FastAPI app in shop/app.py"
    serve: str | None = None
    ready_url: str | None = None
    setup: str | None = None
    notes: list[str] = field(default_factory=list)


def _files(root: Path) -> list[Path]:
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if len(found) >= MAX_FILES:
                return
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if depth < MAX_DEPTH and entry.name not in SKIPPED_DIRS and not entry.name.startswith("."):
                    walk(entry, depth + 1)
            elif entry.is_file():
                found.append(entry)

    walk(root, 0)
    return found


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _module(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _with_port(command: str) -> str:
    """A start command found in the project, listening on perfgate's ``{port}`` of 127.0.0.1."""
    command = command.strip().strip("\"'")
    if PORT_FLAG.search(command):
        command = PORT_FLAG.sub(lambda m: m.group(1) + "{port}", command, count=1)
    elif "uvicorn" in command:
        command += " --port {port}"
    elif "gunicorn" in command:
        command += " --bind 127.0.0.1:{port}"
    command = re.sub(r"--host[ =]0\.0\.0\.0", "--host 127.0.0.1", command)
    return re.sub(r"-b 0\.0\.0\.0:", "-b 127.0.0.1:", command)


def _declared_command(root: Path) -> tuple[str, str] | None:
    """A uvicorn/gunicorn command the project already writes down (Procfile, Dockerfile, Makefile, README)."""
    for name in ("Procfile", "Dockerfile", "Makefile", "docker-compose.yml", "compose.yaml", "README.md"):
        text = _read(root / name)
        for line in text.splitlines():
            exec_form = re.match(r"\s*(?:CMD|ENTRYPOINT)\s*(\[.*\])\s*$", line)
            if exec_form:  # CMD ["uvicorn", "app:app", ...]
                try:
                    words = json.loads(exec_form.group(1))
                except ValueError:
                    words = None
                if isinstance(words, list) and all(isinstance(w, str) for w in words):
                    line = " ".join(words)
            found = re.search(r"((?:python -m )?(?:uvicorn|gunicorn) [^\"'\]#]+)", line)
            if found:
                return _with_port(found.group(1).replace('", "', " ").replace('","', " ")), name
    return None


def detect(root: Path) -> Detection:
    """Read the project at ``root`` and propose a configuration."""
    found = Detection()
    files = _files(root)
    python = [p for p in files if p.suffix == ".py"]
    texts = {p: _read(p) for p in python}
    locust = re.compile(r"^\s*(from locust\b|import locust\b)", re.M)
    found.locustfiles = sorted((str(p.relative_to(root)) for p in python if locust.search(texts[p])),
                               key=lambda s: (Path(s).name != "locustfile.py", s.count("/"), s))
    uv = (root / "uv.lock").is_file()
    requirements = (root / "requirements.txt").is_file()
    runner = "uv run " if uv else "python -m "
    found.setup = "uv sync" if uv else ("python -m pip install -r requirements.txt" if requirements else None)
    declared = _declared_command(root)
    apps = [(p, m) for p in python for m in [re.search(r"^(\w+)\s*=\s*(FastAPI|Flask)\(", texts[p], re.M)] if m]
    if (root / "manage.py").is_file():
        found.app = "Django project (manage.py)"
        found.serve = "python manage.py runserver 127.0.0.1:{port} --noreload"
        if uv:
            found.serve = "uv run " + found.serve
    elif apps:
        path, match = apps[0]
        kind, target = match.group(2), f"{_module(root, path)}:{match.group(1)}"
        found.app = f"{kind} app `{match.group(1)}` in {path.relative_to(root)}"
        if kind == "FastAPI":
            found.serve = f"{runner}uvicorn {target} --host 127.0.0.1 --port {{port}}"
            found.ready_url = "http://127.0.0.1:{port}/openapi.json"
        else:
            found.serve = f"{runner}flask --app {target} run --host 127.0.0.1 --port {{port}}"
        if len(apps) > 1:
            found.notes.append(f"{len(apps)} apps found; chose {path.relative_to(root)} (--serve to choose another)")
    if declared and not (root / "manage.py").is_file():
        command, where = declared
        found.serve = command if command.startswith(("uv ", "python")) else runner + command
        found.notes.append(f"serve command taken from {where}")
    return found


def _yaml_scalar(value: str) -> str:
    """One single-quoted YAML scalar; nothing that could become an expression or a second line."""
    if any(ord(c) < 32 for c in value) or "${{" in value or len(value) > 500:
        raise ConfigError(f"{value[:80]!r} cannot be written into a workflow: no line breaks, control characters "
                          "or ${{ }} expressions, at most 500 characters")
    return "'" + value.replace("'", "''") + "'"


def _toml_string(value: str) -> str:
    if any(ord(c) < 32 for c in value) or len(value) > 500:
        raise ConfigError(f"{value[:80]!r} cannot be written into perfgate.toml: no line breaks or control characters")
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("perfgate.scaffold", "templates"), autoescape=False,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["yaml"] = _yaml_scalar
    env.filters["toml"] = _toml_string
    return env


def render(*, ref: PerfgateRef, version: str, locustfile: str, serve: str | None, ready_url: str | None,
           host: str | None, setup: str | None, main_branch: str = "main") -> dict[str, str]:
    """The files ``init`` writes, by path relative to the project root."""
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,100}", main_branch):
        raise ConfigError(f"--main-branch {main_branch!r} is not a branch name perfgate writes into a workflow")
    if serve is not None and "{port}" not in serve:
        raise ConfigError("--serve must contain {port}, where perfgate puts the free port it chose")
    values = {"version": version, "action": ref.action, "perfgate_repo": ref.repo, "perfgate_sha": ref.sha,
              "locustfile": locustfile, "serve": serve, "ready_url": ready_url, "host": host or "http://127.0.0.1:8080",
              "setup": setup, "main_branch": main_branch, "config": "perfgate.toml"}
    env = _templates()
    files = {"perfgate.toml": env.get_template("perfgate.toml.j2").render(values)}
    for name in WORKFLOWS:
        files[f".github/workflows/{name}"] = env.get_template(f"{name}.j2").render(values)
    return files


def write(root: Path, files: dict[str, str], *, force: bool = False) -> list[Path]:
    """Write every file, or none: an existing file stops the write unless ``force``."""
    existing = [name for name in files if (root / name).exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} already exists; perfgate init never overwrites a file (move it away, "
                          "or pass --force to replace it)")
    written = []
    for name, text in files.items():
        path = root / name
        write_text_atomic(path, text)
        written.append(path)
    return written


CHECK_RUN_TIME = "6s"


def check(root: Path, config: Path) -> int:
    """A short smoke run of the config ``init`` wrote: serve, load, store in a throwaway store; its exit code."""
    import subprocess
    import sys
    import tempfile

    if not config.is_file():
        raise ConfigError(f"{config} does not exist; run `perfgate init` first (or pass --config)")
    with tempfile.TemporaryDirectory(prefix="perfgate-init-check-") as folder:
        command = [sys.executable, "-m", "perfgate", "run", "--config", str(config), "--run-time", CHECK_RUN_TIME,
                   "--warmup", "1s", "--db", str(Path(folder) / "check.db")]
        return subprocess.run(command, cwd=root, timeout=600).returncode
