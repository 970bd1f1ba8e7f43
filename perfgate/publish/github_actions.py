"""GitHub Actions' files: the job summary (``$GITHUB_STEP_SUMMARY``) and step outputs (``$GITHUB_OUTPUT``).

Outputs use the multi-line form ``name<<DELIMITER`` with a random delimiter that the
value cannot contain, so a value with line breaks (or one crafted to look like
another output) cannot inject outputs of its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from perfgate.errors import OutputError


def _append(path: str, text: str, what: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write the {what} at {path} ({exc.strerror or exc}); "
                          "check the runner's file system") from None


def write_step_summary(markdown: str, environ: Mapping[str, str] | None = None, *, once: bool = False) -> Path | None:
    """Append the Markdown to the job summary, when running in GitHub Actions.

    ``once``: not when the summary already has it (the gate's step wrote it before a later step posts).
    """
    path = (environ if environ is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    if once:
        try:
            if markdown in Path(path).read_text(encoding="utf-8"):
                return Path(path)
        except OSError:
            pass
    _append(path, markdown if markdown.endswith("\n") else markdown + "\n", "job summary")
    return Path(path)


def format_outputs(values: Mapping[str, str]) -> str:
    """Step outputs in the multi-line-safe form."""
    text = []
    for name, value in values.items():
        if not name or any(c in name for c in "<\n\r="):
            raise ValueError(f"invalid output name {name!r}")
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        while delimiter in value:  # practically never; but a value must not be able to end its own block
            delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        text.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(text)


def write_outputs(values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Path | None:
    """Add step outputs, when running in GitHub Actions."""
    path = (environ if environ is not None else os.environ).get("GITHUB_OUTPUT")
    if not path:
        return None
    _append(path, format_outputs(values), "step outputs")
    return Path(path)


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    env = environ if environ is not None else os.environ
    return bool(env.get("GITHUB_OUTPUT") or env.get("GITHUB_STEP_SUMMARY"))


def publish(*, verdict: str, exit_code: int, markdown: str, json_text: str, profile: str,
            html: str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """In GitHub Actions: the job summary, the verdict files, and the step outputs that name them.

    The files go to ``$RUNNER_TEMP/perfgate`` (or ``.perfgate/reports``) as ``verdict-<profile>.md``
    and ``.json`` (and the HTML report, ``report-<profile>.html``), for the next step to upload or post.
    Returns the outputs written (none outside Actions).
    """
    env = environ if environ is not None else os.environ
    if not in_github_actions(env):
        return {}
    from perfgate.output import write_text_atomic

    folder = Path(env["RUNNER_TEMP"]) / "perfgate" if env.get("RUNNER_TEMP") else Path(".perfgate/reports")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in profile)
    markdown_path, json_path = folder / f"verdict-{safe}.md", folder / f"verdict-{safe}.json"
    write_text_atomic(markdown_path, markdown)
    write_text_atomic(json_path, json_text)
    write_step_summary(markdown, env)
    outputs = {"verdict": verdict, "exit-code": str(exit_code), "markdown-path": str(markdown_path.resolve()),
               "json-path": str(json_path.resolve())}
    if html is not None:
        html_path = folder / f"report-{safe}.html"
        write_text_atomic(html_path, html)
        outputs["report-path"] = str(html_path.resolve())
    write_outputs(outputs, env)
    return outputs
