"""The simulator causal study: analysis on synthetic records (fast), and a small real run in the kitchen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causal.fitting import polynomial_expression
from causal.regression import fit_polynomial
from causal.spec import parse_scm
from experiments.causal_study import stats as st
from experiments.causal_study.analysis import analyse
from experiments.causal_study.config import StudyConfig
from experiments.causal_study.study import natural_draws

TREATMENT, OUTCOME, CONFOUNDER = "red_block.mass", "push_distance", "table.friction"


def _mechanism(t: float, c: float, u: float) -> float:
    return 0.15 - 0.01 * t - 0.06 * c + 0.003 * u


def _synthetic_records(config: StudyConfig) -> dict[str, list[dict]]:
    """Records with the study's shape from a known additive mechanism (what the simulator would return)."""
    rng = np.random.default_rng(0)
    draws = natural_draws(config)
    noise = rng.normal(size=len(draws))
    observational, counterfactual, interventional = [], [], []
    for i, unit in enumerate(draws):
        t, c = unit[TREATMENT], unit[CONFOUNDER]
        row = {"seed": i, "treatment": t, "confounder": c, "outcome": _mechanism(t, c, noise[i]), "fault": False}
        observational.append(row)
        if i < config.counterfactual_units:
            truths = [_mechanism(v, c, noise[i]) for v in config.values]
            counterfactual.append(
                {
                    **row,
                    "counterfactuals": truths,
                    "restored": truths,
                    "replay_difference": 0.0,
                    "restore_replay_difference": 0.0,
                }
            )
    for value in config.values:
        for i in range(config.episodes):
            c = draws[i][CONFOUNDER]
            interventional.append(
                {
                    "seed": i,
                    "treatment": value,
                    "confounder": c,
                    "outcome": _mechanism(value, c, noise[i]),
                    "fault": False,
                }
            )
    observational[-1] = {**observational[-1], "fault": True}  # faulty units must be dropped
    return {"observational": observational, "interventional": interventional, "counterfactual": counterfactual}


def test_analysis_recovers_truth_and_exposes_confounding(tmp_path: Path) -> None:
    config = StudyConfig(
        treatment=TREATMENT,
        values=(0.1, 0.4, 0.8),
        confounder=CONFOUNDER,
        episodes=40,
        observational_episodes=500,
        counterfactual_units=5,
        out=str(tmp_path / "run"),
    )
    metrics = analyse(config, _synthetic_records(config), tmp_path / "run", progress=lambda _: None)
    effect = metrics["interventional_effect"]
    assert effect["answer"] == pytest.approx(-0.007, abs=1e-9)  # paired units: the mechanism's exact contrast
    # heavier blocks sit on grippier tables, and friction shortens pushes: the naive contrast is far more negative
    truth, naive, adjusted = effect["answer"], metrics["naive"], metrics["adjusted"]
    assert naive["error"] < -0.03 and not naive["ci"][0] <= truth <= naive["ci"][1]
    assert adjusted["ci"][0] <= truth <= adjusted["ci"][1] and adjusted["adjustment_set"] == [CONFOUNDER]
    assert abs(adjusted["error"]) < abs(naive["error"]) / 5
    assert metrics["n_observational"] == 499
    cf = metrics["counterfactual"]
    assert cf["n"] == 15 and cf["mean_abs_error"] < 0.001 < cf["population_mean_abs_error"]
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "report.md",
        "facts.json",
        "metrics.json",
        "config.json",
        "study_scm.json",
        "observational.csv",
        "interventional.csv",
        "counterfactuals.csv",
        "interventional_curve.png",
        "counterfactual_errors.png",
    } <= files
    facts = json.loads((tmp_path / "run" / "facts.json").read_text())
    assert facts[0]["subject"] == TREATMENT and facts[0]["relation"] == "decreases"
    assert facts[0]["interval"][0] <= facts[0]["effect_size"] <= facts[0]["interval"][1]
    assert facts[1]["subject"] == CONFOUNDER and facts[1]["relation"] == "confounds"
    assert facts[0]["provenance"].startswith("study:")
    report = (tmp_path / "run" / "report.md").read_text()
    assert "observational, adjusted" in report and "![interventional curve]" in report
    scm = parse_scm(json.loads((tmp_path / "run" / "study_scm.json").read_text()))
    assert scm.parents(OUTCOME) == (TREATMENT, CONFOUNDER) and scm.parents(TREATMENT) == (CONFOUNDER,)


