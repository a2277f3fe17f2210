"""The dependency picture: survey at the bottom, app and reproductions above it, nothing pointing up,
no import circle (imports inside functions count too)."""

from __future__ import annotations

import ast
import subprocess
import sys

import networkx as nx

from tests.conftest import REPO

LAYERS = ("survey", "app", "reproductions")
MAY_IMPORT = {"survey": {"survey"}, "reproductions": {"survey", "reproductions"},
              "app": {"survey", "reproductions", "app"}}


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> nx.DiGraph:
    """Our module -> our module it imports (at the top or inside a function), for every module."""
    graph = nx.DiGraph()
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            source = module_name(path)
            graph.add_node(source)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                for name in names:
                    if name.split(".")[0] in LAYERS:
                        graph.add_edge(source, _existing(name))
    graph.remove_edges_from(nx.selfloop_edges(graph))
    return graph


def _existing(name: str) -> str:
    """``name`` cut to the module it names (``from a.b import c`` names a.b.c only if c is a module)."""
    parts = name.split(".")
    while parts and not ((REPO.joinpath(*parts).with_suffix(".py")).is_file()
                         or (REPO.joinpath(*parts) / "__init__.py").is_file()):
        parts.pop()
    return ".".join(parts)


def test_nothing_points_up():
    upward = [(a, b) for a, b in imports().edges if b.split(".")[0] not in MAY_IMPORT[a.split(".")[0]]]
    assert not upward, upward


def test_no_import_circle():
    graph = imports()
    # a package importing its own submodules, and they the package's names, is one unit, not a circle
    packages = nx.DiGraph((a, b) for a, b in graph.edges if not (b.startswith(a + ".") or a.startswith(b + ".")))
    cycles = list(nx.simple_cycles(packages))
    assert not cycles, cycles


# The processes that must start without the repro extra (tests/test_install.py proves it) or fast
# (`survey --help`, tests/test_load_cache.py). A module they import may defer a heavy import into
# the function that needs it; every other module imports at the top.
LIGHT_PROCESSES = (
    "import sys; sys.argv = ['reproduce', '--help']\nfrom reproductions.cli import main\ntry: main()\nexcept SystemExit: pass",
    "import sys; sys.argv = ['reproduce', 'list']\nfrom reproductions.cli import main\ntry: main()\nexcept SystemExit: pass",
    "import survey.cli, app.main, app.cli",
)
SHOW_MODULES = "\nimport sys; print(' '.join(sys.modules), file=sys.stderr)"


def light_modules() -> set[str]:
    modules = set()
    for code in LIGHT_PROCESSES:
        done = subprocess.run([sys.executable, "-c", code + SHOW_MODULES], cwd=REPO, capture_output=True,
                              text=True, check=True)
        modules |= {m for m in done.stderr.split() if m.split(".")[0] in LAYERS}
    return modules


def function_local_imports() -> dict[str, list[str]]:
    """module -> "line: imported name" of each import inside a function."""
    found = {}
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                        found.setdefault(module_name(path), []).append(f"{node.lineno}: {name}")
    return found


def test_only_modules_of_the_light_processes_defer_imports():
    light = light_modules()
    assert {"reproductions.cli", "reproductions.run", "survey.cli", "app.main"} <= light
    deferred = {module: where for module, where in function_local_imports().items() if module not in light}
    assert not deferred, f"import these at the top (no light process loads them): {deferred}"
