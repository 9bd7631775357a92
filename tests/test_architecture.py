"""The house rules, checked on every run so that later features cannot bring the debt back.

- app layers: the import-linter contracts in pyproject.toml (`[tool.importlinter]`);
- no import cycle between modules, counting function-level and `TYPE_CHECKING` imports;
- a package `__init__` imports none of its submodules;
- at most `LATE_IMPORTS_ALLOWED` function-level imports of project modules outside
  `AppConfig.ready()`, each with a comment saying why;
- no application module over `MODULE_LINES_MAX` lines, and a README of at most `README_LINES_MAX`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    *("core", "accounts", "alerts", "incidents", "oncall", "warroom", "runbooks", "web"),
    "muster",
)
MODULE_LINES_MAX = 450
README_LINES_MAX = 250
LATE_IMPORTS_ALLOWED = 5


def app_modules() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_the_app_layers_hold():
    # In its own process: import-linter reads the packages from the file system, not from this
    # test process's already imported (and Django-configured) modules.
    linter = Path(sys.executable).parent / "lint-imports"
    checked = subprocess.run(
        [linter, "--no-cache", "--config", ROOT / "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph: every component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_between_modules():
    # grimp reads every import statement, function-level and TYPE_CHECKING ones included.
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert strongly_connected(graph) == []


def own_submodules(init: Path, tree: ast.Module) -> list[str]:
    """Where a package `__init__` imports from its own package (`from . import x`)."""
    package = ".".join(init.parent.relative_to(ROOT).parts)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [package if node.level else (node.module or "")]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == package or name.startswith(package + ".") for name in names):
            found.append(f"{init.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_package_init_imports_its_submodules():
    offenders = []
    for path in app_modules():
        if path.name == "__init__.py":
            offenders += own_submodules(path, ast.parse(path.read_text()))
    assert offenders == []


def late_imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, module, commented) for each import of a project module inside a function, except
    in an `AppConfig.ready()`, where Django wants receivers wired."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name == "ready" and path.name == "apps.py":
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." if node.level else (node.module or "")]
            else:
                continue
            if any(name == "." or name.split(".")[0] in PACKAGES for name in names):
                here, above = lines[node.lineno - 1], lines[node.lineno - 2]
                commented = "#" in here or above.strip().startswith("#")
                yield node.lineno, names[0], commented


def test_few_function_level_imports_each_with_a_reason():
    found = [
        (f"{path.relative_to(ROOT)}:{line} {module}", commented)
        for path in app_modules()
        for line, module, commented in late_imports(path)
    ]
    assert [where for where, commented in found if not commented] == []
    assert len(found) <= LATE_IMPORTS_ALLOWED, [where for where, _ in found]


def test_no_module_is_too_long():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in app_modules()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES_MAX
    }
    assert long == {}


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_LINES_MAX
