"""What the change under review does to the gate's own inputs.

A pull request can edit what decides its own verdict: the perfgate config (margins, α, budgets), the
locustfile that makes the load, the pinned baselines. None of that is wrong in itself, but a reviewer
must see it beside the verdict. Every such change against the merge-base with the main branch, committed
or still in the work tree, becomes a :class:`~perfgate.decide.verdict.GateInputChange`; a config change is told
by the keys whose parsed values differ (a pyproject's ``[tool.perfgate]`` section only).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from perfgate.config import CONFIG_FILENAME, LoadedConfig
from perfgate.decide.verdict import GateInputChange
from perfgate.git import MainLine, main_line, name_status, numstat, show_file, top_folder

MAX_CHANGES = 200
MAX_KEYS_SHOWN = 6
_KINDS: dict[str, Literal["added", "modified", "renamed", "deleted"]] = {
    "A": "added", "C": "added", "M": "modified", "T": "modified", "R": "renamed", "D": "deleted"}


def gate_changes(loaded: LoadedConfig, repo: Path, *, profile: str, locustfiles: list[str] | None = None,
                 main: MainLine | None = None) -> list[GateInputChange]:
    """Changes of the config, of ``profile``'s locustfile(s) and of ``baselines/`` against the merge-base.

    ``locustfiles``: the locustfile(s) the runs used (default: those the config names for the profile).
    Empty outside a git repository or without a merge-base with the main branch.
    """
    top = top_folder(repo)
    base = (main or main_line(repo, loaded.config.main_branch)).merge_base if top else None
    if top is None or base is None:
        return []
    changes = _config_changes(loaded, top, base)
    wanted = locustfiles if locustfiles is not None else _configured_locustfiles(loaded, profile)
    changes += _file_changes(repo, base, [p for f in wanted if (p := _inside(Path(f), top, loaded.root))],
                             "locustfile")
    baselines = _inside(loaded.baselines_dir, top, loaded.root)
    if baselines is not None:
        changes += _file_changes(repo, base, [baselines], "baseline")
    return changes[:MAX_CHANGES]


def _inside(path: Path, top: Path, root: Path) -> str | None:
    """``path`` relative to the repository's top folder; ``None`` for a file outside the repository."""
    absolute = path if path.is_absolute() else root / path
    try:
        return absolute.resolve().relative_to(top).as_posix()
    except ValueError:
        return None


def _configured_locustfiles(loaded: LoadedConfig, profile: str) -> list[str]:
    config = loaded.config
    overlay = config.profiles.get(profile)
    named = overlay.locustfile if overlay is not None and overlay.locustfile else config.locustfile
    return [part.strip() for part in (named or "").split(",") if part.strip()]


def _file_changes(repo: Path, base: str, paths: list[str],
                  what: Literal["locustfile", "baseline"]) -> list[GateInputChange]:
    changes = []
    for status, path, renamed_from in name_status(repo, base, paths):
        kind = _KINDS.get(status, "modified")
        detail = ""
        if kind in ("modified", "renamed"):
            lines = numstat(repo, base, path) if kind == "modified" else None
            detail = f"+{lines[0]} −{lines[1]} lines" if lines else ""
        changes.append(GateInputChange(path=path[:500], kind=kind, what=what,
                                       renamed_from=renamed_from[:500] if renamed_from else None, detail=detail))
    return changes


def _config_changes(loaded: LoadedConfig, top: Path, base: str) -> list[GateInputChange]:
    """The config files of the config's folder whose perfgate settings differ from the merge-base's."""
    root = _inside(loaded.root, top, loaded.root)
    if root is None:
        return []
    changes = []
    for name in (CONFIG_FILENAME, "pyproject.toml"):
        path = name if root == "." else f"{root}/{name}"
        section = ("tool", "perfgate") if name == "pyproject.toml" else ()
        before = _settings(show_file(top, base, path), section)
        current = top / path
        after = _settings(current.read_text(encoding="utf-8", errors="replace") if current.is_file() else None,
                          section)
        if before == after:
            continue
        kind: Literal["added", "modified", "deleted"] = (
            "added" if before is None else "deleted" if after is None else "modified")
        keys = _changed_keys(before or {}, after or {})
        shown = ", ".join(keys[:MAX_KEYS_SHOWN]) + (f" and {len(keys) - MAX_KEYS_SHOWN} more"
                                                    if len(keys) > MAX_KEYS_SHOWN else "")
        label = "[tool.perfgate] " if section else ""
        detail = f"{label}{'unreadable TOML' if 'unreadable' in (before, after) else shown}"
        changes.append(GateInputChange(path=path, kind=kind, what="config", detail=detail[:600]))
    return changes


def _settings(text: str | None, section: tuple[str, ...]) -> dict[str, Any] | str | None:
    """The parsed perfgate settings of a config file's text: ``None`` when there are none."""
    if text is None:
        return None
    try:
        data: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "unreadable"
    for key in section:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else None


def _changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, with old and new value for a plain value (tables are walked;
    lists, such as budgets, compared whole)."""
    if isinstance(before, dict) and after is None or before is None and isinstance(after, dict):
        before, after = before or {}, after or {}  # a table added or removed: name the keys in it
    if isinstance(before, dict) and isinstance(after, dict):
        keys: list[str] = []
        for key in sorted({*before, *after}):
            keys += _changed_keys(before.get(key), after.get(key), f"{prefix}{key}.")
        return keys
    if before == after:
        return []
    key = prefix.rstrip(".") or "(whole file)"
    if isinstance(before, dict | list) or isinstance(after, dict | list):
        return [key]
    return [f"{key} {_short(before)} → {_short(after)}"]


def _short(value: Any) -> str:
    text = "unset" if value is None else repr(value)
    return text if len(text) <= 30 else text[:29] + "…"
