"""The package's layout: wings that import one way only, no circle, each wing saying its job.

Every import inside the package is read from the source (those in functions and under
TYPE_CHECKING included), so that an import added later in the wrong direction fails here.
The order below is the one docs/api.rst shows (top floor first).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mortar_seq"
DOCS = PACKAGE.parent / "docs" / "api.rst"

# From the ground up: a module may import the ones of its own wing and of the lines above it.
LAYERS = [
    "errors",
    "definition",
    "arithmetic",
    "model",
    "db",
    "storage",
    "patterns",
    "strategies",
    "numbering",
    "admin",
    "agreement",
    "sequence",
    "template",
    "registry",
    "defaults",
    "one_call",
    "importing",
    "commit_marker",
    "retry",
    "cli",
    "__main__",
]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name ("db.side", "strategies"), migrations aside."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] == "migrations":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The package's modules that module *name* imports, wherever in it the import stands."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("mortar_seq"):
                target = node.module.removeprefix("mortar_seq").lstrip(".")
            else:
                continue
            for alias in node.names:
                inner = f"{target}.{alias.name}".lstrip(".")
                yield inner if inner in known else target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mortar_seq."):
                    yield alias.name.removeprefix("mortar_seq.")


def graph() -> dict[str, set[str]]:
    known = modules()
    # Python runs the package's face (mortar_seq/__init__.py, "") before any of its modules,
    # so importing a name from it (``__version__``) adds nothing: its edges are left out.
    return {
        name: {target for target in imports(name, path, known) if target and target != name}
        for name, path in known.items()
        if name
    }


def wing(module: str) -> str:
    return module.split(".")[0]


def test_every_module_stands_in_a_layer() -> None:
    assert {wing(name) for name in graph()} == set(LAYERS)


def test_no_import_runs_up() -> None:
    rank = {name: index for index, name in enumerate(LAYERS)}
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if wing(target) != wing(name) and rank[wing(target)] > rank[wing(name)]
    )
    assert upward == []


def test_no_circle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in sorted(edges.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_each_wing_says_its_job() -> None:
    for folder in sorted(path for path in PACKAGE.iterdir() if (path / "__init__.py").exists()):
        if folder.name == "migrations":
            continue
        docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert docstring, f"mortar_seq/{folder.name}/__init__.py has no docstring"


def test_the_docs_show_the_layers_in_order() -> None:
    """docs/api.rst draws the tree top floor first, one wing or module a line."""
    text = DOCS.read_text()
    block = text[text.index(".. layout-start") : text.index(".. layout-end")]
    drawn = re.findall(r"^\s{3}([\w]+)(?:/|\.py)\s", block, flags=re.MULTILINE)
    shown = [name for name in drawn if name not in ("mortar_seq", "migrations")]
    assert shown == [name for name in reversed(LAYERS) if name != "__main__"]
