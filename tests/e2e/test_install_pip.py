"""The action's install step on a runner without uv: pip installs exactly the locked set, in a real virtual
environment (a file of its own, so that this minute of installing runs beside the other tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker

from fakes.locked import REPO_ROOT, REQUIREMENTS, action_step, export_module


@pytest.mark.slow
def test_the_actions_install_step_with_pip_installs_a_consistent_locked_set(tmp_path: Path) -> None:
    """The action's install step run for real on a runner without uv (pip, the registry): the installed set is
    exactly the locked file, complete (``pip check``), and perfgate with its extra runs from it."""
    shims = tmp_path / "bin"  # python3 on PATH, uv not
    shims.mkdir()
    (shims / "python3").symlink_to(sys.executable)
    path = [str(shims), *(d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "uv").exists())]
    env = {k: v for k, v in os.environ.items()
           if k != "CI" and not k.startswith(("GITHUB_", "RUNNER_", "VIRTUAL_ENV", "PYTHON", "UV_"))}
    env.update({"PATH": os.pathsep.join(path), "EXTRAS": "demo", "RUNNER_TEMP": str(tmp_path),
                "GITHUB_ACTION_PATH": str(REPO_ROOT), "GITHUB_OUTPUT": str(tmp_path / "output")})
    step = action_step("Install perfgate")
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines())
    python = outputs["python"]
    assert subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=120).returncode == 0
    listed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            timeout=120, check=True)
    export = export_module()
    installed = {export.name_of(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    locked = {}
    for spec in export.requirements((REQUIREMENTS / "action-demo.txt").read_text()):
        pinned, _, marker_text = spec.partition(" ; ")
        if not marker_text or Marker(marker_text).evaluate():  # this Python is the venv's (the shim above)
            locked[export.name_of(pinned)] = pinned.split("==", 1)[1]
    assert {n: installed.get(n) for n in locked} == locked
    assert set(installed) - set(locked) <= {"perfgate", "pip", "setuptools"}
    ran = subprocess.run([outputs["bin"], "--version"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.startswith("perfgate "), ran.stderr
    demo = subprocess.run([python, "-c", "import perfgate.demo, fastapi, locust"], capture_output=True, text=True,
                          timeout=120)
    assert demo.returncode == 0, demo.stderr
