"""The composite action and the workflows: linted, checked for the rules of safe workflows, and the
action's steps executed in order by bash in a simulated GitHub Actions runner, against the demo service
and a fake GitHub REST server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perfgate.demo.walkthrough import make_demo_repo

from conftest import REPO_ROOT, git
from fakes.fake_github import FakeGitHub

ACTION = REPO_ROOT / "action.yml"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict:
    data = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # strings stay strings ("on" is not True)
    assert isinstance(data, dict), path
    return data


def _all_steps() -> list[tuple[str, dict]]:
    found = [(ACTION.name, s) for s in _load(ACTION)["runs"]["steps"]]
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in _load(path)["jobs"].values():
            found += [(path.name, s) for s in job.get("steps", [])]
    return found


def test_zizmor_finds_nothing() -> None:
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert zizmor, "zizmor is a dev dependency: uv sync installs it"
    done = subprocess.run([zizmor, "--offline", "--no-progress", str(ACTION), str(WORKFLOWS)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_follow_the_rules_of_safe_workflows() -> None:
    for where, step in _all_steps():
        if "run" in step:
            assert "${{" not in step["run"], f"{where}: an expression inside run: ({step.get('name')})"
        uses = step.get("uses", "")
        if uses and not uses.startswith("./"):
            assert PINNED.match(uses), f"{where}: {uses} is not pinned by a full commit SHA"
        if uses.startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") == "false", f"{where}: checkout keeps credentials"
    perf = _load(WORKFLOWS / "perf.yml")
    assert perf["on"]["pull_request"]["types"] == ["labeled", "synchronize", "opened", "reopened"]
    assert perf["permissions"] == {"contents": "read"}
    assert "performance-test" in perf["jobs"]["gate"]["if"]
    comment = _load(WORKFLOWS / "perf-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == ["perf"]
    assert comment["permissions"]["pull-requests"] == "write"
    for step in comment["jobs"]["comment"]["steps"]:  # never the pull request's code
        assert "ref" not in step.get("with", {}) and "pull_request" not in json.dumps(step.get("with", {}))
    main = _load(WORKFLOWS / "perf-main.yml")
    saved = [s for s in main["jobs"]["record"]["steps"] if s.get("uses", "").startswith("actions/cache/save@")]
    assert saved and saved[0]["with"]["key"] == "perfgate-db-${{ github.sha }}"
    restored = [s for s in perf["jobs"]["gate"]["steps"] if s.get("uses", "").startswith("actions/cache/restore@")]
    assert restored and restored[0]["with"]["restore-keys"] == "perfgate-db-"
    assert any(s.get("uses") == "./" for s in _load(WORKFLOWS / "self-test.yml")["jobs"]["action"]["steps"])


def test_every_input_the_steps_use_is_declared() -> None:
    action = _load(ACTION)
    declared = set(action["inputs"])
    used = set(re.findall(r"inputs\.([\w-]+)", ACTION.read_text()))
    assert used <= declared, used - declared
    for needed in ("profile", "config", "locustfile", "serve", "ready-url", "setup", "base-ref", "github-token",
                   "comment", "fail-on", "mode"):
        assert needed in declared


# -- running the action's steps ------------------------------------------------------------------------

def _expression(text: str, context: dict[str, str]) -> str:
    """``${{ inputs.x }}``, ``${{ steps.gate.outputs.y }}``, ``${{ runner.temp }}`` as the runner fills them in."""
    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: context.get(m.group(1), ""), text)


def _condition(text: str, context: dict[str, str]) -> bool:
    python = re.sub(r"(inputs|steps)\.[\w.-]+", lambda m: repr(context.get(m.group(0), "")), text)
    python = python.replace("||", " or ").replace("&&", " and ")
    return bool(eval(python, {"__builtins__": {}}, {}))  # noqa: S307 - the action's own simple conditions


def _read_key_values(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` / ``$GITHUB_ENV``: ``K=V`` lines and ``K<<DELIMITER`` blocks."""
    values, lines, i = {}, path.read_text().split("\n") if path.exists() else [], 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[key] = "\n".join(lines[i + 1:end])
            i = end + 1
        else:
            if "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
            i += 1
    return values


