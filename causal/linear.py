"""Exact queries on linear-Gaussian SCMs through the joint Gaussian.

Writing the model as ``X = B X + c + U`` with ``U ~ N(0, D)`` gives ``X = A (c + U)``, ``A = (I - B)^-1``:
mean ``A c`` and covariance ``A D A^T``. Interventions are graph surgery (`SCM.do`) before building
``A``; conditioning uses the Gaussian formulas. Counterfactuals use the same algebra on the noise:
the posterior mean of ``U`` given the evidence (abduction, exact even for partially observed units),
then the mutilated model's ``A'`` applied to it (action and prediction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from causal.errors import InputError
from causal.spec import SCM, LinearEquation


@dataclass(frozen=True, eq=False)
class GaussianForm:
    """``X = A (c + U)``, ``U ~ N(0, diag(noise_var))``, with `index` mapping node names to rows."""

    index: dict[str, int]
    a: np.ndarray
    c: np.ndarray
    noise_var: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean vector of all nodes."""
        return self.a @ self.c

    @property
    def cov(self) -> np.ndarray:
        """Covariance matrix of all nodes."""
        return (self.a * self.noise_var) @ self.a.T


def gaussian_form(scm: SCM) -> GaussianForm:
    """Build ``A``, ``c`` and the noise variances of a linear-Gaussian model (mutilated or not)."""
    index = {node: i for i, node in enumerate(scm.nodes)}
    n = len(index)
    b, c, var = np.zeros((n, n)), np.zeros(n), np.zeros(n)
    for node, equation in scm.equations.items():
        assert isinstance(equation, LinearEquation)
        i = index[node]
        for parent, weight in equation.coefficients.items():
            b[i, index[parent]] = weight
        c[i], var[i] = equation.intercept, equation.noise_std**2
    a = np.linalg.solve(np.eye(n) - b, np.eye(n))
    return GaussianForm(index=index, a=a, c=c, noise_var=var)


def _solve_consistent(matrix: np.ndarray, rhs: np.ndarray, what: str) -> np.ndarray:
    """Least-squares solve that refuses evidence outside the (possibly degenerate) Gaussian's support."""
    solution, *_ = np.linalg.lstsq(matrix, rhs, rcond=None)
    residual = np.linalg.norm(matrix @ solution - rhs)
    if residual > 1e-8 * (1.0 + np.linalg.norm(rhs)) * max(1.0, np.abs(matrix).max()):
        raise InputError(f"{what} is impossible under the model (it contradicts a deterministic relation)")
    return solution


def conditional_mean(form: GaussianForm, target: str, given: Mapping[str, float]) -> float:
    """E[target | given] under the joint Gaussian."""
    mean, t = form.mean, form.index[target]
    if not given:
        return float(mean[t])
    cov = form.cov
    g = [form.index[node] for node in given]
    deviation = np.array([given[node] for node in given]) - mean[g]
    weights = _solve_consistent(cov[np.ix_(g, g)], deviation, f"the evidence {dict(given)}")
    return float(mean[t] + cov[t, g] @ weights)


def conditional_variance(form: GaussianForm, target: str, given: Mapping[str, float]) -> float:
    """Var[target | given] under the joint Gaussian (used to report spreads)."""
    cov, t = form.cov, form.index[target]
    if not given:
        return float(cov[t, t])
    g = [form.index[node] for node in given]
    gain = np.linalg.pinv(cov[np.ix_(g, g)]) @ cov[g, t]
    return float(max(cov[t, t] - cov[t, g] @ gain, 0.0))


def counterfactual_mean(scm: SCM, evidence: Mapping[str, float], do: Mapping[str, float], target: str) -> float:
    """E[target in the world where do() held | evidence observed in the actual world]."""
    factual = gaussian_form(scm)
    noise_mean = np.zeros(len(factual.index))
    if evidence:
        rows = [factual.index[node] for node in evidence]
        m = factual.a[rows]
        observed = np.array([evidence[node] for node in evidence]) - m @ factual.c
        gram = (m * factual.noise_var) @ m.T
        noise_mean = factual.noise_var * (m.T @ _solve_consistent(gram, observed, f"the evidence {dict(evidence)}"))
    world = gaussian_form(scm.do(do))
    for node in do:
        noise_mean[world.index[node]] = 0.0
    return float(world.a[world.index[target]] @ (world.c + noise_mean))
