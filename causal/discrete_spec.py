"""Discrete structural equations: state names and conditional probability tables (CPTs).

Kept apart from ``spec.py`` because CPT validation has the most ways to go wrong (missing rows,
rows for unknown states, probabilities that do not sum to one) and each deserves its own message.
The CPT is stored densely as an array indexed ``[state of parent 1, ..., state of parent k, state]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from causal.errors import InputError, InputTypeError

# Rows may be written with rounded decimals (0.333, 0.333, 0.334); anything further off is a mistake.
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class DiscreteEquation:
    """``node ~ table[parent states]``; exogenous ``U ~ Uniform[0, 1)`` picks the state by inverse CDF."""

    parents: tuple[str, ...]
    states: tuple[str, ...]
    table: np.ndarray

    def row(self, parent_states: tuple[int, ...]) -> np.ndarray:
        """Probabilities over this node's states for one configuration of parent state indices."""
        return self.table[parent_states]


def state_name(value: Any) -> str:
    """Canonical state name: strings stay, JSON numbers become their text (``0`` -> ``"0"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"a state name must be a string or a number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _row_given(
    node: str, number: int, row: Any, parents: tuple[str, ...], state_lists: Mapping[str, tuple[str, ...]]
) -> tuple[int, ...]:
    if not isinstance(row, Mapping):
        raise InputTypeError(f"node {node!r}: CPT row {number} must be an object with 'given' and 'p', got {row!r}")
    given = row.get("given", {})
    if not isinstance(given, Mapping):
        raise InputTypeError(f"node {node!r}: CPT row {number} 'given' must be an object, got {given!r}")
    for name in given:
        if name not in parents:
            raise InputError(
                f"node {node!r}: CPT row {number} gives {name!r}, which is not a parent (parents: {list(parents)})"
            )
    index = []
    for parent in parents:
        if parent not in given:
            raise InputError(f"node {node!r}: CPT row {number} does not give parent {parent!r}")
        state = state_name(given[parent])
        if state not in state_lists[parent]:
            raise InputError(
                f"node {node!r}: CPT row {number} gives parent {parent!r} state {given[parent]!r}; "
                f"states of {parent!r} are {list(state_lists[parent])}"
            )
        index.append(state_lists[parent].index(state))
    return tuple(index)


def _row_probabilities(node: str, number: int, row: Mapping[str, Any], states: tuple[str, ...]) -> np.ndarray:
    p = row.get("p")
    if not isinstance(p, list) or len(p) != len(states):
        raise InputError(
            f"node {node!r}: CPT row {number} must have 'p' with one probability per state "
            f"({len(states)}: {list(states)}), got {p!r}"
        )
    values = []
    for value in p:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InputError(f"node {node!r}: CPT row {number} has invalid probability {value!r}")
        values.append(float(value))
    total = sum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise InputError(
            f"node {node!r}: probabilities of CPT row {number} (given {dict(row.get('given', {}))}) "
            f"sum to {total:g}, not 1"
        )
    return np.asarray(values) / total


def parse_discrete_equation(
    node: str, raw: Mapping[str, Any], parents: tuple[str, ...], state_lists: Mapping[str, tuple[str, ...]]
) -> DiscreteEquation:
    """Validate one node's CPT against its parents' states and build the dense table."""
    states = state_lists[node]
    cpt = raw.get("cpt")
    if not isinstance(cpt, list) or not cpt:
        raise InputError(f"node {node!r}: 'cpt' must be a non-empty list of rows, got {cpt!r}")
    shape = tuple(len(state_lists[p]) for p in parents)
    table = np.full((*shape, len(states)), np.nan)
    for number, row in enumerate(cpt):
        index = _row_given(node, number, row, parents, state_lists)
        if not np.isnan(table[index][0]):
            raise InputError(f"node {node!r}: CPT row {number} repeats the configuration {dict(row['given'])}")
        table[index] = _row_probabilities(node, number, row, states)
    for index in itertools.product(*(range(n) for n in shape)):
        if np.isnan(table[index][0]):
            missing = {p: state_lists[p][i] for p, i in zip(parents, index, strict=True)}
            raise InputError(f"node {node!r}: CPT has no row for given {missing}")
    return DiscreteEquation(parents=parents, states=states, table=table)
