"""The layer rule of ``docs/architecture.md``, checked on every module's imports.

Every module of the installed package (found through ``pyproject.toml``'s package map) is parsed
with :mod:`ast`; its first-party imports, module-level and function-level alike, form a graph
that must:

- point only sideways or down the layers (:data:`LAYERS`, bottom first);
- have no cycles;
- import no ``_private`` name of another module (``from m import _x`` or ``m._x``);
- have function-level first-party imports only where :data:`LATE_IMPORTS` allows them, each with
  a comment saying why.

The checker is exercised on synthetic module graphs too, so a deliberate upward import, a cycle,
a private import and an unexplained late import are each shown to fail.

The size limits of ``docs/architecture.md`` are checked here too: no package file over 600 lines,
no gateware function over 80 lines.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = "palhdl"

#: The layers, bottom first: (name, exact modules, packages whose every module belongs here).
#: A module belongs to the layer that names it exactly or names its longest enclosing package.
LAYERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "spec",
        ("palhdl", "palhdl.validate", "palhdl.format", "palhdl.tables", "palhdl.progress"),
        (),
    ),
    ("golden", (), ("palhdl.sim.golden",)),
    ("gateware", (), ("palhdl.hdl",)),
    ("host", (), ("palhdl.sim",)),
    ("hostlink", (), ("palhdl.boards.hostlink",)),
    ("boards", (), ("palhdl.boards",)),
    ("synth", (), ("palhdl.synth",)),
    ("app", ("palhdl.cli", "palhdl.demo", "palhdl.runner"), ("palhdl.studies",)),
)

MAX_FILE_LINES = 600
MAX_GATEWARE_FUNCTION_LINES = 80
GATEWARE = ("palhdl.hdl", "palhdl.boards")

#: Modules allowed function-level first-party imports (to keep ``palhdl --help`` fast), and how
#: many in all.
LATE_IMPORTS = {"palhdl.cli"}
MAX_LATE_IMPORTS = 6


@dataclass(frozen=True)
class Import:
    """One first-party import: who imports what, where, and whether inside a function."""

    importer: str
    imported: str
    line: int
    late: bool
    commented: bool
    names: tuple[str, ...] = ()


def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index of ``module``'s layer in ``layers``, or ``None`` if no layer claims it."""
    best, best_len = None, -1
    for index, (_, exact, packages) in enumerate(layers):
        if module in exact and len(module) > best_len:
            best, best_len = index, len(module)
        for package in packages:
            if (module == package or module.startswith(package + ".")) and len(package) > best_len:
                best, best_len = index, len(package)
    return best


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package: dotted name -> source file, from pyproject's package map."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = config["package-dir"]
    modules = {}
    for package in config["packages"]:
        mapped = max(
            (p for p in package_dir if package == p or package.startswith(p + ".")), key=len
        )
        rest = package[len(mapped) :].lstrip(".").replace(".", "/")
        folder = root / package_dir[mapped] / rest
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


