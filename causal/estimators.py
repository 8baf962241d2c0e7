"""The estimators behind `estimation`: each turns a data table into E[outcome | do(treatment = v)] per v.

Back-door: the g-formula ``E_Z[ E[Y | X = v, Z] ]`` with a regression or stratified outcome model.
Front-door: ``sum_m P(m | v) sum_x' E[Y | m, x'] P(x')`` (stratified) or its regression analogue, where
mediator values under ``v`` are the fitted mean plus the empirical residuals. Each factory returns a
closure over the design so the bootstrap can re-run it on resampled tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from causal.design import Data, Design, Estimator
from causal.errors import InputError
from causal.regression import PolynomialModel
from causal.spec import SCM

Fit = Callable[[np.ndarray, np.ndarray, int], PolynomialModel]
SUBSAMPLE = 300


def outcome_transform(scm: SCM, outcome: str, state: int | None, size: int) -> np.ndarray:
    """Value of each outcome state: an indicator of `state`, or the states' numeric values."""
    if state is not None:
        values = np.zeros(size)
        values[state] = 1.0
        return values
    try:
        return np.array([float(s) for s in scm.states(outcome)])
    except ValueError:
        raise InputError(
            f"outcome {outcome!r} has non-numeric states {list(scm.states(outcome))}; "
            f"give 'outcome_state' to estimate a probability"
        ) from None


def _strata(scm: SCM, data: Data, nodes: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """One integer per row identifying the joint state of `nodes`, and the number of possible strata."""
    sizes = [len(scm.states(n)) for n in nodes]
    if not nodes:
        return np.zeros(len(next(iter(data.values()))), dtype=int), 1
    return np.ravel_multi_index(tuple(data[n] for n in nodes), sizes), int(np.prod(sizes))


def _cell_means(strata: np.ndarray, values: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(strata[mask], minlength=size)
    sums = np.bincount(strata[mask], weights=values[mask], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts > 0


def stratified_backdoor(scm: SCM, design: Design, transform: np.ndarray) -> Estimator:
    """Discrete g-formula; strata never seen with the treatment value are dropped and weights renormalised."""

    def run(data: Data) -> np.ndarray:
        strata, size = _strata(scm, data, design.adjustment)
        weight = np.bincount(strata, minlength=size).astype(float)
        y = transform[data[design.outcome]]
        means = []
        for value in design.values:
            cell, seen = _cell_means(strata, y, data[design.treatment] == int(value), size)
            if not seen.any():
                raise InputError(f"no row has {design.treatment} = {scm.states(design.treatment)[int(value)]!r}")
            means.append(float(np.sum(cell[seen] * weight[seen]) / np.sum(weight[seen])))
        return np.array(means)

    return run


def stratified_frontdoor(scm: SCM, design: Design, transform: np.ndarray) -> Estimator:
    """Discrete front-door formula over the joint state of the mediators."""
    n_x = len(scm.states(design.treatment))

    def run(data: Data) -> np.ndarray:
        m, size = _strata(scm, data, design.adjustment)
        x, y = data[design.treatment], transform[data[design.outcome]]
        p_x = np.bincount(x, minlength=n_x) / len(x)
        inner = np.zeros(size)  # sum_x' E[Y | m, x'] P(x'), renormalised over the x' seen with m
        mass = np.zeros(size)
        for x_prime in range(n_x):
            cell, seen = _cell_means(m, y, x == x_prime, size)
            inner[seen] += cell[seen] * p_x[x_prime]
            mass[seen] += p_x[x_prime]
        with np.errstate(invalid="ignore", divide="ignore"):
            inner = np.where(mass > 0, inner / mass, 0.0)
        means = []
        for value in design.values:
            p_m = np.bincount(m[x == int(value)], minlength=size).astype(float)
            if p_m.sum() == 0:
                raise InputError(f"no row has {design.treatment} = {scm.states(design.treatment)[int(value)]!r}")
            means.append(float(p_m @ inner / p_m.sum()))
        return np.array(means)

    return run


def regression_backdoor(design: Design, degree: int, fit: Fit) -> Estimator:
    """Continuous g-formula: fit E[Y | X, Z], then average predictions with X set to each value."""

    def run(data: Data) -> np.ndarray:
        inputs = np.column_stack([data[c] for c in (design.treatment, *design.adjustment)])
        y = data[design.outcome]
        model = fit(inputs, y, degree)
        means = []
        for value in design.values:
            counterfactual = inputs.copy()
            counterfactual[:, 0] = value
            predicted = model.predict(counterfactual)
            if degree > 1:  # a flexible fit must not extrapolate beyond what any unit showed
                predicted = np.clip(predicted, y.min(), y.max())
            means.append(float(predicted.mean()))
        return np.array(means)

    return run


def outside_support(design: Design, data: Data, limit: int = 400, seed: int = 0) -> float:
    """Fraction of the g-formula's (treatment value, covariates) points that lie far from every observed unit.

    Distances are in standardised units; "far" means farther from its nearest observed unit than 99% of
    observed units are from theirs. A large fraction means poor overlap (positivity): the estimate then
    rests on extrapolation, however tight its bootstrap interval.
    """
    columns = (design.treatment, *design.adjustment)
    observed = np.column_stack([data[c] for c in columns]).astype(float)
    scale = observed.std(axis=0)
    observed = (observed - observed.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    order = np.random.default_rng(seed).permutation(len(observed))
    sample, observed = observed[order[:limit]], observed[order[: 10 * limit]]
    within = np.sort(np.linalg.norm(sample[:, None, :] - observed[None, :, :], axis=2), axis=1)[:, 1]
    threshold = float(np.quantile(within, 0.99))
    far = []
    for value in design.values:
        queries = sample.copy()
        queries[:, 0] = (value - data[design.treatment].mean()) / (scale[0] if scale[0] > 0 else 1.0)
        nearest = np.linalg.norm(queries[:, None, :] - observed[None, :, :], axis=2).min(axis=1)
        far.append(nearest > 3 * threshold)
    return float(np.mean(far))


def regression_frontdoor(design: Design, degree: int, fit: Fit) -> Estimator:
    """Continuous front-door: mediators under X=v are fitted means plus empirical residuals."""

    def run(data: Data) -> np.ndarray:
        x = data[design.treatment][:, None]
        mediators = np.column_stack([data[c] for c in design.adjustment])
        mediator_models = [fit(x, mediators[:, k], degree) for k in range(mediators.shape[1])]
        residuals = mediators - np.column_stack([mdl.predict(x) for mdl in mediator_models])
        outcome_model = fit(np.column_stack([mediators, x]), data[design.outcome], degree)
        if degree == 1:  # linear in everything: averaging inputs first is exact
            residuals, x_prime = residuals.mean(axis=0, keepdims=True), x.mean(axis=0, keepdims=True)
        else:
            residuals, x_prime = residuals[:SUBSAMPLE], x[:SUBSAMPLE]
        means = []
        for value in design.values:
            shifted = np.column_stack([mdl.predict(np.array([[value]])) for mdl in mediator_models]) + residuals
            grid = np.column_stack([np.repeat(shifted, len(x_prime), axis=0), np.tile(x_prime, (len(shifted), 1))])
            means.append(float(outcome_model.predict(grid).mean()))
        return np.array(means)

    return run
