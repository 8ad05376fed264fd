"""The package's floors: each module imports only its own layer or lower ones, and no module imports itself back.

Why: the layers (docs/ARCHITECTURE.md) let a reader understand `metrics` without `detectors`,
and a data or plot job run without torch; one upward import or one cycle undoes that quietly,
so the rule is checked on the source itself. Every import counts, also those inside functions:
a lazy import still ties the two modules together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "fidlens"
LAYERS = ("core", "metrics", "assets", "data", "detectors", "generators", "extraction", "studies", "workflow", "cli")
# Modules outside the floors: the package's own __init__ (a version string) and `python -m fidlens`.
UNLAYERED = {"fidlens", "fidlens.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every dotted name an import statement anywhere in TREE brings in (`from a import b` gives a.b and a)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]  # __import__("fidlens.x") / importlib.import_module("fidlens.x"): an import all the same
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def import_edges() -> dict[str, set[str]]:
    """module → the fidlens modules it imports (a name that is not a module maps to its module)."""
    modules = all_modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for dotted in _imported_names(tree, name, path.name == "__init__.py"):
            if dotted.split(".")[0] != "fidlens":
                continue
            while dotted not in modules:  # `from fidlens.x.y import function`: the module is fidlens.x.y
                dotted = dotted.rpartition(".")[0]
            if dotted != name and dotted not in ("fidlens", *_packages_above(name)):
                targets.add(dotted)
        edges[name] = targets
    return edges


def _packages_above(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def layer_of(module: str) -> int | None:
    """Index of MODULE's floor in LAYERS, None for the unlayered ones."""
    if module in UNLAYERED:
        return None
    floor = module.split(".")[1]
    assert floor in LAYERS, f"{module} is in no layer: add src/fidlens/{floor} to LAYERS (in order) or move it"
    return LAYERS.index(floor)


def upward_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            low, high = layer_of(source), layer_of(target)
            if low is not None and high is not None and high > low:
                bad.append(f"{source} ({LAYERS[low]}) -> {target} ({LAYERS[high]})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _describe(component: list[str], edges: dict[str, set[str]]) -> str:
    inside = set(component)
    return "; ".join(f"{a} -> {b}" for a in component for b in sorted(edges[a] & inside))


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    bad = upward_edges(import_edges())
    assert not bad, "upward imports (a lower layer must not know a higher one):\n  " + "\n  ".join(bad)


def test_no_import_cycles():
    edges = import_edges()
    found = cycles(edges)
    assert not found, "import cycles:\n  " + "\n  ".join(_describe(c, edges) for c in found)


def test_the_checker_sees_function_level_imports_upward_edges_and_cycles(tmp_path):
    """The checks above would pass vacuously if the parser missed imports; check it on a made-up tree."""
    tree = ast.parse("import os\n\ndef f():\n    from fidlens.cli.main import main\n    from . import sibling\n"
                     "    __import__('fidlens.studies.demo', fromlist=['_'])\n")
    names = set(_imported_names(tree, "fidlens.metrics.kid", is_package=False))
    assert {"fidlens.cli.main", "fidlens.cli.main.main", "fidlens.metrics.sibling", "fidlens.studies.demo"} <= names
    made_up = {"fidlens.core.a": {"fidlens.cli.b"}, "fidlens.cli.b": {"fidlens.core.a"}, "fidlens.metrics.c": set()}
    assert upward_edges(made_up) == ["fidlens.core.a (core) -> fidlens.cli.b (cli)"]
    assert cycles(made_up) == [["fidlens.cli.b", "fidlens.core.a"]]


def test_every_subpackage_is_a_layer():
    floors = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert floors == set(LAYERS), f"packages {sorted(floors ^ set(LAYERS))} do not match LAYERS"