def test_polynomial_expression_is_the_fitted_model() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(200, 2))
    y = 1 + x[:, 0] ** 2 - 3 * x[:, 0] * x[:, 1] + rng.normal(scale=0.01, size=200)
    model = fit_polynomial(x, y, 2)
    expression = polynomial_expression(model, ["a.mass", "b.friction"])
    raw = {
        "scm_type": "nonlinear_additive_noise",
        "nodes": ["a.mass", "b.friction", "y"],
        "equations": {
            "a.mass": {"expr": "0", "noise_std": 1},
            "b.friction": {"expr": "0", "noise_std": 1},
            "y": {"parents": ["a.mass", "b.friction"], "expr": expression, "noise_std": 0.01},
        },
    }
    scm = parse_scm(raw)
    values = scm.equations["y"].expression.evaluate({"a.mass": x[:, 0], "b.friction": x[:, 1]})
    assert values == pytest.approx(model.predict(x), abs=1e-9)


def test_natural_draws_follow_the_confounding_strength() -> None:
    base = {"treatment": TREATMENT, "values": (0.1, 0.8), "confounder": CONFOUNDER, "observational_episodes": 400}
    strong = natural_draws(StudyConfig(**base, confounding_strength=1.0))
    t = np.array([d[TREATMENT] for d in strong])
    c = np.array([d[CONFOUNDER] for d in strong])
    assert np.all(np.diff(t[np.argsort(c)]) >= -1e-12)  # fully determined by the confounder
    assert 0.1 <= t.min() and t.max() <= 0.8 and 0.2 <= c.min() and c.max() <= 1.0
    none = natural_draws(StudyConfig(**base, confounding_strength=0.0))
    t0 = np.array([d[TREATMENT] for d in none])
    assert abs(np.corrcoef(t0, [d[CONFOUNDER] for d in none])[0, 1]) < 0.15
    assert natural_draws(StudyConfig(**base)) == natural_draws(StudyConfig(**base))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": (0.1,)}, "at least two distinct"),
        ({"outcome": "fly_distance"}, "unknown outcome"),
        ({"confounder": TREATMENT}, "must differ"),
        ({"scene": "garage"}, "unknown scene"),
        ({"confounding_strength": 2.0}, "confounding strength"),
    ],
)
def test_study_config_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StudyConfig(**{"treatment": TREATMENT, "values": (0.1, 0.8), **kwargs})


def test_fact_relations_follow_the_interval() -> None:
    assert st.fact_record("a", "b", -0.1, (-0.2, -0.05), 10, "r")["relation"] == "decreases"
    assert st.fact_record("a", "b", 0.1, (0.05, 0.2), 10, "r")["relation"] == "increases"
    assert st.fact_record("a", "b", 0.01, (-0.02, 0.04), 10, "r")["relation"] == "no_detected_effect"


