"""Shared fixtures: the real demo service on 127.0.0.1, real git repositories, the real CLI."""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perfgate.measure.service import free_port, stop_process_group

# The shared helpers under fakes/ assert too: their failures say what differed, as a test's own asserts do.
pytest.register_assert_rewrite("fakes")

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILES = REPO_ROOT / "locustfiles"
DEMO_SERVE = f"{shlex.quote(sys.executable)} -m perfgate.demo --port {{port}}"
DEMO_READY = "http://127.0.0.1:{port}/health"


E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is marked ``e2e`` (and ``slow``): ``-m "not e2e"`` runs the fast ones.

    The files are then ordered longest first, as pytest-xdist hands them out (``--dist loadfile``) in
    collection order (with ``--no-loadscope-reorder``: by default it hands out the files with the most tests
    first, which left the quiet tests for the end, each holding the machine alone while the others waited):
    the files with a ``quiet`` test (which holds the machine alone), then the other
    end-to-end files, then the rest, which fills the workers' last minutes instead of leaving one long
    file running alone at the end."""
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if E2E_DIR in path.parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)
    quiet_files = {item.fspath for item in items if item.get_closest_marker("quiet") is not None}
    items.sort(key=lambda item: 0 if item.fspath in quiet_files else 1 if item.get_closest_marker("e2e") else 2)


@pytest.fixture(autouse=True)
def _machine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A readers-writer lock over the machine, shared by the session's workers (pytest-xdist).

    A test marked ``quiet`` judges real latency (a planted slowdown found, an A/A not flagged); on a 2-core
    machine a test beside it is the very noise it measures through, so it holds the lock alone. Every other
    test shares it. The turnstile makes a waiting quiet test block new sharers, so that it is not starved by
    the other workers' stream of short tests."""
    folder = tmp_path_factory.getbasetemp().parent  # the session's folder, common to its workers
    with open(folder / "pg-machine.turnstile", "a") as turnstile, open(folder / "pg-machine.lock", "a") as lock:
        alone = request.node.get_closest_marker("quiet") is not None
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session", autouse=True)
def _bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Where Python may not write bytecode (PYTHONDONTWRITEBYTECODE), every process a test starts (the CLI,
    Locust, the services) would compile perfgate, SciPy, Locust and the rest from source again: about 2 s of CPU
    each. They share a cache in the session's temporary folder instead; nothing is written beside any source."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONDONTWRITEBYTECODE")
        patch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("pycache", numbered=False)))
        yield


@dataclass
class DemoService:
    host: str
    port: int


@pytest.fixture(scope="session")
def demo_service() -> Iterator[DemoService]:
    """One demo service for the whole session, stopped by its own process group."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "perfgate.demo", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop_process_group(process)
                raise RuntimeError("the demo service did not start") from None
            time.sleep(0.1)
    yield DemoService(host=url, port=port)
    stop_process_group(process)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repository with one commit on branch ``main``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "user.name", "Test")
    (repo / "service.txt").write_text("v1\n")
    git(repo, "add", "service.txt")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def ab_env(tmp_path: Path) -> dict[str, str]:
    """A private temp folder for an ``ab`` test, so that it sees every worktree perfgate makes there."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {"TMPDIR": str(temp)}


def assert_ab_cleaned_up(repo: Path, tmp_path: Path) -> None:
    """An ``ab`` left no worktree in ``repo`` and nothing in its temp folder (see :func:`ab_env`)."""
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1, git(repo, "worktree", "list")
    assert list((tmp_path / "tmp").iterdir()) == []


BREAK_DEMO = 'import os\nos.environ["PERFGATE_DEMO_FAILURE_PCT"] = "75"\n'
"""Prepended to a demo repository's service.py: 75 % of its requests answer 500."""


def break_demo_head(repo: Path) -> None:
    """A branch ``broken`` off ``main`` of a demo repository whose service fails most requests."""
    git(repo, "checkout", "-q", "-b", "broken", "main")
    service = repo / "service.py"
    service.write_text(BREAK_DEMO + service.read_text(encoding="utf-8"), encoding="utf-8")
    git(repo, "commit", "-qam", "Break the service")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> CliResult:
    """Run the real ``perfgate`` command in a subprocess, as a user would."""
    # The tests' own CI must not leak into the command: no job summary or outputs of the real workflow.
    full_env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_"))}
    full_env.update(env or {})
    done = subprocess.run([sys.executable, "-m", "perfgate", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted in the test's folder, or a skip saying why it could not be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: no small filesystem to fill")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "perfgate-test", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