def _comment_near(lines: list[str], node: ast.stmt) -> bool:
    """Whether the import statement has a comment on one of its lines or just above it."""
    first = node.lineno - 1
    span = lines[max(first - 1, 0) : node.end_lineno]
    return any("#" in line for line in span)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def parse_imports(module: str, source: str, known: set[str], *, is_package=False) -> list[Import]:
    """First-party imports of one module's source; ``known`` is the set of module names."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, late: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = late or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == TOP:
                        found.append(
                            Import(
                                module, alias.name, child.lineno, late, _comment_near(lines, child)
                            )
                        )
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, is_package, child)
                if target.split(".")[0] != TOP:
                    continue
                commented = _comment_near(lines, child)
                plain = []
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    if sub in known:  # ``from package import module``
                        found.append(Import(module, sub, child.lineno, late, commented))
                    else:
                        plain.append(alias.name)
                if plain or not child.names:
                    found.append(
                        Import(module, target, child.lineno, late, commented, tuple(plain))
                    )
            visit(child, inner)

    visit(tree, False)
    return found


def private_attribute_uses(module: str, source: str, imports: list[Import]) -> list[str]:
    """``alias._name`` uses where ``alias`` is bound to another first-party module."""
    tree = ast.parse(source)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == TOP and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                aliases[alias.asname or alias.name] = None
    first_party = {imp.imported for imp in imports if not imp.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in first_party:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and aliases.get(node.value.id)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            problems.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return problems


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def violations(sources: dict[str, str], packages: set[str], layers=LAYERS) -> list[str]:
    """Every breach of the layer rule in ``sources`` (module name -> source text)."""
    known = set(sources)
    problems = []
    graph: dict[str, set[str]] = {name: set() for name in sources}
    late_count = 0
    for module, source in sorted(sources.items()):
        mine = layer_of(module, layers)
        if mine is None:
            problems.append(f"{module}: in no layer (add it to LAYERS and docs/architecture.md)")
            continue
        imports = parse_imports(module, source, known, is_package=module in packages)
        for imp in imports:
            target = imp.imported
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            where = f"{module}:{imp.line}"
            if target not in known:
                problems.append(f"{where} imports {imp.imported}, which is not a module")
                continue
            if target != module:
                graph[module].add(target)
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > mine:
                problems.append(
                    f"{where} imports upward: {layers[mine][0]} -> {layers[theirs][0]} ({target})"
                )
            private = [name for name in imp.names if name.startswith("_")]
            if private and target != module:
                problems.append(f"{where} imports private {', '.join(private)} from {target}")
            if imp.late:
                late_count += 1
                if module not in LATE_IMPORTS:
                    problems.append(f"{where} imports {target} inside a function")
                elif not imp.commented:
                    problems.append(f"{where} imports {target} inside a function, no comment why")
        problems += private_attribute_uses(module, source, imports)
    if late_count > MAX_LATE_IMPORTS:
        problems.append(f"{late_count} function-level imports, more than {MAX_LATE_IMPORTS}")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in find_cycles(graph)]
    return problems


def _package_sources() -> tuple[dict[str, str], set[str]]:
    modules = package_modules()
    sources = {name: path.read_text() for name, path in modules.items()}
    packages = {name for name, path in modules.items() if path.stem == "__init__"}
    return sources, packages


def test_every_module_is_found():
    modules = package_modules()
    for name in ("palhdl.format", "palhdl.cli", "palhdl.sim.golden", "palhdl.hdl.systolic"):
        assert name in modules
    assert all(path.is_file() for path in modules.values())


def test_package_follows_layer_rule():
    sources, packages = _package_sources()
    assert violations(sources, packages) == []


# --- the checker on synthetic module graphs --------------------------------------------------


def _synthetic(**extra: str) -> dict[str, str]:
    base = {
        "palhdl": "",
        "palhdl.format": "import numpy\n",
        "palhdl.sim.golden": "from palhdl.format import pal8\n",
        "palhdl.hdl.mac": "from palhdl.sim import golden\nfrom palhdl.format import pal8\n",
        "palhdl.sim": "",
        "palhdl.hdl": "",
        "palhdl.cli": "def main():\n    # late: fast --help\n    from palhdl.hdl import mac\n",
    }
    base.update({name.replace("__", "."): text for name, text in extra.items()})
    return base


SYNTHETIC_PACKAGES = {"palhdl", "palhdl.sim", "palhdl.sim.golden", "palhdl.hdl"}


def test_synthetic_clean_graph_passes():
    assert violations(_synthetic(), SYNTHETIC_PACKAGES) == []


def test_synthetic_upward_import_fails():
    sources = _synthetic(palhdl__format="from palhdl.hdl.mac import accumulate\n")
    problems = violations(sources, SYNTHETIC_PACKAGES)
    assert any("palhdl.format:1 imports upward: spec -> gateware" in p for p in problems)
    assert any(p.startswith("import cycle:") for p in problems)


def test_synthetic_function_level_upward_import_fails():
    sources = _synthetic(palhdl__sim__golden="def f():\n    from palhdl.hdl import mac\n")
    problems = violations(sources, SYNTHETIC_PACKAGES)
    assert "palhdl.sim.golden:2 imports upward: golden -> gateware (palhdl.hdl.mac)" in problems
    assert "palhdl.sim.golden:2 imports palhdl.hdl.mac inside a function" in problems


def test_synthetic_cycle_in_one_layer_fails():
    sources = _synthetic(
        palhdl__hdl__a="from palhdl.hdl import b\n", palhdl__hdl__b="import palhdl.hdl.a\n"
    )
    assert "import cycle: palhdl.hdl.a -> palhdl.hdl.b" in violations(sources, SYNTHETIC_PACKAGES)


def test_synthetic_private_names_fail():
    sources = _synthetic(
        palhdl__hdl__a="from palhdl.sim.golden import _check\n",
        palhdl__hdl__b="from palhdl.sim import golden\n\nx = golden._check\n",
    )
    problems = violations(sources, SYNTHETIC_PACKAGES)
    assert "palhdl.hdl.a:1 imports private _check from palhdl.sim.golden" in problems
    assert "palhdl.hdl.b:3 uses palhdl.sim.golden._check" in problems


def test_synthetic_late_import_needs_comment_and_allowance():
    sources = _synthetic(palhdl__cli="def main():\n    from palhdl.hdl import mac\n")
    assert violations(sources, SYNTHETIC_PACKAGES) == [
        "palhdl.cli:2 imports palhdl.hdl.mac inside a function, no comment why"
    ]


def test_synthetic_unknown_module_fails():
    sources = _synthetic(palhdl__extra="")
    assert "palhdl.extra: in no layer (add it to LAYERS and docs/architecture.md)" in violations(
        sources, SYNTHETIC_PACKAGES
    )


def test_relative_imports_resolve():
    imports = parse_imports(
        "palhdl.hdl.mac",
        "from . import convert\nfrom ..format import pal8\n",
        {"palhdl.hdl.convert"},
    )
    assert [(i.imported, i.names) for i in imports] == [
        ("palhdl.hdl.convert", ()),
        ("palhdl.format", ("pal8",)),
    ]


# --- size limits ---------------------------------------------------------------------------

MODULES = package_modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_file_length(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_FILE_LINES, f"{MODULES[module]} has {lines} lines"


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(tuple(p + "." for p in GATEWARE)))
)
def test_gateware_function_length(module):
    tree = ast.parse(MODULES[module].read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_GATEWARE_FUNCTION_LINES
    ]
    assert long == []
