"""The distributed recipes under examples/distributed/: the Kubernetes manifests are valid against the
Kubernetes API's own schemas (strict: no unknown field), and every perfgate command in the recipes uses
options perfgate has, with as many workers started as the master waits for."""

from __future__ import annotations

import functools
import re

import kubernetes_validate
import yaml

from conftest import REPO_ROOT, run_cli

RECIPES = REPO_ROOT / "examples" / "distributed"


def _documents() -> list[dict]:
    return [d for d in yaml.safe_load_all((RECIPES / "kubernetes.yaml").read_text()) if d]


@functools.cache
def _help(command: str) -> str:
    return run_cli(command, "--help", cwd=RECIPES, env={"COLUMNS": "200"}).stdout


def _options_known(command: str, args: list[str]) -> None:
    help_text = _help(command)
    for option in (a for a in args if a.startswith("-")):
        assert re.search(rf"(^|[\s,]){re.escape(option)}[\s,]", help_text), f"perfgate {command} has no {option}"


def test_the_kubernetes_manifests_are_valid_against_the_api_schemas() -> None:
    documents = _documents()
    assert {d["kind"] for d in documents} == {"Service", "Job", "PersistentVolumeClaim", "Deployment"}
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_the_kubernetes_recipe_starts_the_workers_its_master_waits_for() -> None:
    by_kind = {d["kind"]: d for d in _documents()}
    master = by_kind["Job"]["spec"]["template"]["spec"]["containers"][0]["args"]
    worker = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert master[:2] == ["run", "--master"] and worker[0] == "worker"
    _options_known("run", master[1:])
    _options_known("worker", worker[1:])
    assert int(master[master.index("--expect-workers") + 1]) == by_kind["Deployment"]["spec"]["replicas"]
    service = by_kind["Service"]
    assert worker[worker.index("--master-host") + 1] == service["metadata"]["name"]
    assert int(master[master.index("--master-bind-port") + 1]) == service["spec"]["ports"][0]["port"]
    assert by_kind["Job"]["spec"]["activeDeadlineSeconds"] > 0  # bounded even when no worker comes


def test_the_ssh_recipe_uses_options_perfgate_has() -> None:
    script = (RECIPES / "ssh.sh").read_text().replace("\\\n", " ")
    commands = {m.group(1): re.findall(r"(?<!\S)(--[a-z-]+|-[a-zA-Z])(?=\s)", m.group(2))
                for m in re.finditer(r"perfgate (run|worker) ([^\n]*)", script)}
    assert set(commands) == {"run", "worker"}
    for command, options in commands.items():
        _options_known(command, options)
    assert "--expect-workers" in commands["run"] and "--master-host" in commands["worker"]
