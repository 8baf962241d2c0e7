"""Exact queries on discrete SCMs: observational, interventional and counterfactual distributions.

Interventions use graph surgery (`SCM.do`) followed by variable elimination. Counterfactuals follow the
file format's convention: every node V has its own ``U_V ~ Uniform[0, 1)`` and takes the first state whose
cumulative probability exceeds ``U_V``. Abduction, action and prediction then become one inference on a
*twin network*: each descendant V of the intervention gets a counterfactual copy V*, and because V and V*
share ``U_V``, their joint given both parent configurations is the overlap of the two rows' CDF intervals.
Non-descendants are shared between the worlds. Everything is enumerated exactly; nothing is sampled.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping

import networkx as nx
import numpy as np

from causal.discrete_spec import DiscreteEquation
from causal.factors import Factor, eliminate
from causal.graph import ancestors
from causal.spec import SCM


def _equation(scm: SCM, node: str) -> DiscreteEquation:
    equation = scm.equations[node]
    assert isinstance(equation, DiscreteEquation)
    return equation


def _cpt_factor(scm: SCM, node: str) -> Factor:
    equation = _equation(scm, node)
    return Factor((*equation.parents, node), equation.table)


def distribution(scm: SCM, target: str, given: Mapping[str, int] | None = None) -> np.ndarray:
    """P(target | given) over the target's states (given holds state indices)."""
    given = dict(given or {})
    size = len(_equation(scm, target).states)
    if target in given:
        eliminate([_cpt_factor(scm, n) for n in ancestors(scm.graph, given)], (), given)  # raises if impossible
        result = np.zeros(size)
        result[given[target]] = 1.0
        return result
    relevant = ancestors(scm.graph, {target, *given})
    factors = [_cpt_factor(scm, node) for node in scm.order if node in relevant]
    return eliminate(factors, (target,), given)


def _shared_noise_joint(row_a: np.ndarray, row_b: np.ndarray) -> np.ndarray:
    """P(V = i in world a, V = j in world b) when both worlds pick V by inverse CDF from the same U_V."""
    hi_a, hi_b = np.cumsum(row_a), np.cumsum(row_b)
    hi_a[-1] = hi_b[-1] = 1.0
    lo_a, lo_b = hi_a - row_a, hi_b - row_b
    overlap = np.minimum(hi_a[:, None], hi_b[None, :]) - np.maximum(lo_a[:, None], lo_b[None, :])
    return np.clip(overlap, 0.0, None)


def _twin_name(node: str, changed: set[str]) -> Hashable:
    return (node, "cf") if node in changed else node


def _twin_factor(scm: SCM, node: str, changed: set[str], do: Mapping[str, int]) -> Factor:
    """Joint factor of V and V* given the factual parents and the counterfactual parents."""
    equation = _equation(scm, node)
    star_parents = [(p, "cf") for p in equation.parents if p in changed]
    variables = (*equation.parents, *star_parents, node, (node, "cf"))
    sizes = [len(_equation(scm, p).states) for p in equation.parents]
    star_sizes = [len(_equation(scm, p).states) for p, _ in star_parents]
    table = np.zeros((*sizes, *star_sizes, len(equation.states), len(equation.states)))
    for factual in itertools.product(*(range(s) for s in sizes)):
        for star in itertools.product(*(range(s) for s in star_sizes)):
            star_values = dict(zip([p for p, _ in star_parents], star, strict=True))
            counterfactual = tuple(
                do[p] if p in do else star_values.get(p, factual[i]) for i, p in enumerate(equation.parents)
            )
            table[(*factual, *star)] = _shared_noise_joint(equation.row(factual), equation.row(counterfactual))
    return Factor(variables, table)


def counterfactual_distribution(
    scm: SCM, evidence: Mapping[str, int], do: Mapping[str, int], target: str
) -> np.ndarray:
    """P(target had do() held | evidence in the factual world), exactly, over the target's states."""
    size = len(_equation(scm, target).states)
    if target in do:
        result = np.zeros(size)
        result[do[target]] = 1.0
        return result
    changed = set()
    for node in do:
        changed |= nx.descendants(scm.graph, node)
    changed -= set(do)
    if target not in changed:
        return distribution(scm, target, evidence)
    twin = nx.DiGraph()
    for node in scm.order:
        for parent in _equation(scm, node).parents:
            twin.add_edge(parent, node)
            if node in changed:  # V* shares U_V with V, and its factor spans V's factual parents too
                twin.add_edge(parent, (node, "cf"))
                if parent not in do:
                    twin.add_edge(_twin_name(parent, changed), (node, "cf"))
        twin.add_node(node)
        if node in changed:
            twin.add_edge(node, (node, "cf"))
    query = (target, "cf")
    relevant = ancestors(twin, {query, *evidence})
    factors = [_cpt_factor(scm, n) for n in scm.order if n in relevant and n not in changed]
    factors += [_twin_factor(scm, n, changed, do) for n in scm.order if n in changed and (n, "cf") in relevant]
    # a changed node whose counterfactual copy is irrelevant still needs its factual CPT
    factors += [_cpt_factor(scm, n) for n in scm.order if n in changed and n in relevant and (n, "cf") not in relevant]
    return eliminate(factors, (query,), evidence)
