"""Answer query objects (the QUERIES file of ``embodia causal query``) against one SCM.

Each query type has one small handler; this module only validates fields and picks the engine:
exact Gaussian algebra for linear-Gaussian models, exact enumeration for discrete ones, and seeded
Monte Carlo (with its standard error) for nonlinear ones. Every answer is a JSON-ready dict with at
least ``type``, ``answer`` and ``method``; a query's ``id`` field, if any, is echoed back.

Example:
    >>> from causal.spec import parse_scm
    >>> scm = parse_scm({"scm_type": "linear_gaussian", "nodes": ["X", "Y"], "equations": {
    ...     "X": {"noise_std": 1}, "Y": {"parents": ["X"], "coefficients": {"X": 2}, "noise_std": 1}}})
    >>> answer_query(scm, {"type": "interventional_mean", "target": "Y", "do": {"X": 1.5}})["answer"]
    3.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from causal import discrete, linear, montecarlo
from causal.errors import InputError, InputTypeError
from causal.graph import backdoor_sets, frontdoor_sets
from causal.jsonfile import finite_or_null
from causal.spec import SCM

Handler = Callable[[SCM, Mapping[str, Any], Path], dict[str, Any]]


def _require(query: Mapping[str, Any], field: str) -> Any:
    if field not in query:
        raise InputError(f"{query.get('type')} query is missing field {field!r} (query: {dict(query)})")
    return query[field]


def node_field(scm: SCM, query: Mapping[str, Any], field: str) -> str:
    """A required field naming one node of the model."""
    return scm.check_node(_require(query, field), f"{field} node")


def nodes_field(scm: SCM, query: Mapping[str, Any], field: str) -> list[str]:
    """A field naming one node or a list of nodes."""
    raw = _require(query, field)
    names = raw if isinstance(raw, list) else [raw]
    return [scm.check_node(name, f"{field} node") for name in names]


def assignment(scm: SCM, query: Mapping[str, Any], field: str, required: bool = False) -> dict[str, float]:
    """A ``{node: value}`` field as model values (floats, or state indices for discrete models)."""
    raw = _require(query, field) if required else query.get(field) or {}
    if not isinstance(raw, Mapping):
        raise InputTypeError(f"field {field!r} must be an object mapping node names to values, got {raw!r}")
    return {scm.check_node(node, f"node in {field!r}"): scm.value(node, value) for node, value in raw.items()}


def interventions(scm: SCM, query: Mapping[str, Any]) -> dict[str, Any]:
    """The required ``do`` field, validated, in the form `SCM.do` takes (state names or floats)."""
    coded = assignment(scm, query, "do", required=True)
    if scm.is_discrete:
        return {node: scm.states(node)[int(code)] for node, code in coded.items()}
    return coded


def _codes(values: Mapping[str, float]) -> dict[str, int]:
    return {node: int(value) for node, value in values.items()}


def _options(query: Mapping[str, Any]) -> dict[str, int | None]:
    samples = query.get("samples")
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise InputError(f"'samples' must be a positive integer, got {samples!r}")
    seed = query.get("seed", 0)
    if not isinstance(seed, int):
        raise InputError(f"'seed' must be an integer, got {seed!r}")
    return {"n": samples, "seed": seed}


def numeric_states(scm: SCM, node: str) -> np.ndarray:
    """Numeric values of a discrete node's states, so that its mean is defined."""
    try:
        return np.array([float(s) for s in scm.states(node)])
    except ValueError:
        raise InputError(
            f"node {node!r} has non-numeric states {list(scm.states(node))}; ask for a probability "
            f"(target_state / outcome_state) instead of a mean"
        ) from None


def _mean(
    scm: SCM, target: str, do: Mapping[str, Any], given: Mapping[str, float], query: Mapping[str, Any]
) -> dict[str, Any]:
    world = scm.do(do) if do else scm
    if scm.scm_type == "linear_gaussian":
        return {"answer": linear.conditional_mean(linear.gaussian_form(world), target, given), "method": "exact"}
    if scm.is_discrete:
        probabilities = discrete.distribution(world, target, _codes(given))
        return {"answer": float(probabilities @ numeric_states(scm, target)), "method": "exact"}
    result = montecarlo.conditional_mean(world, target, given, **_options(query))
    return _mc(result)


def _mc(result: montecarlo.Estimate) -> dict[str, Any]:
    return {
        "answer": result.value,
        "method": "monte_carlo",
        "standard_error": result.standard_error,
        "n_samples": result.n_samples,
    }


