"""The layout's rules, checked on the code's own imports (every import, also those inside functions).

docs/architecture.md explains the layers; this file is where they are enforced: a module may import
modules of its own layer or of the layers below, never above, and no two modules import each other in a
circle. A module over 450 lines says at its top why it is one module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "perfgate"

LAYERS: list[tuple[str, ...]] = [
    # foundations: no perfgate imports but each other's
    ("errors", "boundary", "textsafety", "output", "interrupts", "samples", "environment"),
    ("config",),
    ("records",),
    ("git",),
    ("store", "spill"),
    ("measure",),
    ("decide",),
    ("baselines",),
    ("ab", "capacity"),
    ("gate",),
    ("reports",),
    ("publish",),
    ("scaffold",),
    ("demo",),
    ("cli", "__main__", "__init__"),
]
"""From the bottom up: the data path (config → measure → store → decide → baselines → gate → reports →
publish), then what sets perfgate up and the command line on top."""

MAX_LINES = 450
REASON = "Over 450 lines:"
"""What a longer module's docstring says, followed by why it is one module."""


def _layer_of(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"perfgate.{top} is in no layer: add it to LAYERS and to docs/architecture.md")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found["perfgate.__init__" if name == "perfgate" else name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The perfgate modules ``path`` imports (``from perfgate.x import y`` counts ``perfgate.x.y`` when it is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith("perfgate") and name in modules and name != "perfgate":
                found.add(name)
    return found


def test_every_import_points_down_or_sideways() -> None:
    modules = _modules()
    upward = []
    for name, path in modules.items():
        for imported in _imports(path, modules):
            if _layer_of(imported) > _layer_of(name):
                upward.append(f"{name} imports {imported}")
    assert not upward, "imports that point up a layer:\n  " + "\n  ".join(sorted(upward))


def test_no_import_circles() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # a package's __init__ importing its own modules is how a package presents itself, not a circle
    graph = {name: {i for i in imported if not i.startswith(name + ".")} for name, imported in graph.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else nxt)
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n  " + "\n  ".join(circles)


def test_a_long_module_says_why_it_is_one() -> None:
    long = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and REASON not in docstring:
            long.append(f"{name}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines without '{REASON} ...' in their docstring:\n  " + "\n  ".join(
        long
    )


def test_the_layers_checked_here_are_the_layers_documented() -> None:
    documented = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [name for names in LAYERS for name in names
               if not name.startswith("__") and f"`{name}" not in documented]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
