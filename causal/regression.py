"""Polynomial least-squares outcome models for the g-formula on continuous data.

Linear-Gaussian data gets degree 1 (ordinary least squares, the correct model). For nonlinear
additive-noise data the degree is picked by K-fold cross-validation, which is flexible enough for the
smooth expressions the SCM format allows over the range the data covers. Inputs are standardised
before forming monomials so higher degrees stay well conditioned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

RIDGE = 1e-8


def monomials(n_inputs: int, degree: int) -> list[tuple[int, ...]]:
    """Index tuples of every monomial up to `degree` (the empty tuple is the constant), in feature order."""
    terms: list[tuple[int, ...]] = [()]
    for d in range(1, degree + 1):
        terms.extend(itertools.combinations_with_replacement(range(n_inputs), d))
    return terms


@dataclass(frozen=True, eq=False)
class PolynomialModel:
    """A fitted polynomial E[y | inputs]; `predict` takes a (n, n_inputs) array."""

    degree: int
    center: np.ndarray
    scale: np.ndarray
    coef: np.ndarray

    def features(self, inputs: np.ndarray) -> np.ndarray:
        """Monomials up to `degree` of the standardised inputs (first column is the constant)."""
        z = (inputs - self.center) / self.scale
        columns = [
            np.prod(z[:, list(term)], axis=1) if term else np.ones(len(z))
            for term in monomials(z.shape[1], self.degree)
        ]
        return np.column_stack(columns)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Fitted conditional mean at each row of `inputs`."""
        return self.features(inputs) @ self.coef


def fit_polynomial(inputs: np.ndarray, y: np.ndarray, degree: int) -> PolynomialModel:
    """Least squares (with a negligible ridge for stability) of `y` on monomials of `inputs`."""
    inputs = np.asarray(inputs, dtype=float).reshape(len(y), -1)
    center = inputs.mean(axis=0)
    scale = inputs.std(axis=0)
    scale[scale == 0] = 1.0
    model = PolynomialModel(degree, center, scale, np.zeros(0))
    x = model.features(inputs)
    gram = x.T @ x + RIDGE * len(y) * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, x.T @ y)
    return PolynomialModel(degree, center, scale, coef)


def choose_degree(inputs: np.ndarray, y: np.ndarray, max_degree: int = 6, folds: int = 5, seed: int = 0) -> int:
    """The degree with the lowest K-fold cross-validated squared error."""
    inputs = np.asarray(inputs, dtype=float).reshape(len(y), -1)
    assignment = np.random.default_rng(seed).permutation(len(y)) % folds
    best, best_error = 1, np.inf
    for degree in range(1, max_degree + 1):
        if len(monomials(inputs.shape[1], degree)) * 10 > len(y):  # at least 10 rows per coefficient
            break
        error = 0.0
        for fold in range(folds):
            train, test = assignment != fold, assignment == fold
            model = fit_polynomial(inputs[train], y[train], degree)
            error += float(np.sum((model.predict(inputs[test]) - y[test]) ** 2))
        if error < best_error * (1 - 1e-4):
            best, best_error = degree, error
    return best
