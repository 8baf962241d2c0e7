"""Fitting an SCM's equations from data, and the one bootstrap every estimate's interval uses.

`fit_equation` fits one additive-noise mechanism (a cross-validated polynomial of its parents plus the
residual spread) and writes it as a safe SCM expression (`polynomial_expression`), so a fitted model is
itself a valid SCM file. `bootstrap` resamples rows with replacement from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from causal.regression import PolynomialModel, choose_degree, fit_polynomial, monomials


def bootstrap(statistic: Callable[[np.ndarray], Any], n: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    """The statistic on `draws` resamples of n row indices (with replacement), one row of the result per draw.

    The index draws come from `rng` in order, so a seeded generator gives the same interval every time.
    """
    return np.array([statistic(rng.integers(0, n, n)) for _ in range(draws)])


def polynomial_expression(model: PolynomialModel, names: Sequence[str]) -> str:
    """The fitted polynomial as a safe SCM expression over the (dotted) variable names."""
    standardized = [
        f"(({name} - {float(c)!r})/{float(s)!r})" for name, c, s in zip(names, model.center, model.scale, strict=True)
    ]
    terms = []
    for coef, monomial in zip(model.coef, monomials(len(names), model.degree), strict=True):
        factors = [standardized[i] for i in monomial]
        terms.append("*".join([repr(float(coef)), *factors]))
    return " + ".join(terms)


def fit_equation(inputs: dict[str, np.ndarray], y: np.ndarray, max_degree: int = 3) -> dict[str, Any]:
    """One SCM equation (parents, expression, noise_std) for y from its parents' columns.

    With no parents the mechanism is the mean plus noise; otherwise a polynomial of degree chosen by
    cross-validation up to `max_degree`, whose residual spread is the noise.
    """
    names = list(inputs)
    if not names:
        return {"parents": [], "expr": repr(float(y.mean())), "noise_std": float(y.std(ddof=1))}
    x = np.column_stack([inputs[n] for n in names])
    model = fit_polynomial(x, y, choose_degree(x, y, max_degree=max_degree))
    residual = y - model.predict(x)
    return {"parents": names, "expr": polynomial_expression(model, names), "noise_std": float(residual.std(ddof=1))}
