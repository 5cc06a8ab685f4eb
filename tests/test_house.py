"""The house: the package's shape, held by tests.

- No import cycle among charlm's modules, counting every import of a charlm module, those
  inside functions included. Only an `if TYPE_CHECKING:` block and a package `__init__`'s
  lazy `__getattr__` are exempt.
- Imports point down the data path: cli → api → report → training / use / lessons →
  engines → checkpoint → nn → data → config → the shared facts (defaults, errors, …).
- At most 8 modules at the top of charlm/ (besides __init__ and __main__); every module
  opens with a docstring and stays under 350 lines.
- The package's license is an SPDX string, which setuptools ≥ 77 takes without a warning.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "charlm"
# floors, from the ground up; a module may import only from its own floor or below
FLOORS = [
    # the package's own __init__ holds __version__ and imports nothing but errors (the API it
    # names loads lazily, through its exempt __getattr__), so every floor may read it
    {"errors", "defaults", "fileio", "threads", "rundir", "__init__"},
    {"config"},
    {"data"},
    {"nn"},
    {"checkpoint"},
    {"engines"},
    {"training", "use", "lessons"},
    {"report"},
    {"api"},
    {"cli", "__main__"},
]
MAX_LINES, MAX_TOP = 350, 8


def modules() -> dict[str, Path]:
    """charlm's modules by dotted name (a package by its own name, for its __init__)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _exempt(node: ast.AST, parents: dict, is_init: bool) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
        if is_init and isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return True
    return False


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The charlm modules `name` imports, anywhere in the file."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = set()
    for node in ast.walk(tree):
        if _exempt(node, parents, path.name == "__init__.py"):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                       for a in node.names]
        else:
            continue
        found |= {t for t in targets if t.split(".")[0] == "charlm" and t != name}
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def floor(name: str) -> int:
    part = name.split(".")[1] if "." in name else "__init__"
    return next(i for i, names in enumerate(FLOORS) if part in names)


def test_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}   # 1 on the path, 2 done
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                cycle = path[path.index(m):] + [m]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if m not in state:
                visit(m)
        path.pop()
        state[n] = 2

    for n in sorted(g):
        if n not in state:
            visit(n)


def test_imports_point_down_the_path():
    upward = [f"{a} → {b}" for a, targets in graph().items() for b in targets if floor(b) > floor(a)]
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_every_module_is_on_a_floor():
    for name in modules():
        floor(name)  # StopIteration names a room the FLOORS above forgot


def test_few_top_level_modules_small_files_with_docstrings():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP, top
    for name, path in modules().items():
        text = path.read_text()
        assert text.count("\n") <= MAX_LINES, f"{path} has {text.count(chr(10))} lines"
        assert ast.get_docstring(ast.parse(text)), f"{name} opens with no docstring"


def test_license_is_an_spdx_string():
    """A table here makes setuptools ≥ 77 print a long deprecation warning on every install."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77
               for r in project["build-system"]["requires"])