def test_small_study_in_the_kitchen(tmp_path: Path) -> None:
    pytest.importorskip("pybullet")
    from experiments.causal_study.study import run_study

    config = StudyConfig(
        treatment=TREATMENT,
        values=(0.1, 0.8),
        outcome="strike_distance",
        confounder=CONFOUNDER,
        episodes=3,
        observational_episodes=6,
        counterfactual_units=1,
        out=str(tmp_path / "run"),
    )
    metrics = run_study(config)
    rows = [line.split(",") for line in (tmp_path / "run" / "interventional.csv").read_text().splitlines()[1:]]
    by_seed: dict[str, dict[float, float]] = {}
    for seed, mass, distance, _ in rows:
        by_seed.setdefault(seed, {})[float(mass)] = float(distance)
    # a fixed impulse sends the light block much farther, unit by unit (same scene and table friction)
    assert len(by_seed) == 3 and all(unit[0.1] > 5 * unit[0.8] > 0 for unit in by_seed.values())
    assert metrics["interventional_effect"]["answer"] < 0
    assert metrics["counterfactual"]["rebuild_replay_max_abs_difference"] == 0.0  # rebuilt replays are exact
    facts = json.loads((tmp_path / "run" / "facts.json").read_text())
    assert facts[0]["subject"] == TREATMENT and facts[0]["n"] == 3
    _facts_reach_the_store(tmp_path, facts)
    with pytest.raises(KeyError, match=r"unknown scene variable 'red_block\.colour'"):
        run_study(StudyConfig(treatment="red_block.colour", values=(0.1, 0.8), episodes=2, out=str(tmp_path / "x")))


def _facts_reach_the_store(tmp_path: Path, facts: list[dict]) -> None:
    """The study's conclusions become causal facts in the knowledge store, provenance included."""
    from experiments.kitchen.memory_bridge import record_study_facts
    from memory import KnowledgeStore
    from perception.text import HashingTextEncoder

    path = tmp_path / "memory.db"
    assert record_study_facts(path, facts, HashingTextEncoder()) == len(facts)
    store = KnowledgeStore(path, HashingTextEncoder())
    try:
        stored = {(c.subject, c.relation, c.object): c for c in store.causal_facts()}
    finally:
        store.close()
    first = stored[(facts[0]["subject"], facts[0]["relation"], facts[0]["object"])]
    assert first.effect == pytest.approx(facts[0]["effect_size"]) and first.n == facts[0]["n"]
    assert str(first.source) == facts[0]["provenance"]


def test_study_on_ray_reproduces_the_serial_study(tmp_path: Path) -> None:
    """Units rebuild their scene from the seed, so Ray workers return the serial run's data exactly."""
    pytest.importorskip("ray", reason="the distributed extra is not installed")
    from experiments.causal_study.study import run_study
    from experiments.common.distributed import shutdown_ray

    def config(name: str) -> StudyConfig:
        return StudyConfig(treatment=TREATMENT, values=(0.1, 0.8), outcome="strike_distance", confounder=CONFOUNDER,
                           episodes=2, observational_episodes=4, counterfactual_units=1, out=str(tmp_path / name))

    serial = run_study(config("serial"))
    try:
        parallel = run_study(config("ray"), ray=True, ray_workers=2)
    finally:
        shutdown_ray()
    for name in ("interventional.csv", "observational.csv"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "serial" / name).read_text(), name
    assert parallel["interventional_effect"] == serial["interventional_effect"]
    assert parallel["counterfactual"] == serial["counterfactual"]


def test_small_study_without_a_confounder_runs(tmp_path: Path) -> None:
    """No --confounded-by and few episodes: the fitted outcome is deterministic under do(), whose Monte Carlo
    variance (E[f²]-E[f]²) used to come out negative and stop the study with "math domain error"."""
    pytest.importorskip("pybullet")
    from experiments.causal_study.study import run_study

    config = StudyConfig(treatment=TREATMENT, values=(0.1, 0.8), outcome="strike_distance", episodes=3,
                         observational_episodes=4, counterfactual_units=1, out=str(tmp_path / "run"))
    metrics = run_study(config)
    assert metrics["interventional_effect"]["answer"] < 0 and metrics["interventional_effect"]["n_units"] == 3
    assert all(row["standard_error"] >= 0 for row in metrics["scm_curve"])
    from causal.jsonfile import read_json

    for name in ("metrics.json", "facts.json", "study_scm.json", "config.json"):  # strict JSON: no NaN/Infinity
        read_json(tmp_path / "run" / name)
    assert read_json(tmp_path / "run" / "metrics.json")["adjusted"]["adjustment_set"] == []
