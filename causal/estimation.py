"""Estimate causal effects from observational data, using only the observed columns and the graph.

Identification comes first and uses only the graph: the smallest minimal back-door set among the
observed columns, else the smallest minimal front-door set, else the effect is reported as not
identifiable (never guessed). Estimation then uses the data alone: the g-formula with a regression
outcome model for continuous data (degree 1 for linear-Gaussian models, cross-validated polynomial
degree for nonlinear ones) or stratification for discrete data, and the front-door formula likewise.
Intervals are percentile bootstrap intervals (seeded, so reproducible).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from causal import estimators
from causal.data import load_data, read_table
from causal.design import Data, Design, Estimator
from causal.errors import InputError, InputTypeError
from causal.fitting import bootstrap
from causal.graph import backdoor_sets, frontdoor_sets
from causal.regression import choose_degree, fit_polynomial
from causal.spec import SCM

logger = logging.getLogger(__name__)

def resolve_path(raw: Any, base_dir: Path) -> Path:
    """A data path as given if it exists, else relative to `base_dir` (the queries file's folder)."""
    if not isinstance(raw, str) or not raw:
        raise InputError(f"a data entry needs a 'path' string, got {raw!r}")
    path = Path(raw)
    if path.is_absolute() or path.exists():
        return path
    return base_dir / path


def data_entries(query: Mapping[str, Any], base_dir: Path) -> list[tuple[Path, list[str]]]:
    """The query's ``data`` list as (path, intervention targets) pairs."""
    entries = query.get("data")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{query.get('type')} query needs 'data': a non-empty list of {{\"path\": CSV}} objects")
    result = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise InputTypeError(f"each data entry must be an object with 'path', got {entry!r}")
        targets = entry.get("targets") or []
        if not isinstance(targets, list):
            raise InputTypeError(f"'targets' of data entry {entry!r} must be a list of node names")
        result.append((resolve_path(entry.get("path"), base_dir), [str(t) for t in targets]))
    return result


def _treatment_values(scm: SCM, query: Mapping[str, Any], estimand: str, treatment: str) -> tuple[float, ...]:
    raw = query.get("values")
    if raw is None:
        keys = ("treatment_value", "control_value") if estimand == "ate" else ("treatment_value",)
        raw = [query[k] for k in keys if k in query]
    raw = raw if isinstance(raw, list) else [raw]
    if estimand == "ate" and len(raw) != 2:
        raise InputError(f"an ate estimation needs 'values': [treatment_value, control_value], got {raw!r}")
    if not raw:
        raise InputError("an interventional_mean estimation needs 'values': one treatment value or a list")
    return tuple(scm.value(treatment, v) for v in raw)


def _identify(scm: SCM, treatment: str, outcome: str, usable: list[str]) -> tuple[str, tuple[str, ...]] | None:
    for strategy, finder in (("backdoor", backdoor_sets), ("frontdoor", frontdoor_sets)):
        sets = finder(scm.graph, [treatment], [outcome], usable)
        if sets:
            return strategy, tuple(min(sets, key=lambda s: (len(s), s)))
    return None


def _usable_columns(scm: SCM, query: Mapping[str, Any], entries: list[tuple[Path, list[str]]]) -> list[str]:
    observed = query.get("observed")
    names = list(scm.observed) if observed is None else list(observed)
    for name in names:
        scm.check_node(name, "observed node")
    header = set(read_table(entries[0][0]))
    dropped = [n for n in names if n not in header]
    if dropped:
        logger.warning("observed nodes %s have no column in %s; not used", dropped, entries[0][0])
    return [n for n in names if n in header]


def _load(scm: SCM, entries: list[tuple[Path, list[str]]], columns: list[str]) -> Data:
    parts = [load_data(scm, path, columns) for path, targets in entries if not targets]
    if not parts:
        raise InputError("estimation needs at least one observational data entry (with no 'targets')")
    return {c: np.concatenate([p[c] for p in parts]) for c in columns}


def estimate(scm: SCM, query: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """Answer an ``estimation`` query: point estimate, bootstrap interval, method and adjustment set."""
    estimand = query.get("estimand", "ate")
    if estimand not in ("ate", "interventional_mean"):
        raise InputError(f"estimand must be 'ate' or 'interventional_mean', got {estimand!r}")
    treatment = scm.check_node(query.get("treatment"), "treatment node")
    outcome = scm.check_node(query.get("outcome"), "outcome node")
    entries = data_entries(query, base_dir)
    usable = _usable_columns(scm, query, entries)
    for node, role in ((treatment, "treatment"), (outcome, "outcome")):
        if node not in usable:
            raise InputError(f"the {role} {node!r} must be an observed column of the data")
    found = _identify(scm, treatment, outcome, usable)
    if found is None:
        return {"identifiable": False, "answer": None, "ci": None, "method": None, "adjustment_set": None}
    state = query.get("outcome_state")
    design = Design(
        estimand,
        treatment,
        outcome,
        _treatment_values(scm, query, estimand, treatment),
        None if state is None else scm.state_index(outcome, state),
        found[0],
        found[1],
    )
    data = _load(scm, entries, sorted({treatment, outcome, *design.adjustment}))
    return _run(scm, design, data, query)


def _run(scm: SCM, design: Design, data: Data, query: Mapping[str, Any]) -> dict[str, Any]:
    estimator, method = _estimator(scm, design, data)
    contrast = _contrast(design)
    point = contrast(estimator(data))
    confidence = float(query.get("confidence", 0.95))
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    draws = _bootstrap(estimator, contrast, data, int(query.get("n_bootstrap", 200)), int(query.get("seed", 0)))
    tail = 50 * (1 - confidence)
    lo, hi = np.percentile(draws, [tail, 100 - tail], axis=0)
    single = len(point) == 1
    return {
        "identifiable": True,
        "answer": float(point[0]) if single else point.tolist(),
        "ci": [float(lo[0]), float(hi[0])] if single else [[float(a), float(b)] for a, b in zip(lo, hi, strict=True)],
        "standard_error": float(draws[:, 0].std(ddof=1)) if single else draws.std(axis=0, ddof=1).tolist(),
        "method": method,
        "adjustment_set": list(design.adjustment),
        "n_rows": len(data[design.treatment]),
        "outside_support": _support(scm, design, data),
    }


def _support(scm: SCM, design: Design, data: Data) -> float | None:
    """Overlap diagnostic for continuous back-door estimates (None where it does not apply)."""
    if scm.is_discrete or design.strategy != "backdoor":
        return None
    return estimators.outside_support(design, data)


def _contrast(design: Design) -> Callable[[np.ndarray], np.ndarray]:
    if design.estimand == "ate":
        return lambda means: np.array([means[0] - means[1]])
    return lambda means: means


def _bootstrap(
    estimator: Estimator, contrast: Callable[[np.ndarray], np.ndarray], data: Data, n_boot: int, seed: int
) -> np.ndarray:
    if n_boot < 10:
        raise InputError(f"n_bootstrap must be at least 10, got {n_boot}")
    n = len(next(iter(data.values())))

    def statistic(index: np.ndarray) -> np.ndarray:
        return contrast(estimator({k: v[index] for k, v in data.items()}))

    return bootstrap(statistic, n, np.random.default_rng(seed), n_boot)


def _estimator(scm: SCM, design: Design, data: Data) -> tuple[Estimator, str]:
    if scm.is_discrete:
        size = len(scm.states(design.outcome))
        transform = estimators.outcome_transform(scm, design.outcome, design.outcome_state, size)
        if design.strategy == "backdoor":
            return estimators.stratified_backdoor(scm, design, transform), "backdoor.stratification"
        return estimators.stratified_frontdoor(scm, design, transform), "frontdoor.stratification"
    degree = 1
    if scm.scm_type != "linear_gaussian":
        inputs = np.column_stack([data[c] for c in (design.treatment, *design.adjustment)])
        degree = choose_degree(inputs, data[design.outcome])
    kind = "linear_regression" if degree == 1 else f"polynomial_regression(degree={degree})"
    if design.strategy == "backdoor":
        return estimators.regression_backdoor(design, degree, fit_polynomial), f"backdoor.{kind}"
    return estimators.regression_frontdoor(design, degree, fit_polynomial), f"frontdoor.{kind}"
