"""Statistics of a simulator causal study: interventional truth, observational estimates, the study SCM.

The simulator gives the truth by intervention (units paired across treatment values by their seed),
so every observational estimate can be scored against it: the naive contrast (regressing the outcome on
the treatment alone) and the back-door adjusted one (the causal package's `estimation` query on the
study's SCM). The study SCM itself is fitted from the data: the treatment's mechanism from the
observational regime, the outcome's mechanism from both regimes pooled (it is the same mechanism in
both, which is what makes the pooling valid and gives it support at every treatment value).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from causal.fitting import bootstrap, fit_equation
from causal.queries import answer_query
from causal.regression import choose_degree, fit_polynomial
from causal.spec import SCM, parse_scm
from experiments.common.errors import InputError

LEVEL = 0.95


def t_interval(samples: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of `samples`."""
    x = np.asarray(samples, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def interventional_curve(values: Sequence[float], outcomes: dict[float, list[float]]) -> list[dict[str, float]]:
    """E[outcome | do(treatment = v)] with a t-interval, for each value."""
    rows = []
    for value in values:
        mean, low, high = t_interval(outcomes[value])
        rows.append({"value": float(value), "mean": mean, "ci_low": low, "ci_high": high, "n": len(outcomes[value])})
    return rows


def paired_contrast(high: dict[int, float], low: dict[int, float]) -> tuple[float, float, float, int]:
    """Interventional effect of moving the treatment from low to high, paired over units (seeds)."""
    common = sorted(set(high) & set(low))
    if len(common) < 2:
        raise InputError(f"need at least two units measured at both treatment values, got {len(common)}")
    mean, lo, hi = t_interval([high[s] - low[s] for s in common])
    return mean, lo, hi, len(common)


def _percentile_interval(statistic, n: int, rng: np.random.Generator, draws: int = 300) -> tuple[float, float]:
    values = bootstrap(statistic, n, rng, draws)
    low, high = np.percentile(values, [50 * (1 - LEVEL), 100 - 50 * (1 - LEVEL)])
    return float(low), float(high)


def naive_contrast(t: np.ndarray, y: np.ndarray, low: float, high: float, seed: int = 0) -> dict[str, Any]:
    """E[Y | T = high] - E[Y | T = low] from a regression of Y on T alone (ignores confounding)."""
    degree = choose_degree(t[:, None], y, max_degree=3)

    def contrast(index: np.ndarray) -> float:
        model = fit_polynomial(t[index, None], y[index], degree)
        return float(model.predict(np.array([[high]]))[0] - model.predict(np.array([[low]]))[0])

    estimate = contrast(np.arange(len(y)))
    ci = _percentile_interval(contrast, len(y), np.random.default_rng(seed))
    return {
        "answer": estimate,
        "ci": list(ci),
        "method": f"naive.polynomial_regression(degree={degree})",
        "adjustment_set": [],
    }


def adjusted_contrast(
    scm: SCM, data_path: Path, treatment: str, outcome: str, observed: list[str], low: float, high: float, seed: int = 0
) -> dict[str, Any]:
    """The causal package's estimation query on the study SCM and the observational data."""
    query = {
        "type": "estimation",
        "estimand": "ate",
        "treatment": treatment,
        "outcome": outcome,
        "values": [high, low],
        "observed": observed,
        "data": [{"path": str(data_path)}],
        "seed": seed,
        "n_bootstrap": 300,
    }
    return answer_query(scm, query)


def fit_study_scm(
    study_id: str,
    treatment: str,
    outcome: str,
    confounder: str | None,
    observational: dict[str, np.ndarray],
    pooled: dict[str, np.ndarray],
) -> dict[str, Any]:
    """A nonlinear additive-noise SCM over (confounder, treatment, outcome), as an SCM JSON object."""
    equations: dict[str, Any] = {}
    parents_of_outcome = {treatment: pooled[treatment]}
    if confounder is not None:
        equations[confounder] = fit_equation({}, observational[confounder])
        equations[treatment] = fit_equation({confounder: observational[confounder]}, observational[treatment])
        parents_of_outcome[confounder] = pooled[confounder]
    else:
        equations[treatment] = fit_equation({}, observational[treatment])
    equations[outcome] = fit_equation(parents_of_outcome, pooled[outcome])
    nodes = [n for n in (confounder, treatment, outcome) if n is not None]
    raw = {
        "format_version": 1,
        "id": study_id,
        "scm_type": "nonlinear_additive_noise",
        "nodes": nodes,
        "latent": [],
        "equations": equations,
    }
    parse_scm(raw)  # the fitted model must itself be a valid SCM file
    return raw


def counterfactual_errors(
    scm: SCM, units: list[dict[str, Any]], treatment: str, outcome: str, confounder: str | None, values: Sequence[float]
) -> list[dict[str, float]]:
    """For each recorded unit and value: SCM counterfactual, population prediction and simulator truth.

    `truth` is the exact (rebuilt-from-seed) replay; `restored_truth` the `restore_state` replay.
    """
    population = {
        v: answer_query(
            scm, {"type": "interventional_mean", "target": outcome, "do": {treatment: v}, "samples": 200_000}
        )["answer"]
        for v in values
    }
    rows = []
    for unit in units:
        observed = {treatment: unit["treatment"], outcome: unit["outcome"]}
        if confounder is not None:
            observed[confounder] = unit["confounder"]
        for value, truth, restored in zip(values, unit["counterfactuals"], unit["restored"], strict=True):
            predicted = answer_query(
                scm, {"type": "counterfactual", "unit": observed, "do": {treatment: value}, "target": outcome}
            )["answer"]
            rows.append(
                {
                    "seed": unit["seed"],
                    "factual_treatment": unit["treatment"],
                    "value": float(value),
                    "truth": truth,
                    "restored_truth": restored,
                    "scm_counterfactual": predicted,
                    "error": predicted - truth,
                    "population_prediction": population[value],
                    "population_error": population[value] - truth,
                }
            )
    return rows


def fact_record(
    subject: str,
    obj: str,
    effect: float,
    interval: tuple[float, float],
    n: int,
    run: str,
    relation: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One conclusion in the knowledge-store format (see causal/README.md, "Fact records")."""
    if relation is None:
        excludes_zero = interval[0] > 0 or interval[1] < 0
        relation = ("increases" if effect > 0 else "decreases") if excludes_zero else "no_detected_effect"
    return {
        "subject": subject,
        "relation": relation,
        "object": obj,
        "effect_size": float(effect),
        "interval": [float(interval[0]), float(interval[1])],
        "level": LEVEL,
        "n": int(n),
        "provenance": f"study:{run}",
        "details": details or {},
    }
