"""The package layers hold: no import cycle between top-level packages, every import goes down
the layer diagram of docs/DESIGN.md, and the runtime side imports no MLIR.

Imports are read from the source (module-level and function-local ones alike), so a cycle that
only exists inside a function body is caught too; the MLIR-free modules are also imported in a
subprocess where `import mlir` fails.
"""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "woodpecker"

# Bottom to top (docs/DESIGN.md): a package may import packages of its own layer or of lower ones.
LAYERS: list[set[str]] = [
    {"errors", "stats", "models", "table"},
    {"kernels", "database"},
    {"runtime"},
    {"dialect"},
    {"ops"},
    {"importer", "graph", "lowering", "verify", "passes"},
    {"frontend", "tools"},
    {"schedule"},
    {"libs"},
    {"backend"},
    {"gpu"},
    {"measure"},
    {"targets"},
    {"select"},
    {"tune"},
    {"compiler"},
    {"cli"},
]
LAYER_OF = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# What a deployment host or a GPU measuring host loads: none of it may import MLIR.
MLIR_FREE_PACKAGES = ("runtime", "kernels", "database")
MLIR_FREE_MODULES = ("woodpecker.measure.batch", "woodpecker.cli.measure", "woodpecker.errors", "woodpecker.stats")


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            if node.module == "woodpecker":
                found += [(f"woodpecker.{alias.name}", node.lineno) for alias in node.names]
    return found


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


def _package_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in _sources():
        source = _package_of(path)
        for module, line in _imports(path):
            parts = module.split(".")
            if parts[0] == "woodpecker" and len(parts) > 1 and parts[1] != source:
                edges[(source, parts[1])].append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def test_every_package_has_a_layer() -> None:
    packages = {_package_of(p) for p in _sources()}
    assert packages - set(LAYER_OF) == set(), "add new packages to LAYERS (and to docs/DESIGN.md)"


def test_imports_go_down_the_layers() -> None:
    upward = [
        f"{a} (layer {LAYER_OF[a]}) imports {b} (layer {LAYER_OF[b]}) at {where[0]}"
        for (a, b), where in sorted(_package_edges().items())
        if a in LAYER_OF and b in LAYER_OF and LAYER_OF[b] > LAYER_OF[a]
    ]
    assert upward == []


def test_no_import_cycle_between_top_level_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    edges = _package_edges()
    for a, b in edges:
        graph[a].add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            where = [edges[(a, b)][0] for a, b in itertools.pairwise(cycle)]
            raise AssertionError(f"import cycle {' -> '.join(cycle)} ({'; '.join(where)})")


def test_the_runtime_side_imports_no_mlir_in_its_source() -> None:
    offenders = []
    for path in _sources():
        module = _module_of(path)
        if _package_of(path) in MLIR_FREE_PACKAGES or module in MLIR_FREE_MODULES:
            offenders += [
                f"{path.relative_to(ROOT)}:{line} imports {name}"
                for name, line in _imports(path)
                if name == "mlir" or name.startswith("mlir.")
            ]
    assert offenders == []


def test_the_runtime_side_loads_where_mlir_cannot_be_imported(tmp_path: Path) -> None:
    blocker = tmp_path / "mlir"
    blocker.mkdir()
    (blocker / "__init__.py").write_text('raise ImportError("mlir must not be imported here")\n')
    modules = [
        _module_of(p)
        for p in _sources()
        if _package_of(p) in MLIR_FREE_PACKAGES or _module_of(p) in MLIR_FREE_MODULES
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(n for n in sys.modules if n == 'mlir' or n.startswith('mlir.')))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(PACKAGE.parent)]))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(modules) > 15  # the runtime, kernels and database packages were all there


def test_a_compile_does_not_load_the_tuner(tmp_path: Path) -> None:
    """`woodpecker.compile` reads tuning records through the database, never through the tuner."""
    script = (
        "import sys, woodpecker\n"
        "from woodpecker.models import bundled_model_path\n"
        f"options = woodpecker.CompileOptions(tuning_db={str(tmp_path / 'records.db')!r})\n"
        "woodpecker.compile(bundled_model_path(), options=options)\n"
        "print(sorted(n for n in sys.modules if n.startswith('woodpecker.tune')))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
