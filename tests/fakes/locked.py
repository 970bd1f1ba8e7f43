"""The locked requirement files, their export script, and the install steps of the action and the workflows."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "requirements"


def export_module() -> ModuleType:
    """requirements/export.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("perfgate_export_requirements", REQUIREMENTS / "export.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def workflow_step(workflow: str, job: str, name: str) -> dict:
    data = yaml.load((REPO_ROOT / ".github" / "workflows" / workflow).read_text(), Loader=yaml.BaseLoader)
    return next(s for s in data["jobs"][job]["steps"] if s.get("name") == name)


def action_step(name: str) -> dict:
    data = yaml.load((REPO_ROOT / "action.yml").read_text(), Loader=yaml.BaseLoader)
    return next(s for s in data["runs"]["steps"] if s["name"] == name)
