"""Forward sampling of an SCM, with the exogenous noise made explicit.

Noise is drawn per node in topological order, one array per node, so the same seed gives the same
units with and without an intervention (``sample(scm.do(...))`` reuses every other node's noise): the
samples of two worlds are then paired, which is what counterfactual checks and Monte Carlo contrasts
need. Continuous nodes get standard normal noise scaled by ``noise_std``; discrete nodes get
``U ~ Uniform[0, 1)`` and take the first state whose cumulative probability exceeds ``U``.

Example:
    >>> import numpy as np
    >>> from causal.spec import parse_scm
    >>> scm = parse_scm({"scm_type": "linear_gaussian", "nodes": ["X"],
    ...                  "equations": {"X": {"intercept": 5, "noise_std": 0}}})
    >>> sample(scm, 2, np.random.default_rng(0))["X"].tolist()
    [5.0, 5.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from causal.discrete_spec import DiscreteEquation
from causal.spec import SCM, Equation, LinearEquation, NonlinearEquation


def structural_mean(equation: Equation, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The noise-free part of a continuous equation, evaluated on arrays of parent values."""
    if isinstance(equation, LinearEquation):
        result = np.full(n, equation.intercept)
        for parent, weight in equation.coefficients.items():
            result = result + weight * values[parent]
        return result
    assert isinstance(equation, NonlinearEquation)
    return np.broadcast_to(equation.expression.evaluate(values), (n,)).astype(float)


def inverse_cdf(table: np.ndarray, parent_codes: tuple[np.ndarray, ...], u: np.ndarray) -> np.ndarray:
    """State index per sample: the smallest k with ``u`` below the cumulative probability of states 0..k."""
    rows = table[parent_codes] if parent_codes else np.broadcast_to(table, (len(u), table.shape[-1]))
    cumulative = np.cumsum(rows, axis=-1)[..., :-1]
    return (u[:, None] >= cumulative).sum(axis=1)


def draw_noise(scm: SCM, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One exogenous draw per node and unit: Uniform[0, 1) for discrete nodes, N(0, 1) otherwise."""
    if n < 1:
        raise ValueError(f"the number of samples must be >= 1, got {n}")
    return {node: rng.random(n) if scm.is_discrete else rng.standard_normal(n) for node in scm.order}


def propagate(scm: SCM, noise: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate every structural equation in topological order on the given noise."""
    values: dict[str, np.ndarray] = {}
    n = len(next(iter(noise.values())))
    for node in scm.order:
        equation = scm.equations[node]
        if isinstance(equation, DiscreteEquation):
            codes = tuple(values[p] for p in equation.parents)
            values[node] = inverse_cdf(equation.table, codes, noise[node])
            continue
        value = structural_mean(equation, values, n) + equation.noise_std * noise[node]
        if not np.all(np.isfinite(value)):
            raise ValueError(f"node {node!r}: its equation produced non-finite values (e.g. log of a negative)")
        values[node] = value
    return values


MAX_ROWS = 10_000_000  # one float64 column per node is held in memory: 80 MB per node at the cap


def sample(scm: SCM, n: int, rng: np.random.Generator, do: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Draw `n` units (all nodes, latent ones included) from the model, optionally under ``do()``.

    Discrete columns hold state indices; `decode` turns them into state names. More than `MAX_ROWS`
    units is refused with a ValueError before anything is allocated.
    """
    if n > MAX_ROWS:
        raise ValueError(f"cannot draw {n} units: the limit is {MAX_ROWS:,} rows per call")
    model = scm.do(do) if do else scm
    return propagate(model, draw_noise(model, n, rng))


def decode(scm: SCM, node: str, column: np.ndarray) -> list[str] | list[float]:
    """Column values as they appear in data files: state names for discrete nodes, floats otherwise."""
    if scm.is_discrete:
        states = scm.states(node)
        return [states[int(code)] for code in column]
    return [float(v) for v in column]
