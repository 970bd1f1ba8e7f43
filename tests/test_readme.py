"""Every command and option the README and docs/ show exists: a reader who copies a line gets a command perfgate
knows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from perfgate.cli import app

ROOT_DIR = Path(__file__).resolve().parent.parent
README = ROOT_DIR / "README.md"
PAGES = [README, *sorted((ROOT_DIR / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
SPAN = re.compile(r"`(perfgate [a-z][^`]*)`")


def _shown_invocations() -> list[str]:
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    found = [span for span in SPAN.findall(text)]
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines are one command
            line = line.split(" #")[0].strip()
            if line.startswith("#"):
                continue
            if re.search(r"(^|[\s/\"])perfgate\s+[a-z]", line) and "perfgate-" not in line.split("perfgate", 1)[1][:1]:
                found.append(line[line.index("perfgate"):] if line.startswith(("uv run", "perfgate")) else
                             line[line.rindex("perfgate "):])
    return sorted({f for f in found if not f.startswith(("perfgate/", "perfgate:"))})


def _words(invocation: str) -> list[str]:
    try:
        words = shlex.split(re.sub(r"[\[\]]", " ", invocation.replace("…", "").replace("\\", "")))
    except ValueError:
        words = invocation.split()
    return words[1:] if words and words[0].endswith("perfgate") else words


def _options(command) -> set[str]:  # noqa: ANN001 - a Click command (Typer's own copy of Click)
    return {opt for param in command.params for opt in (*param.opts, *getattr(param, "secondary_opts", []))
            if opt.startswith("-")}


ROOT = typer.main.get_command(app)
INVOCATIONS = _shown_invocations()


def test_the_readme_shows_commands() -> None:
    assert len(INVOCATIONS) >= 20, INVOCATIONS


@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_every_command_and_option_in_the_readme_exists(invocation: str) -> None:
    words = _words(invocation)
    command = ROOT
    allowed = _options(ROOT)
    while words and hasattr(command, "commands") and not words[0].startswith("-"):
        name = words.pop(0)
        assert name in command.commands, \
            f"README shows `perfgate {name}`, which is not a command: {invocation}"
        command = command.commands[name]
        allowed |= _options(command)
    for word in words:
        if word == "--":
            break  # what follows goes to Locust
        if word.startswith("-") and len(word) > 1 and not word[1:2].isdigit():
            option = word.split("=", 1)[0]
            assert option in allowed, f"README shows {option}, which `perfgate {command.name}` does not take: " \
                                      f"{invocation}"
