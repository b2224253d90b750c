"""The architecture's guard: imports point down the layers of docs/architecture.md, modules form no cycle,
and fitter's modules import each other at module level (a function-level import hides the dependency graph;
only the command line defers its imports, so that `facefit --help` starts fast)."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from paths import REPO

# Lowest first. A module may import its own layer or a lower one. Prefixes match whole dotted components.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("leaves", ("fitter", "fitter.assets", "fitter.metrics", "fitter.common")),
    ("io", ("fitter.io",)),
    ("camera and model", ("fitter.camera", "fitter.crop", "fitter.model")),
    ("render", ("fitter.render",)),
    ("synth", ("fitter.synth",)),
    ("observe", ("fitter.observe",)),
    ("critic", ("fitter.critic",)),
    ("state", ("fitter.state", "fitter.scene", "fitter.evidence")),
    ("energy", ("fitter.energy",)),
    ("optimize", ("fitter.optimize",)),
    ("export", ("fitter.export",)),
    ("application", ("fitter.app", "fitter.bench")),
    ("cli", ("cli",)),
]
DEFERRED_OK = ("cli",)  # packages allowed to import project modules inside functions


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    deferred: bool  # inside a function or method


def project_modules() -> dict[str, Path]:
    mods = {}
    for root in ("fitter", "cli"):
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = path
    return mods


def resolve(module: str, path: Path, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The project modules an import statement names (``from pkg import sub`` names ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
    out = []
    for name in names:
        while name and name not in modules:  # `import fitter.render.raster as r` -> fitter.render.raster
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def all_imports() -> list[Import]:
    modules = project_modules()
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        deferred_nodes = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                deferred_nodes.update(id(n) for n in ast.walk(fn))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in dict.fromkeys(resolve(module, path, node, modules)):
                    if target != module:
                        found.append(Import(module, target, node.lineno, id(node) in deferred_nodes))
    return found


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    if best is None:
        raise AssertionError(f"module {module} belongs to no layer; add it to LAYERS and docs/architecture.md")
    return best


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


class TestArchitecture:
    def test_every_module_has_a_layer(self):
        for module in project_modules():
            layer_of(module)

    def test_imports_point_down(self, imports):
        upward = [f"{i.source}:{i.line} imports {i.target} ({LAYERS[layer_of(i.source)][0]} -> "
                  f"{LAYERS[layer_of(i.target)][0]})" for i in imports if layer_of(i.target) > layer_of(i.source)]
        assert not upward, "imports against the layers:\n" + "\n".join(upward)

    def test_no_import_cycles(self, imports):
        edges: dict[str, set[str]] = {}
        for i in imports:
            edges.setdefault(i.source, set()).add(i.target)
        found = cycles(edges)
        assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)

    def test_project_imports_are_at_module_level(self, imports):
        hidden = [f"{i.source}:{i.line} imports {i.target} inside a function" for i in imports
                  if i.deferred and not i.source.startswith(DEFERRED_OK)]
        assert not hidden, "function-level imports of project modules:\n" + "\n".join(hidden)

    def test_the_guard_sees_a_violation(self, tmp_path):
        """The checks above are not vacuous: a known upward import and a known cycle are detected."""
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        assert cycles(edges) == [["a", "b", "c"]]
        assert layer_of("fitter.render.raster") < layer_of("fitter.energy.prdl")
        tree = ast.parse("def f():\n    from ..export import obj\n")
        node = tree.body[0].body[0]
        modules = project_modules()
        assert resolve("fitter.energy.prdl", REPO / "fitter/energy/prdl.py", node, modules) == ["fitter.export.obj"]
