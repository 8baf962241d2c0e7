"""Structure discovery: the PC algorithm, then orientation from interventional data.

Observational data alone identifies a DAG only up to its Markov equivalence class, so PC (the
order-independent "stable" variant) returns the CPDAG: skeleton from conditional-independence tests,
v-structures from the separating sets, then Meek's rules. Interventional data sets break the symmetry:
for an undirected edge a - b with a intervened on and b not, a -> b holds exactly when the intervention
moves b (b's distribution shifts from the observational one, or, when a still varies, a and b stay
dependent). Meek's rules then propagate those orientations.

Example query (``targets`` lists the intervened nodes of each file, ``[]`` for observational data)::

    {"type": "discovery", "data": [{"path": "obs.csv", "targets": []}, {"path": "do_x.csv", "targets": ["X"]}]}
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from causal.citests import FisherZ, GTest, PolynomialResidualTest, dependence_pvalue, distribution_shift_pvalue
from causal.data import load_data, read_table
from causal.errors import InputError, UnknownNameError
from causal.estimation import data_entries
from causal.pdag import PDAG
from causal.spec import SCM

DEFAULT_ALPHA = 0.01
CITest = FisherZ | GTest | PolynomialResidualTest


def pc_skeleton(test: CITest, n_vars: int, alpha: float) -> tuple[set[frozenset[int]], dict]:
    """PC-stable adjacency search: remove an edge once some conditioning set makes its ends independent."""
    adjacent = {i: set(range(n_vars)) - {i} for i in range(n_vars)}
    sepsets: dict[frozenset[int], tuple[int, ...]] = {}
    level = 0
    while any(len(adjacent[i]) - 1 >= level for i in range(n_vars)):
        frozen = {i: set(adjacent[i]) for i in range(n_vars)}  # stable: fixed neighbourhoods per level
        for i, j in itertools.combinations(range(n_vars), 2):
            if j not in adjacent[i]:
                continue
            for given in _candidate_sets(frozen, i, j, level):
                if test.pvalue(i, j, given) > alpha:
                    adjacent[i].discard(j)
                    adjacent[j].discard(i)
                    sepsets[frozenset((i, j))] = given
                    break
        level += 1
    edges = {frozenset((i, j)) for i in adjacent for j in adjacent[i]}
    return edges, sepsets


def _candidate_sets(frozen: Mapping[int, set[int]], i: int, j: int, level: int) -> list[tuple[int, ...]]:
    sets: list[tuple[int, ...]] = []
    for side in (sorted(frozen[i] - {j}), sorted(frozen[j] - {i})):
        for combo in itertools.combinations(side, level):
            if combo not in sets:
                sets.append(combo)
    return sets


def pc(test: CITest, n_vars: int, alpha: float) -> PDAG:
    """The CPDAG estimated by PC: skeleton, v-structures, Meek's rules."""
    edges, sepsets = pc_skeleton(test, n_vars, alpha)
    pdag = PDAG(n_vars, edges)
    for a, b in itertools.combinations(range(n_vars), 2):
        if pdag.adjacent(a, b):
            continue
        for c in sorted(pdag.neighbours(a) & pdag.neighbours(b)):
            if c not in sepsets.get(frozenset((a, b)), ()):
                pdag.orient_collider(a, c, b)
    pdag.apply_meek_rules()
    return pdag


def _matrix(scm: SCM, table: Mapping[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.column_stack([table[n] for n in names]).astype(int if scm.is_discrete else float)


def orient_by_interventions(
    pdag: PDAG,
    observational: np.ndarray,
    interventional: list[tuple[np.ndarray, set[int]]],
    kind: str,
    alpha: float,
) -> None:
    """Orient each undirected edge with exactly one intervened end, then propagate with Meek's rules."""
    for data, targets in interventional:
        for a, b in sorted(pdag.undirected_pairs()):
            if (a in targets) == (b in targets):
                continue
            cause, other = (a, b) if a in targets else (b, a)
            if np.ptp(data[:, cause]) > 0:
                moved = dependence_pvalue(data[:, cause], data[:, other], kind) <= alpha
            else:
                moved = distribution_shift_pvalue(observational[:, other], data[:, other], kind == "discrete") <= alpha
            if moved:
                pdag.orient(cause, other)
            else:
                pdag.orient(other, cause)
    pdag.apply_meek_rules()


def discover(scm: SCM, query: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """Answer a ``discovery`` query: the CPDAG from observational data, refined by interventional data."""
    alpha = float(query.get("alpha", DEFAULT_ALPHA))
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    entries = data_entries(query, base_dir)
    observational_paths = [path for path, targets in entries if not targets]
    if not observational_paths:
        raise InputError('discovery needs at least one observational data entry ("targets": [])')
    names = [n for n in scm.nodes if n in read_table(observational_paths[0])]
    if len(names) < 2:
        raise InputError(f"discovery needs at least two model nodes among the data columns, got {names}")
    parts = [load_data(scm, path, names) for path in observational_paths]
    observational = np.concatenate([_matrix(scm, p, names) for p in parts])
    if scm.is_discrete:
        test: CITest = GTest(observational, [len(scm.states(n)) for n in names])
    elif scm.scm_type == "nonlinear_additive_noise":
        test = PolynomialResidualTest(observational)
    else:
        test = FisherZ(observational)
    pdag = pc(test, len(names), alpha)
    interventional = []
    for path, targets in entries:
        if targets:
            unknown = [t for t in targets if t not in names]
            if unknown:
                raise UnknownNameError(f"intervention targets {unknown} of {path} are not data columns {names}")
            interventional.append((_matrix(scm, load_data(scm, path, names), names), {names.index(t) for t in targets}))
    kind = "discrete" if scm.is_discrete else "nonlinear" if scm.scm_type == "nonlinear_additive_noise" else "linear"
    orient_by_interventions(pdag, observational, interventional, kind, alpha)
    return {
        "directed": sorted([names[a], names[b]] for a, b in pdag.directed),
        "undirected": sorted([names[a], names[b]] for a, b in pdag.undirected_pairs()),
        "method": "pc-stable" + ("+interventions" if interventional else ""),
        "alpha": alpha,
    }
