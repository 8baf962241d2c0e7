"""Discrete factors and variable elimination: exact inference for discrete models.

A factor is a non-negative table over named variables. Queries multiply the factors that mention a
variable and sum it out, in a greedy order (fewest new neighbours first), which keeps the tables of
textbook networks tiny. Variables may be any hashable key, so the twin network of a counterfactual
query can name its counterfactual copies ``(node, "cf")`` without clashing with real node names.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from causal.errors import InputError


@dataclass(frozen=True, eq=False)
class Factor:
    """A table whose axes follow `variables` (one axis per variable, its size the variable's cardinality)."""

    variables: tuple[Hashable, ...]
    table: np.ndarray

    def reduce(self, evidence: Mapping[Hashable, int]) -> Factor:
        """Keep only the slices that agree with `evidence` and drop those axes."""
        index = tuple(evidence.get(v, slice(None)) for v in self.variables)
        kept = tuple(v for v in self.variables if v not in evidence)
        return Factor(kept, self.table[index])


def multiply(factors: Iterable[Factor]) -> Factor:
    """Product of factors over the union of their variables."""
    factors = list(factors)
    variables: list[Hashable] = []
    for factor in factors:
        variables.extend(v for v in factor.variables if v not in variables)
    ids = {v: i for i, v in enumerate(variables)}
    operands: list[object] = []
    for factor in factors:
        operands.extend([factor.table, [ids[v] for v in factor.variables]])
    operands.append(list(range(len(variables))))
    return Factor(tuple(variables), np.einsum(*operands))


def sum_out(factor: Factor, variable: Hashable) -> Factor:
    """Marginalise `variable` away."""
    axis = factor.variables.index(variable)
    kept = factor.variables[:axis] + factor.variables[axis + 1 :]
    return Factor(kept, factor.table.sum(axis=axis))


def _next_variable(factors: list[Factor], candidates: set[Hashable]) -> Hashable:
    def cost(variable: Hashable) -> tuple[int, str]:
        neighbours: set[Hashable] = set()
        for factor in factors:
            if variable in factor.variables:
                neighbours.update(factor.variables)
        return len(neighbours), repr(variable)

    return min(candidates, key=cost)


def eliminate(
    factors: Iterable[Factor], keep: tuple[Hashable, ...], evidence: Mapping[Hashable, int] | None = None
) -> np.ndarray:
    """Normalised joint distribution of `keep` (axes in that order) given `evidence`.

    Raises:
        ValueError: when the evidence has probability zero under the model.
    """
    evidence = dict(evidence or {})
    work = [f.reduce(evidence) for f in factors]
    pending = {v for f in work for v in f.variables} - set(keep)
    while pending:
        variable = _next_variable(work, pending)
        touching = [f for f in work if variable in f.variables]
        work = [f for f in work if variable not in f.variables]
        work.append(sum_out(multiply(touching), variable))
        pending.discard(variable)
    joint = multiply(work) if work else Factor((), np.asarray(1.0))
    missing = [v for v in keep if v not in joint.variables]
    if missing:
        raise ValueError(f"variables {missing} appear in no factor")
    table = np.transpose(joint.table, [joint.variables.index(v) for v in keep])
    total = table.sum()
    if not total > 0:
        raise InputError(f"the evidence {evidence} has probability zero under the model")
    return table / total