def run_action(inputs: dict[str, str], workspace: Path, runner: dict[str, str]) -> tuple[list[int], dict[str, str]]:
    """Each step of action.yml in order, as a runner would: env from expressions, outputs and env files."""
    action = _load(ACTION)
    context = {f"inputs.{k}": v.get("default", "") for k, v in action["inputs"].items()}
    context["inputs.github-token"] = runner["GITHUB_TOKEN"]
    context.update({f"inputs.{k}": v for k, v in inputs.items()})
    context["runner.temp"] = runner["RUNNER_TEMP"]
    github_env = Path(runner["RUNNER_TEMP"]) / "github_env"
    codes = []
    for number, step in enumerate(action["runs"]["steps"]):
        if "if" in step and not _condition(step["if"], context):
            codes.append(-1)
            continue
        output = Path(runner["RUNNER_TEMP"]) / f"output-{number}"
        output.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_")) and k != "CI"}
        env.update(runner)
        env.update(_read_key_values(github_env))
        env.update({"GITHUB_OUTPUT": str(output), "GITHUB_ENV": str(github_env), "GITHUB_ACTION_PATH": str(REPO_ROOT)})
        env.update({k: _expression(v, context) for k, v in step.get("env", {}).items()})
        assert step["shell"] == "bash"
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=workspace,
                              env=env, capture_output=True, text=True, timeout=900)
        print(step["name"], done.returncode, done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        codes.append(done.returncode)
        if "id" in step:
            context.update({f"steps.{step['id']}.outputs.{k}": v for k, v in _read_key_values(output).items()})
        if done.returncode != 0:
            break
    outputs = {name: _expression(spec["value"], context) for name, spec in action["outputs"].items()}
    return codes, outputs


@pytest.mark.slow
def test_the_action_gates_a_pull_request_and_posts_one_comment(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    # GET /items p50 about +150 % beside the rest of the suite. One look keeps the test short; at four pairs,
    # not three: with 15 tests under Holm, three pairs' 2 degrees of freedom left +149 % [+56, +298] INCONCLUSIVE
    # on a busy machine, where the per-pair ratios spread widely.
    make_demo_repo(repo, slowdown_pct=300)
    with (repo / "perfgate.toml").open("a") as config:
        config.write("\n[ab]\nlooks = [4]\n")
    head = git(repo, "rev-parse", "HEAD")
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    (tmp_path / "tmp").mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 5, "head": {"sha": head}}}))
    summary = tmp_path / "summary.md"
    with FakeGitHub(owner="acme", repo="shop").start() as fake:
        fake.add_pull(5, head)
        runner = {"RUNNER_TEMP": str(runner_temp), "GITHUB_STEP_SUMMARY": str(summary),
                  "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/shop", "GITHUB_API_URL": fake.url,
                  "GITHUB_TOKEN": "t0ken", "GITHUB_ACTIONS": "true", "TMPDIR": str(tmp_path / "tmp")}
        # Each tree's service.py runs on the Python the action installed perfgate into, as in the recipes.
        codes, outputs = run_action({"mode": "ab", "base-ref": "main", "run-time": "6s", "extras": "demo",
                                     "serve": '"$PERFGATE_PYTHON" service.py --port {port}',
                                     "comment": "true", "check": "status"}, repo, runner)
        comments = fake.comments(5)
        statuses = fake.statuses
    assert codes == [0, 0, 0, 1], codes  # installed, gated, posted; the last step fails the job: a regression
    assert outputs["verdict"] == "regressed" and outputs["exit-code"] == "1"
    assert Path(outputs["report-path"]).read_text().count('class="pt"') > 100
    markdown = Path(outputs["markdown-path"]).read_text()
    assert summary.read_text() == markdown and "| GET /items | 🔴 regressed |" in markdown
    assert json.loads(Path(outputs["json-path"]).read_text())["head"]["commit"] == head
    (ours,) = comments
    assert ours["body"] == markdown and ours["user"]["login"] == "github-actions[bot]"
    assert statuses[0]["state"] == "failure" and statuses[0]["context"] == "perfgate / demo"
    assert list((tmp_path / "tmp").iterdir()) == []  # the base worktree is gone


def test_fail_on_never_and_a_bad_mode(tmp_path: Path) -> None:
    """The result step alone: what fail-on does with each exit code."""
    step = next(s for s in _load(ACTION)["runs"]["steps"] if s["name"] == "Set the result")
    for code, fail_on, expected in ((0, "regression", 0), (1, "regression", 1), (3, "regression", 1),
                                    (4, "regression", 1), (1, "never", 0), (1, "sometimes", 2)):
        env = {**os.environ, "GATE_EXIT_CODE": str(code), "FAIL_ON": fail_on}
        done = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == expected, (code, fail_on, done.stdout)


