"""Estimation from data and structure discovery, judged against the models' exact answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causal.data import write_csv
from causal.queries import answer_query
from causal.sampling import decode, sample
from causal.spec import SCM, load_scm, parse_scm

DATA = Path(__file__).parent / "data" / "causal"


def _write(scm: SCM, path: Path, n: int, seed: int, do: dict | None = None) -> str:
    values = sample(scm, n, np.random.default_rng(seed), do=do)
    write_csv(path, {node: decode(scm, node, values[node]) for node in scm.observed})
    return str(path)


def _truth(scm: SCM, treatment: str, outcome: str, values: list, state: str | None = None) -> float:
    query = {
        "type": "ate",
        "treatment": treatment,
        "outcome": outcome,
        "treatment_value": values[0],
        "control_value": values[1],
    }
    if state is not None:
        query["outcome_state"] = state
    return answer_query(scm, query)["answer"]


@pytest.mark.parametrize(
    ("model", "treatment", "outcome", "values", "state", "method", "adjustment"),
    [
        ("triangle_linear", "X", "Y", [1.0, 0.0], None, "backdoor.linear_regression", ["Z"]),
        ("frontdoor_linear", "X", "Y", [1.0, -1.0], None, "frontdoor.linear_regression", ["M"]),
        ("sprinkler", "sprinkler", "wet_grass", ["on", "off"], "wet", "backdoor.stratification", ["cloudy"]),
        ("smoking_frontdoor", "smoking", "cancer", ["yes", "no"], "yes", "frontdoor.stratification", ["tar"]),
    ],
)
def test_ate_estimates_cover_the_truth(
    tmp_path: Path, model, treatment, outcome, values, state, method, adjustment
) -> None:
    scm = load_scm(DATA / f"{model}.json")
    path = _write(scm, tmp_path / "obs.csv", 6000, seed=1)
    query = {
        "type": "estimation",
        "estimand": "ate",
        "treatment": treatment,
        "outcome": outcome,
        "values": values,
        "data": [{"path": path}],
        "n_bootstrap": 100,
    }
    if state:
        query["outcome_state"] = state
    answer = answer_query(scm, query)
    truth = _truth(scm, treatment, outcome, values, state)
    assert answer["method"] == method and answer["adjustment_set"] == adjustment
    lo, hi = answer["ci"]
    assert lo < answer["answer"] < hi
    assert abs(answer["answer"] - truth) < 4 * answer["standard_error"] + 1e-9, (answer, truth)


def test_naive_contrast_is_biased_but_adjustment_is_not(tmp_path: Path) -> None:
    scm = load_scm(DATA / "triangle_linear.json")
    path = _write(scm, tmp_path / "obs.csv", 6000, seed=2)
    values = np.genfromtxt(path, delimiter=",", names=True)
    naive_slope = np.polyfit(values["X"], values["Y"], 1)[0]
    assert naive_slope == pytest.approx(3.5, abs=0.15)  # 2 + 3 * Cov(Z, X) / Var X
    answer = answer_query(
        scm,
        {
            "type": "estimation",
            "estimand": "ate",
            "treatment": "X",
            "outcome": "Y",
            "values": [1, 0],
            "data": [{"path": path}],
            "n_bootstrap": 50,
        },
    )
    assert answer["answer"] == pytest.approx(2.0, abs=0.1)


def test_interventional_means_for_several_values(tmp_path: Path) -> None:
    scm = load_scm(DATA / "frontdoor_linear.json")
    path = _write(scm, tmp_path / "obs.csv", 6000, seed=3)
    answer = answer_query(
        scm,
        {
            "type": "estimation",
            "estimand": "interventional_mean",
            "treatment": "X",
            "outcome": "Y",
            "values": [2.0, 0.0],
            "data": [{"path": path}],
            "n_bootstrap": 60,
        },
    )
    assert answer["answer"] == pytest.approx([3.6, 0.4], abs=0.3)  # E[Y | do(X=x)] = 2 * (0.2 + 0.8x)
    assert len(answer["ci"]) == 2 and all(lo < hi for lo, hi in answer["ci"])


def test_nonlinear_estimation_uses_a_flexible_outcome_model(tmp_path: Path) -> None:
    scm = load_scm(DATA / "push_nonlinear.json")
    path = _write(scm, tmp_path / "obs.csv", 8000, seed=4)
    answer = answer_query(
        scm,
        {
            "type": "estimation",
            "estimand": "ate",
            "treatment": "mass",
            "outcome": "push_distance",
            "values": [0.5, 0.3],
            "data": [{"path": path}],
            "n_bootstrap": 50,
        },
    )
    truth = _truth(scm, "mass", "push_distance", [0.5, 0.3])
    assert answer["method"].startswith("backdoor.")
    assert answer["answer"] == pytest.approx(truth, rel=0.1)


def test_unidentifiable_effects_are_reported_not_guessed(tmp_path: Path) -> None:
    raw = json.loads((DATA / "frontdoor_linear.json").read_text())
    raw["equations"]["M"]["parents"].append("U")  # the mediator is now confounded too
    raw["equations"]["M"]["coefficients"]["U"] = 0.5
    scm = parse_scm(raw)
    path = _write(scm, tmp_path / "obs.csv", 500, seed=0)
    answer = answer_query(
        scm, {"type": "estimation", "treatment": "X", "outcome": "Y", "values": [1, 0], "data": [{"path": path}]}
    )
    assert answer["identifiable"] is False and answer["answer"] is None
    triangle = load_scm(DATA / "triangle_linear.json")
    path = _write(triangle, tmp_path / "t.csv", 500, seed=0)
    answer = answer_query(
        triangle,
        {
            "type": "estimation",
            "treatment": "X",
            "outcome": "Y",
            "values": [1, 0],
            "observed": ["X", "Y"],
            "data": [{"path": path}],
        },
    )
    assert answer["identifiable"] is False


def test_estimation_input_errors(tmp_path: Path) -> None:
    scm = load_scm(DATA / "sprinkler.json")
    path = _write(scm, tmp_path / "obs.csv", 300, seed=0)
    base = {"type": "estimation", "treatment": "sprinkler", "outcome": "wet_grass", "data": [{"path": path}]}
    with pytest.raises(ValueError, match="non-numeric states"):
        answer_query(scm, {**base, "values": ["on", "off"]})
    with pytest.raises(ValueError, match=r"values.*\[treatment_value, control_value\]"):
        answer_query(scm, {**base, "values": ["on"], "outcome_state": "wet"})
    with pytest.raises(ValueError, match="needs 'data'"):
        answer_query(scm, {**base, "data": [], "values": ["on", "off"], "outcome_state": "wet"})
    with pytest.raises(FileNotFoundError, match="data file not found"):
        answer_query(scm, {**base, "data": [{"path": "nowhere.csv"}], "values": ["on", "off"], "outcome_state": "wet"})
    # relative paths resolve against the queries file's folder
    answer = answer_query(
        scm,
        {**base, "data": [{"path": "obs.csv"}], "values": ["on", "off"], "outcome_state": "wet", "n_bootstrap": 20},
        base_dir=tmp_path,
    )
    assert answer["identifiable"] is True


def _discover(scm: SCM, entries: list[tuple[str, list[str]]], **extra) -> dict:
    query = {"type": "discovery", "data": [{"path": p, "targets": t} for p, t in entries], **extra}
    return answer_query(scm, query)


def test_discovery_recovers_a_v_structure(tmp_path: Path) -> None:
    scm = load_scm(DATA / "collider_linear.json")
    answer = _discover(scm, [(_write(scm, tmp_path / "obs.csv", 3000, 0), [])])
    assert answer["directed"] == [["A", "C"], ["B", "C"], ["C", "D"]] and answer["undirected"] == []


def test_interventions_orient_what_observation_cannot(tmp_path: Path) -> None:
    scm = load_scm(DATA / "chain_linear.json")
    obs = _write(scm, tmp_path / "obs.csv", 3000, 0)
    assert _discover(scm, [(obs, [])])["undirected"] == [["M", "Y"], ["X", "M"]]
    hard = _write(scm, tmp_path / "do_m.csv", 1000, 1, do={"M": 3.0})
    answer = _discover(scm, [(obs, []), (hard, ["M"])])
    assert answer["directed"] == [["M", "Y"], ["X", "M"]] and answer["undirected"] == []
    # a randomised (soft) intervention on X: X still varies, so dependence decides; Meek's rule 1 does the rest
    raw = json.loads((DATA / "chain_linear.json").read_text())
    raw["equations"]["X"]["noise_std"] = 3.0
    soft = _write(parse_scm(raw), tmp_path / "rand_x.csv", 1000, 2)
    answer = _discover(scm, [(obs, []), (soft, ["X"])])
    assert answer["directed"] == [["M", "Y"], ["X", "M"]]


def test_discrete_discovery_with_an_intervention(tmp_path: Path) -> None:
    scm = load_scm(DATA / "sprinkler.json")
    obs = _write(scm, tmp_path / "obs.csv", 5000, 0)
    answer = _discover(scm, [(obs, [])])
    assert answer["directed"] == [["rain", "wet_grass"], ["sprinkler", "wet_grass"]]
    assert answer["undirected"] == [["cloudy", "rain"], ["cloudy", "sprinkler"]]
    treated = _write(scm, tmp_path / "do_s.csv", 2000, 1, do={"sprinkler": "on"})
    answer = _discover(scm, [(obs, []), (treated, ["sprinkler"])])
    assert ["cloudy", "sprinkler"] in answer["directed"] and answer["undirected"] == [["cloudy", "rain"]]


def test_discovery_input_errors(tmp_path: Path) -> None:
    scm = load_scm(DATA / "chain_linear.json")
    path = _write(scm, tmp_path / "obs.csv", 100, 0)
    with pytest.raises(ValueError, match="observational data entry"):
        _discover(scm, [(path, ["X"])])
    with pytest.raises(KeyError, match=r"intervention targets \['Q'\]"):
        _discover(scm, [(path, []), (path, ["Q"])])
    with pytest.raises(ValueError, match="alpha must be in"):
        _discover(scm, [(path, [])], alpha=2)


def test_nonlinear_discovery_finds_a_u_shaped_dependence(tmp_path: Path) -> None:
    scm = load_scm(DATA / "ushape_nonlinear.json")  # Y = X**2 + ...: uncorrelated with X, yet caused by it
    obs = _write(scm, tmp_path / "obs.csv", 2000, 0)
    answer = _discover(scm, [(obs, [])])
    assert answer["directed"] == [["W", "Y"], ["X", "Y"], ["Y", "Z"]] and answer["undirected"] == []
    values = np.genfromtxt(obs, delimiter=",", names=True)
    assert abs(np.corrcoef(values["X"], values["Y"])[0, 1]) < 0.1  # a linear test would drop X - Y


def test_overlap_diagnostic_flags_extrapolation() -> None:
    from causal.estimation import Design
    from causal.estimators import outside_support

    rng = np.random.default_rng(0)
    z = rng.uniform(0, 1, 500)
    design = Design("ate", "T", "Y", (0.9, 0.1), None, "backdoor", ("Z",))
    tied = {"T": z + rng.normal(scale=0.02, size=500), "Z": z, "Y": z}
    free = {"T": rng.uniform(0, 1, 500), "Z": z, "Y": z}
    assert outside_support(design, tied) > 0.5 > 0.05 > outside_support(design, free)