def _interventional_mean(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    do = interventions(scm, query)
    return _mean(scm, node_field(scm, query, "target"), do, assignment(scm, query, "given"), query)


def _observational_mean(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    return _mean(scm, node_field(scm, query, "target"), {}, assignment(scm, query, "given"), query)


def _require_discrete(scm: SCM, query: Mapping[str, Any]) -> None:
    if not scm.is_discrete:
        raise InputError(
            f"{query.get('type')} queries need a discrete model; {scm.id!r} is {scm.scm_type} (ask for a mean instead)"
        )


def _probability(scm: SCM, query: Mapping[str, Any], do: Mapping[str, Any]) -> dict[str, Any]:
    _require_discrete(scm, query)
    target = node_field(scm, query, "target")
    state = scm.state_index(target, _require(query, "target_state"))
    world = scm.do(do) if do else scm
    probabilities = discrete.distribution(world, target, _codes(assignment(scm, query, "given")))
    return {"answer": float(probabilities[state]), "method": "exact"}


def _interventional_probability(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    return _probability(scm, query, interventions(scm, query))


def _observational_probability(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    return _probability(scm, query, {})


def _ate(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    treatment, outcome = node_field(scm, query, "treatment"), node_field(scm, query, "outcome")
    worlds = [scm.do({treatment: _require(query, name)}) for name in ("treatment_value", "control_value")]
    if scm.scm_type == "linear_gaussian":
        means = [linear.conditional_mean(linear.gaussian_form(w), outcome, {}) for w in worlds]
        return {"answer": means[0] - means[1], "method": "exact"}
    if scm.is_discrete:
        if query.get("outcome_state") is not None:
            values = np.zeros(len(scm.states(outcome)))
            values[scm.state_index(outcome, query["outcome_state"])] = 1.0
        else:
            values = numeric_states(scm, outcome)
        means = [float(discrete.distribution(w, outcome) @ values) for w in worlds]
        return {"answer": means[0] - means[1], "method": "exact"}
    options = _options(query)
    means, cov = montecarlo.world_means(
        worlds, outcome, options["n"] or montecarlo.DEFAULT_SAMPLES, options["seed"] or 0
    )
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    n = options["n"] or montecarlo.DEFAULT_SAMPLES
    return _mc(montecarlo.Estimate(float(means[0] - means[1]), se, n))


def _observed(scm: SCM, query: Mapping[str, Any]) -> list[str]:
    if query.get("observed") is None:
        return list(scm.observed)
    return nodes_field(scm, query, "observed")


def _adjustment(finder: Callable[..., list[list[str]]]) -> Handler:
    def handler(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
        treatment, outcome = nodes_field(scm, query, "treatment"), nodes_field(scm, query, "outcome")
        sets = finder(scm.graph, treatment, outcome, _observed(scm, query))
        return {"identifiable": bool(sets), "sets": sets, "method": "exact"}

    return handler


def _counterfactual(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    unit, do = assignment(scm, query, "unit", required=True), assignment(scm, query, "do", required=True)
    target = node_field(scm, query, "target")
    if scm.scm_type == "linear_gaussian":
        return {"answer": linear.counterfactual_mean(scm, unit, do, target), "method": "exact"}
    if scm.is_discrete:
        probabilities = discrete.counterfactual_distribution(scm, _codes(unit), _codes(do), target)
        states = scm.states(target)
        return {
            "answer": states[int(np.argmax(probabilities))],
            "method": "exact",
            "distribution": {s: float(p) for s, p in zip(states, probabilities, strict=True)},
        }
    return _mc(montecarlo.counterfactual_mean(scm, unit, do, target, **_options(query)))


def _counterfactual_probability(scm: SCM, query: Mapping[str, Any], _: Path) -> dict[str, Any]:
    _require_discrete(scm, query)
    evidence = _codes(assignment(scm, query, "evidence"))
    do = _codes(assignment(scm, query, "do", required=True))
    target = node_field(scm, query, "target")
    state = scm.state_index(target, _require(query, "target_state"))
    probabilities = discrete.counterfactual_distribution(scm, evidence, do, target)
    return {"answer": float(probabilities[state]), "method": "exact"}


def _estimation(scm: SCM, query: Mapping[str, Any], base: Path) -> dict[str, Any]:
    from causal.estimation import estimate  # data-driven queries load their statistics on first use

    return estimate(scm, query, base)


def _discovery(scm: SCM, query: Mapping[str, Any], base: Path) -> dict[str, Any]:
    from causal.discovery import discover  # scipy's tests: loaded only when a discovery query comes

    return discover(scm, query, base)


HANDLERS: dict[str, Handler] = {
    "interventional_mean": _interventional_mean,
    "observational_mean": _observational_mean,
    "interventional_probability": _interventional_probability,
    "observational_probability": _observational_probability,
    "ate": _ate,
    "backdoor_sets": _adjustment(backdoor_sets),
    "frontdoor_sets": _adjustment(frontdoor_sets),
    "counterfactual": _counterfactual,
    "counterfactual_probability": _counterfactual_probability,
    "estimation": _estimation,
    "discovery": _discovery,
}


def _check_answer(value: Any, query: Mapping[str, Any]) -> None:
    """The answer itself must be a finite number (or not a number at all): inf/nan is an error, not a result."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_answer(item, query)
        return
    if isinstance(value, float) and not np.isfinite(value):
        label = f"query {query['id']!r}" if "id" in query else f"{query.get('type')} query"
        raise InputError(f"{label}: the answer is {value} (not finite); an equation overflows, divides by zero "
                         f"or takes the log/sqrt of a negative number")


def answer_query(scm: SCM, query: Mapping[str, Any], base_dir: str | Path = ".") -> dict[str, Any]:
    """Answer one query object; relative data paths are resolved against `base_dir` as a fallback.

    A non-finite answer raises ValueError; a non-finite secondary number (standard error, interval
    bound) is returned as None, so the answer always serialises as strict JSON.
    """
    if not isinstance(query, Mapping):
        raise InputTypeError(f"a query must be a JSON object, got {query!r}")
    kind = query.get("type")
    if kind not in HANDLERS:
        raise InputError(f"unknown query type {kind!r}; expected one of {sorted(HANDLERS)}")
    answer = {"type": kind, **HANDLERS[kind](scm, query, Path(base_dir))}
    _check_answer(answer["answer"] if "answer" in answer else None, query)
    answer = finite_or_null(answer)
    if "id" in query:
        answer = {"id": query["id"], **answer}
    return answer


def answer_queries(scm: SCM, queries: Any, base_dir: str | Path = ".") -> dict[str, Any] | list[dict[str, Any]]:
    """One answer for one query object, or a list of answers in the order of a list of queries."""
    if isinstance(queries, list):
        return [answer_query(scm, query, base_dir) for query in queries]
    return answer_query(scm, queries, base_dir)