# -- the gate step with a stub perfgate: which inputs become which flags ---------------------------------

GATE_INPUTS = ("mode", "profile", "config", "locustfile", "serve", "ready-url", "setup", "reset", "base-ref",
               "run-time", "runs", "db", "ab-mode", "max-pairs", "confirm", "strict", "users")


def _run_gate_step(tmp_path: Path, inputs: dict[str, str]) -> tuple[int, str, list[list[str]]]:
    """The "Run the gate" step alone, its env filled from the inputs, with a ``perfgate`` that records its argv."""
    action = _load(ACTION)
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "gate")
    calls = tmp_path / "calls.jsonl"
    stub = tmp_path / "perfgate"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    stub.chmod(0o755)
    context = {f"inputs.{k}": v.get("default", "") for k, v in action["inputs"].items()}
    context.update({f"inputs.{k}": v for k, v in inputs.items()})
    context["steps.install.outputs.bin"] = str(stub)
    output = tmp_path / "output"
    output.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update({k: _expression(v, context) for k, v in step["env"].items()})
    env["GITHUB_OUTPUT"] = str(output)
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return done.returncode, done.stdout + done.stderr, recorded


def test_the_gate_step_reads_every_input_through_env() -> None:
    step = next(s for s in _load(ACTION)["runs"]["steps"] if s.get("id") == "gate")
    used = set(re.findall(r"inputs\.([\w-]+)", json.dumps(step["env"])))
    assert set(GATE_INPUTS) <= used, set(GATE_INPUTS) - used


@pytest.mark.parametrize("inputs, expected", [
    ({"mode": "ab", "max-pairs": "12", "confirm": "false", "strict": "true", "users": "8"},
     ["ab", "--strict", "--max-pairs", "12", "--no-confirm", "--users", "8"]),
    ({"mode": "ab", "confirm": "true", "strict": "false"}, ["ab", "--no-strict", "--confirm"]),
    ({"mode": "ab", "ab-mode": "duet"}, ["ab", "--mode", "duet"]),
    ({"mode": "ab"}, ["ab"]),  # empty inputs: nothing passed, the config decides
    ({"mode": "compare", "strict": "true"}, ["compare", "--strict"]),
    ({"mode": "record", "runs": "2", "users": "3"}, ["run", "--users", "3"]),
])
def test_the_new_inputs_reach_perfgates_command_line(tmp_path: Path, inputs: dict[str, str],
                                                     expected: list[str]) -> None:
    code, log, calls = _run_gate_step(tmp_path, inputs)
    assert code == 0, log
    assert calls and all(call == expected for call in calls), calls
    assert len(calls) == int(inputs.get("runs", "1"))


@pytest.mark.parametrize("inputs, line", [
    ({"max-pairs": "ten"}, "::error::max-pairs must be a whole number (got 'ten')"),
    ({"max-pairs": "-3"}, "::error::max-pairs must be a whole number (got '-3')"),
    ({"users": "5.5"}, "::error::users must be a whole number (got '5.5')"),
    ({"confirm": "yes"}, "::error::confirm must be true or false (got 'yes')"),
    ({"strict": "True"}, "::error::strict must be true or false (got 'True')"),
    ({"ab-mode": "both"}, "::error::ab-mode must be duet or alternate (got 'both')"),
    ({"mode": "compare", "ab-mode": "duet"}, "::error::ab-mode applies to mode ab only (mode is 'compare')"),
    ({"mode": "compare", "max-pairs": "6"}, "::error::max-pairs applies to mode ab only (mode is 'compare')"),
    ({"mode": "record", "strict": "true"}, "::error::strict applies to mode ab or compare only (mode is 'record')"),
    ({"users": "$(touch pwned)"}, "::error::users must be a whole number (got 'touch pwned')"),
])
def test_a_bad_input_value_fails_with_one_clear_line(tmp_path: Path, inputs: dict[str, str], line: str) -> None:
    code, log, calls = _run_gate_step(tmp_path, {"mode": "ab", **inputs})
    assert code == 2 and calls == []
    assert log.strip().splitlines() == [line]
    assert not (tmp_path / "pwned").exists()
    assert (tmp_path / "output").read_text() == "gate-exit-code=2\n"
