"""Exact answers: hand-derived values, and independent re-computations of the same quantities.

Linear-Gaussian answers are derived by hand from the structural equations; discrete ones by summing
the factorisation; counterfactual probabilities are re-computed by brute-force enumeration of the
exogenous U cells (independent of the twin-network code); Monte Carlo answers for nonlinear models are
checked against exact answers of the same model written in linear form.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from causal.discrete import counterfactual_distribution, distribution
from causal.linear import conditional_variance, gaussian_form
from causal.queries import answer_queries, answer_query
from causal.sampling import draw_noise, propagate, sample
from causal.spec import load_scm, parse_scm

DATA = Path(__file__).parent / "data" / "causal"


def ask(model: str, **query) -> dict:
    return answer_query(load_scm(DATA / f"{model}.json"), query)


class TestLinearChain:
    """X = 1 + e_X (sd 1); M = 0.5 + 2X + e_M (sd 0.5); Y = 3 - 1.5M + e_Y (sd 2)."""

    def test_interventional_and_observational_means(self) -> None:
        assert ask("chain_linear", type="interventional_mean", target="Y", do={"X": 2})["answer"] == pytest.approx(
            -3.75
        )
        # E[Y] = 3 - 1.5 * (0.5 + 2 * 1)
        assert ask("chain_linear", type="observational_mean", target="Y")["answer"] == pytest.approx(-0.75)
        # Observing M screens off X: E[Y | M=1, X=5] = 3 - 1.5
        answer = ask("chain_linear", type="observational_mean", target="Y", given={"M": 1, "X": 5})["answer"]
        assert answer == pytest.approx(1.5)

    def test_conditioning_backwards_uses_the_gaussian_formula(self) -> None:
        # Var X = 1, Cov(X, M) = 2, Var M = 4 + 0.25: E[X | M=m] = 1 + 2/4.25 * (m - 2.5)
        answer = ask("chain_linear", type="observational_mean", target="X", given={"M": 4.0})["answer"]
        assert answer == pytest.approx(1 + 2 / 4.25 * 1.5)
        form = gaussian_form(load_scm(DATA / "chain_linear.json"))
        assert conditional_variance(form, "X", {"M": 4.0}) == pytest.approx(1 - 4 / 4.25)

    def test_intervening_downstream_does_not_move_upstream(self) -> None:
        assert ask("chain_linear", type="interventional_mean", target="X", do={"M": 10})["answer"] == pytest.approx(1.0)

    def test_ate_is_the_product_of_path_coefficients(self) -> None:
        answer = ask("chain_linear", type="ate", treatment="X", outcome="Y", treatment_value=3, control_value=1)
        assert answer["answer"] == pytest.approx(2 * -1.5 * 2) and answer["method"] == "exact"

    def test_counterfactual_by_abduction_action_prediction(self) -> None:
        # u_M = 1 - 2.5 = -1.5, u_Y = 1 - (3 - 1.5) = -0.5; under do(X=2): M = 4.5 - 1.5 = 3, Y = 3 - 4.5 - 0.5
        answer = ask("chain_linear", type="counterfactual", unit={"X": 1, "M": 1, "Y": 1}, do={"X": 2}, target="Y")
        assert answer["answer"] == pytest.approx(-2.0)


class TestConfoundedTriangle:
    """Z ~ N(0,1); X = Z + e; Y = 1 + 2X + 3Z + e."""

    def test_do_differs_from_seeing(self) -> None:
        assert ask("triangle_linear", type="interventional_mean", target="Y", do={"X": 2})["answer"] == pytest.approx(5)
        # E[Z | X=2] = 1, so E[Y | X=2] = 1 + 4 + 3
        assert ask("triangle_linear", type="observational_mean", target="Y", given={"X": 2})["answer"] == pytest.approx(
            8
        )

    def test_given_in_the_post_intervention_world(self) -> None:
        # After do(X=2), Y = 5 + 3Z + e_Y, so Var Y = 10 and E[Z | Y=11] = 3/10 * 6
        answer = ask("triangle_linear", type="interventional_mean", target="Z", do={"X": 2}, given={"Y": 11})
        assert answer["answer"] == pytest.approx(1.8)

    def test_backdoor_set_and_counterfactual(self) -> None:
        assert ask("triangle_linear", type="backdoor_sets", treatment="X", outcome="Y")["sets"] == [["Z"]]
        answer = ask("triangle_linear", type="counterfactual", unit={"Z": 1, "X": 1, "Y": 1}, do={"X": 2}, target="Y")
        assert answer["answer"] == pytest.approx(3.0)  # u_Y = 1 - 6 = -5; 1 + 4 + 3 - 5

    def test_counterfactual_with_an_unobserved_parent_uses_the_noise_posterior(self) -> None:
        # Z unobserved: from X=1 alone E[Z | X=1] = 0.5; Y=1 then pins u_Y given Z; the answer is linear in Z:
        # Y_cf = Y + 2 * (2 - 1) regardless of Z, because Z's contribution is shared by both worlds.
        answer = ask("triangle_linear", type="counterfactual", unit={"X": 1, "Y": 1}, do={"X": 2}, target="Y")
        assert answer["answer"] == pytest.approx(3.0)
        answer = ask("triangle_linear", type="counterfactual", unit={"X": 1}, do={"X": 2}, target="Y")
        # E[Z | X=1] = 0.5, E[u_Y | X] = 0: 1 + 4 + 1.5
        assert answer["answer"] == pytest.approx(6.5)


class TestSprinkler:
    def test_observational_probability_by_hand(self) -> None:
        # P(wet) = sum_c P(c) sum_{s,r} P(s|c) P(r|c) P(wet|s,r)
        p_wet = 0.5 * (0.5 * 0.8 * 0 + 0.5 * 0.2 * 0.9 + 0.5 * 0.8 * 0.9 + 0.5 * 0.2 * 0.99) + 0.5 * (
            0.9 * 0.2 * 0 + 0.9 * 0.8 * 0.9 + 0.1 * 0.2 * 0.9 + 0.1 * 0.8 * 0.99
        )
        p_rain_and_wet = 0.5 * (0.5 * 0.2 * 0.9 + 0.5 * 0.2 * 0.99) + 0.5 * (0.9 * 0.8 * 0.9 + 0.1 * 0.8 * 0.99)
        answer = ask(
            "sprinkler", type="observational_probability", target="rain", target_state="yes", given={"wet_grass": "wet"}
        )
        assert answer["answer"] == pytest.approx(p_rain_and_wet / p_wet)

    def test_interventions(self) -> None:
        # do(sprinkler=on): P(wet) = P(rain) * 0.99 + P(no rain) * 0.9, P(rain) = 0.5
        answer = ask(
            "sprinkler",
            type="interventional_probability",
            target="wet_grass",
            target_state="wet",
            do={"sprinkler": "on"},
        )
        assert answer["answer"] == pytest.approx(0.945)
        # wetting the grass by hand says nothing about rain
        answer = ask(
            "sprinkler", type="interventional_probability", target="rain", target_state="yes", do={"wet_grass": "wet"}
        )
        assert answer["answer"] == pytest.approx(0.5)
        answer = ask(
            "sprinkler",
            type="ate",
            treatment="sprinkler",
            outcome="wet_grass",
            treatment_value="on",
            control_value="off",
            outcome_state="wet",
        )
        assert answer["answer"] == pytest.approx(0.945 - 0.45)

    def test_counterfactual_probability_by_hand(self) -> None:
        # Evidence sprinkler=on, wet. Joint weights: (c, r) -> P(c) P(on|c) P(r|c) P(wet|on, r)
        w = {
            ("no", "yes"): 0.25 * 0.2 * 0.99,
            ("no", "no"): 0.25 * 0.8 * 0.9,
            ("yes", "yes"): 0.05 * 0.8 * 0.99,
            ("yes", "no"): 0.05 * 0.2 * 0.9,
        }
        p_rain = (w["no", "yes"] + w["yes", "yes"]) / sum(w.values())
        # With rain, wet means U_W >= 0.01; with the sprinkler off, wet needs U_W >= 0.1. Without rain: never wet.
        expected = p_rain * 0.9 / 0.99
        answer = ask(
            "sprinkler",
            type="counterfactual_probability",
            evidence={"sprinkler": "on", "wet_grass": "wet"},
            do={"sprinkler": "off"},
            target="wet_grass",
            target_state="wet",
        )
        assert answer["answer"] == pytest.approx(expected)

    def test_counterfactual_of_a_unit(self) -> None:
        unit = {"cloudy": "yes", "sprinkler": "on", "rain": "no", "wet_grass": "wet"}
        answer = ask("sprinkler", type="counterfactual", unit=unit, do={"sprinkler": "off"}, target="wet_grass")
        assert answer["answer"] == "dry" and answer["distribution"] == {"dry": 1.0, "wet": 0.0}
        unit["rain"] = "yes"  # wet with rain and sprinkler: U_W in [0.01, 1); off needs U_W >= 0.1
        answer = ask("sprinkler", type="counterfactual", unit=unit, do={"sprinkler": "off"}, target="wet_grass")
        assert answer["distribution"]["wet"] == pytest.approx(0.9 / 0.99)


def _random_discrete(rng: np.random.Generator, n_nodes: int) -> dict:
    nodes = [f"V{i}" for i in range(n_nodes)]
    equations = {}
    for i, node in enumerate(nodes):
        parents = [p for p in nodes[:i] if rng.random() < 0.6][:2]
        states = [f"s{k}" for k in range(int(rng.integers(2, 4)))]
        cpt = []
        for combo in itertools.product(*(equations[p]["states"] for p in parents)):
            cpt.append(
                {"given": dict(zip(parents, combo, strict=True)), "p": rng.dirichlet(np.ones(len(states))).tolist()}
            )
        equations[node] = {"parents": parents, "states": states, "cpt": cpt}
    return {"format_version": 1, "id": "random", "scm_type": "discrete", "nodes": nodes, "equations": equations}


def _brute_force_counterfactual(scm, evidence: dict, do: dict, target: str) -> np.ndarray | None:
    """Enumerate every cell of the exogenous U space (cells bounded by all CDF breakpoints of each node)."""
    mids, widths = [], []
    for node in scm.order:
        table = scm.equations[node].table.reshape(-1, len(scm.states(node)))
        points = np.unique(np.concatenate([[0.0, 1.0], np.cumsum(table, axis=1)[:, :-1].ravel()]))
        points = points[np.concatenate([[True], np.diff(points) > 1e-12])]
        mids.append((points[:-1] + points[1:]) / 2)
        widths.append(np.diff(points))
    grid = [g.ravel() for g in np.meshgrid(*mids, indexing="ij")]
    weight = np.prod([g.ravel() for g in np.meshgrid(*widths, indexing="ij")], axis=0)
    noise = dict(zip(scm.order, grid, strict=True))
    factual = propagate(scm, noise)
    counterfactual = propagate(scm.do({n: scm.states(n)[v] for n, v in do.items()}), noise)
    keep = np.all([factual[n] == v for n, v in evidence.items()], axis=0)
    if weight[keep].sum() == 0:
        return None
    mass = np.bincount(counterfactual[target][keep], weights=weight[keep], minlength=len(scm.states(target)))
    return mass / mass.sum()


def test_twin_network_matches_brute_force_enumeration_on_random_models() -> None:
    rng = np.random.default_rng(7)
    checked = nontrivial = 0
    for _ in range(25):
        scm = parse_scm(_random_discrete(rng, 5))
        target, treated = scm.order[-1], scm.order[int(rng.integers(0, 3))]
        do = {treated: int(rng.integers(0, len(scm.states(treated))))}
        evidence = {
            treated: int(rng.integers(0, len(scm.states(treated)))),
            target: int(rng.integers(0, len(scm.states(target)))),
        }
        expected = _brute_force_counterfactual(scm, evidence, do, target)
        if expected is None:
            continue
        assert counterfactual_distribution(scm, evidence, do, target) == pytest.approx(expected, abs=1e-9)
        checked += 1
        changed = target in nx.descendants(scm.graph, treated) and do[treated] != evidence[treated]
        nontrivial += int(changed)
    assert checked >= 20 and nontrivial >= 5  # counterfactuals that really differ from the facts


def test_discrete_engine_matches_sampling_frequencies() -> None:
    scm = parse_scm(_random_discrete(np.random.default_rng(3), 5))
    draws = sample(scm, 200_000, np.random.default_rng(0))
    target, given = scm.order[-1], {scm.order[1]: 0}
    mask = draws[scm.order[1]] == 0
    empirical = np.bincount(draws[target][mask], minlength=len(scm.states(target))) / mask.sum()
    assert distribution(scm, target, given) == pytest.approx(empirical, abs=0.01)


def test_impossible_evidence_is_reported() -> None:
    with pytest.raises(ValueError, match="probability zero"):
        ask(
            "sprinkler",
            type="observational_probability",
            target="rain",
            target_state="yes",
            given={"sprinkler": "off", "rain": "no", "wet_grass": "wet"},
        )


def _as_nonlinear(raw: dict) -> dict:
    nonlinear = {**raw, "scm_type": "nonlinear_additive_noise", "equations": {}}
    for node, eq in raw["equations"].items():
        terms = [repr(float(eq.get("intercept", 0.0)))] + [f"{c!r}*{p}" for p, c in eq["coefficients"].items()]
        nonlinear["equations"][node] = {
            "parents": eq["parents"],
            "expr": " + ".join(terms),
            "noise_std": eq["noise_std"],
        }
    return nonlinear


@pytest.mark.parametrize(
    "query",
    [
        {"type": "interventional_mean", "target": "Y", "do": {"X": 2}},
        {"type": "observational_mean", "target": "Y", "given": {"X": 2}},
        {"type": "interventional_mean", "target": "Z", "do": {"X": 2}, "given": {"Y": 11}},
        {"type": "ate", "treatment": "X", "outcome": "Y", "treatment_value": 1.5, "control_value": -0.5},
        {"type": "counterfactual", "unit": {"Z": 1, "X": 1, "Y": 1}, "do": {"X": 2}, "target": "Y"},
        {"type": "counterfactual", "unit": {"X": 1}, "do": {"X": 2}, "target": "Y"},
    ],
)
def test_monte_carlo_agrees_with_the_exact_gaussian_answer(query: dict) -> None:
    raw = json.loads((DATA / "triangle_linear.json").read_text())
    exact = answer_query(parse_scm(raw), query)["answer"]
    mc = answer_query(parse_scm(_as_nonlinear(raw)), {**query, "samples": 200_000, "seed": 1})
    assert mc["method"] == "monte_carlo"
    assert abs(mc["answer"] - exact) <= 4 * mc["standard_error"] + 1e-9


def test_nonlinear_counterfactual_of_a_fully_observed_unit_is_exact() -> None:
    unit = {"mass": 0.4, "friction": 0.5, "speed": 0.8, "push_distance": 0.3}
    u_push = 0.3 - (0.5 * 0.8**2 - 0.15 + 0.2 * np.sin(1.2))
    expected = 0.5 * 0.6**2 - 0.15 + 0.2 * np.sin(2.4) + u_push  # speed drops by 0.5 * 0.4, u_speed = 0
    answer = ask("push_nonlinear", type="counterfactual", unit=unit, do={"mass": 0.8}, target="push_distance")
    assert answer["answer"] == pytest.approx(expected) and answer["standard_error"] == 0


def test_monte_carlo_is_reproducible_from_its_seed() -> None:
    query = {"type": "interventional_mean", "target": "push_distance", "do": {"mass": 0.8}, "samples": 50_000}
    first, second = ask("push_nonlinear", **query, seed=3), ask("push_nonlinear", **query, seed=3)
    assert first == second and ask("push_nonlinear", **query, seed=4)["answer"] != first["answer"]


def test_same_seed_pairs_units_across_interventions() -> None:
    scm = load_scm(DATA / "chain_linear.json")
    plain = sample(scm, 1000, np.random.default_rng(5))
    treated = sample(scm, 1000, np.random.default_rng(5), do={"X": 0.0})
    # Y depends on X only through M with slope 2 * -1.5, and the noise of every other node is shared
    assert treated["Y"] - plain["Y"] == pytest.approx(-3.0 * (0.0 - plain["X"]))
    assert draw_noise(scm, 3, np.random.default_rng(1)).keys() == set(scm.nodes)


def test_discrete_sampling_follows_the_inverse_cdf_convention() -> None:
    raw = {
        "scm_type": "discrete",
        "nodes": ["A"],
        "equations": {"A": {"states": ["a", "b", "c"], "cpt": [{"given": {}, "p": [0.2, 0.5, 0.3]}]}},
    }
    scm = parse_scm(raw)
    codes = propagate(scm, {"A": np.array([0.0, 0.19999, 0.2, 0.69999, 0.7, 0.99999])})["A"]
    assert codes.tolist() == [0, 0, 1, 1, 2, 2]


def test_queries_list_keeps_order_and_echoes_ids() -> None:
    scm = load_scm(DATA / "chain_linear.json")
    answers = answer_queries(
        scm,
        [
            {"id": "a", "type": "interventional_mean", "target": "Y", "do": {"X": 0}},
            {"id": "b", "type": "backdoor_sets", "treatment": "X", "outcome": "Y"},
        ],
    )
    assert [a["id"] for a in answers] == ["a", "b"] and answers[1]["sets"] == [[]]
    assert answer_queries(scm, {"type": "observational_mean", "target": "X"})["answer"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("model", "query", "message"),
    [
        ("chain_linear", {"type": "telepathy"}, "unknown query type 'telepathy'"),
        ("chain_linear", {"type": "interventional_mean", "target": "Q", "do": {}}, "unknown target node 'Q'"),
        ("chain_linear", {"type": "interventional_mean", "target": "Y"}, "missing field 'do'"),
        ("chain_linear", {"type": "interventional_mean", "target": "Y", "do": {"X": "high"}}, "must be a number"),
        ("chain_linear", {"type": "observational_probability", "target": "Y", "target_state": "1"}, "need a discrete"),
        ("sprinkler", {"type": "observational_mean", "target": "rain"}, "non-numeric states"),
        (
            "sprinkler",
            {"type": "interventional_probability", "target": "rain", "target_state": "sunny", "do": {"cloudy": "no"}},
            "has no state 'sunny'",
        ),
    ],
)
def test_bad_queries_raise_clear_errors(model: str, query: dict, message: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)) as caught:
        ask(model, **query)
    assert message in str(caught.value)
