"""Cross-checks against pgmpy (a dev dependency) on its bundled textbook networks.

- exact discrete inference: our variable elimination vs pgmpy's `VariableElimination` (observational),
  `CausalInference.query` (do without evidence) and `model.do()` + elimination (do with evidence), on
  sprinkler, asia, cancer, sachs and child;
- back-door and front-door sets vs `CausalInference.get_all_backdoor_adjustment_sets` /
  `get_all_frontdoor_adjustment_sets` (minimal ones) on the dagitty graphs pgmpy ships;
- linear-Gaussian joint distribution and conditioning vs `LinearGaussianBayesianNetwork` on ecoli70;
- discovery: PC with a d-separation oracle vs `DAG.to_pdag()` (Chickering's algorithm), PC on data vs
  pgmpy's PC, and our Fisher-z / G-test p-values vs pgmpy's.
"""

from __future__ import annotations

import itertools
import json
import random
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

pgmpy = pytest.importorskip("pgmpy")
pd = pytest.importorskip("pandas")

from pgmpy.base import DAG  # noqa: E402
from pgmpy.ci_tests import FisherZ as PgmpyFisherZ  # noqa: E402
from pgmpy.ci_tests import GSq  # noqa: E402
from pgmpy.factors.discrete import TabularCPD  # noqa: E402
from pgmpy.inference import CausalInference, VariableElimination  # noqa: E402
from pgmpy.models import DiscreteBayesianNetwork  # noqa: E402
from pgmpy.utils import get_example_model  # noqa: E402

from causal.citests import FisherZ, GTest  # noqa: E402
from causal.discovery import pc  # noqa: E402
from causal.discrete import distribution  # noqa: E402
from causal.graph import backdoor_sets, frontdoor_sets  # noqa: E402
from causal.linear import conditional_mean, gaussian_form  # noqa: E402
from causal.queries import answer_query  # noqa: E402
from causal.sampling import sample  # noqa: E402
from causal.spec import load_scm, parse_scm  # noqa: E402

DATA = Path(__file__).parent / "data" / "causal"
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def _load(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_example_model(name)


def discrete_to_json(model) -> dict:
    """Our SCM file for a pgmpy discrete Bayesian network (same CPTs, same state names)."""
    equations = {}
    for cpd in model.get_cpds():
        parents = list(cpd.variables[1:])
        values = cpd.get_values()
        combos = itertools.product(*(cpd.state_names[p] for p in parents))
        rows = [
            {"given": {p: str(s) for p, s in zip(parents, combo, strict=True)}, "p": values[:, k].tolist()}
            for k, combo in enumerate(combos)
        ]
        states = [str(s) for s in cpd.state_names[cpd.variable]]
        equations[cpd.variable] = {"parents": parents, "states": states, "cpt": rows}
    nodes = list(nx.topological_sort(nx.DiGraph(model.edges())))
    nodes += [n for n in model.nodes() if n not in nodes]
    return {"format_version": 1, "id": "from_pgmpy", "scm_type": "discrete", "nodes": nodes, "equations": equations}


def json_to_pgmpy(scm) -> DiscreteBayesianNetwork:
    model = DiscreteBayesianNetwork([(p, n) for n in scm.nodes for p in scm.parents(n)])
    model.add_nodes_from(scm.nodes)
    for node in scm.nodes:
        eq = scm.equations[node]
        model.add_cpds(
            TabularCPD(
                node,
                len(eq.states),
                eq.table.reshape(-1, len(eq.states)).T,
                evidence=list(eq.parents) or None,
                evidence_card=[len(scm.states(p)) for p in eq.parents] or None,
                state_names={n: list(scm.states(n)) for n in (node, *eq.parents)},
            )
        )
    return model


def _factor_values(factor, variable: str, states: tuple[str, ...]) -> np.ndarray:
    names = [str(s) for s in factor.state_names[variable]]
    return np.array([factor.values[names.index(s)] for s in states])


def _check_queries(scm, model, rng: random.Random, n_queries: int) -> int:
    ve, ci = VariableElimination(model), CausalInference(model)
    checked = 0
    for _ in range(n_queries):
        target = rng.choice(scm.nodes)
        others = [n for n in scm.nodes if n != target]
        given = {n: rng.choice(scm.states(n)) for n in rng.sample(others, rng.randint(0, 2))}
        try:
            ours = distribution(scm, target, {n: scm.state_index(n, s) for n, s in given.items()})
        except ValueError:  # impossible evidence
            continue
        theirs = ve.query([target], evidence=given, show_progress=False)
        assert ours == pytest.approx(_factor_values(theirs, target, scm.states(target)), abs=1e-6)
        ancestors = sorted(nx.ancestors(scm.graph, target))
        if ancestors:
            treated = rng.choice(ancestors)
            state = rng.choice(scm.states(treated))
            ours = distribution(scm.do({treated: state}), target)
            theirs = ci.query([target], do={treated: state}, show_progress=False)
            assert ours == pytest.approx(_factor_values(theirs, target, scm.states(target)), abs=1e-6)
            extra = rng.choice([n for n in others if n != treated] or [treated])
            evidence = {treated: state, extra: rng.choice(scm.states(extra))} if extra != treated else {treated: state}
            try:
                ours = distribution(
                    scm.do({treated: state}), target, {n: scm.state_index(n, s) for n, s in evidence.items()}
                )
            except ValueError:
                continue
            mutilated = VariableElimination(model.do([treated]))
            theirs = mutilated.query([target], evidence=evidence, show_progress=False)
            assert ours == pytest.approx(_factor_values(theirs, target, scm.states(target)), abs=1e-6)
        checked += 1
    return checked


def test_sprinkler_queries_match_pgmpy() -> None:
    scm = load_scm(DATA / "sprinkler.json")
    model = json_to_pgmpy(scm)
    assert _check_queries(scm, model, random.Random(0), 30) >= 25
    ours = answer_query(
        scm,
        {"type": "interventional_probability", "target": "wet_grass", "target_state": "wet", "do": {"sprinkler": "on"}},
    )["answer"]
    theirs = CausalInference(model).query(["wet_grass"], do={"sprinkler": "on"}, show_progress=False)
    assert ours == pytest.approx(_factor_values(theirs, "wet_grass", ("dry", "wet"))[1])


@pytest.mark.parametrize(
    "name",
    ["asia", "cancer", pytest.param("sachs", marks=pytest.mark.slow), pytest.param("child", marks=pytest.mark.slow)],
)
def test_textbook_networks_match_pgmpy(name: str) -> None:
    model = _load(name)
    scm = parse_scm(discrete_to_json(model))
    assert _check_queries(scm, model, random.Random(len(name)), 12) >= 8


_LARGE = ["Shrier_2008", "Acid_1996", "paths", "Polzer_2012"]  # pgmpy's subset search takes seconds on these
DAGITTY = [
    "M-bias",
    "Schipf_2010",
    "Thoemmes_2013",
    "Kampen_2014",
    "Didelez_2010",
    "confounding",
    "mediator",
    *(pytest.param(name, marks=pytest.mark.slow) for name in _LARGE),
]


def _pgmpy_backdoor(model, x: str, y: str) -> list[list[str]]:
    try:
        sets = CausalInference(model).get_all_backdoor_adjustment_sets(x, y)
    except ValueError:  # pgmpy raises when no set exists
        return []
    return [[]] if not sets else sorted((sorted(s) for s in sets), key=lambda s: (len(s), s))


def _pgmpy_frontdoor(model, x: str, y: str) -> list[list[str]]:
    sets = CausalInference(model).get_all_frontdoor_adjustment_sets(x, y)
    minimal = [s for s in sets if not any(other < s for other in sets)]
    return sorted((sorted(s) for s in minimal), key=lambda s: (len(s), s))


def _pairs(model, rng: random.Random, extra: int) -> list[tuple[str, str]]:
    pairs = [(next(iter(model.exposures)), next(iter(model.outcomes)))]
    observed = sorted(set(model.nodes()) - set(model.latents))
    graph = nx.DiGraph(model.edges())
    candidates = [
        (x, y) for x in observed for y in observed if x != y and graph.has_node(x) and y in nx.descendants(graph, x)
    ]
    return pairs + rng.sample(candidates, min(extra, len(candidates)))


@pytest.mark.parametrize("name", DAGITTY)
def test_adjustment_sets_match_pgmpy_on_dagitty_graphs(name: str) -> None:
    model = _load(name)
    graph = nx.DiGraph(model.edges())
    graph.add_nodes_from(model.nodes())
    observed = sorted(set(model.nodes()) - set(model.latents))
    small = len(observed) <= 13  # pgmpy lists front-door sets by trying every subset
    for x, y in _pairs(model, random.Random(name), 4 if small else 2):
        assert backdoor_sets(graph, [x], [y], observed) == _pgmpy_backdoor(model, x, y), (name, x, y)
        if small:
            assert frontdoor_sets(graph, [x], [y], observed) == _pgmpy_frontdoor(model, x, y), (name, x, y)


def test_frontdoor_smoking_graph_matches_pgmpy() -> None:
    model = DAG(
        [("U", "X"), ("U", "Y"), ("X", "M1"), ("M1", "M2"), ("M2", "Y"), ("X", "M3"), ("M3", "Y")], latents={"U"}
    )
    graph = nx.DiGraph(model.edges())
    expected = _pgmpy_frontdoor(model, "X", "Y")
    assert expected and frontdoor_sets(graph, ["X"], ["Y"], ["X", "Y", "M1", "M2", "M3"]) == expected


def _linear_json(model) -> dict:
    equations = {}
    for cpd in model.get_cpds():
        parents = list(cpd.evidence)
        equations[cpd.variable] = {
            "parents": parents,
            "intercept": float(cpd.beta[0]),
            "noise_std": float(cpd.std),
            "coefficients": {p: float(b) for p, b in zip(parents, cpd.beta[1:], strict=True)},
        }
    return {
        "format_version": 1,
        "id": "ecoli70",
        "scm_type": "linear_gaussian",
        "nodes": sorted(equations),
        "equations": equations,
    }


def test_linear_gaussian_joint_and_conditionals_match_pgmpy() -> None:
    model = _load("ecoli70")
    scm = parse_scm(_linear_json(model))
    form = gaussian_form(scm)
    mean, cov = model.to_joint_gaussian()
    order = [form.index[n] for n in nx.topological_sort(model)]
    assert form.mean[order] == pytest.approx(mean, abs=1e-8)  # pgmpy rounds to 8 decimals
    assert form.cov[np.ix_(order, order)] == pytest.approx(cov, abs=1e-8)
    rng = np.random.default_rng(0)
    observed = sorted(rng.choice(scm.nodes, size=10, replace=False).tolist())
    row = {n: float(rng.normal()) for n in observed}
    missing, mu, _ = model.predict_probability(pd.DataFrame([row]))
    for k, node in enumerate(missing):
        assert conditional_mean(form, node, row) == pytest.approx(mu[0, k], abs=1e-6)


class _Oracle:
    """A CI "test" that answers from d-separation in a known DAG (p = 1 if separated)."""

    def __init__(self, graph: nx.DiGraph, names: list[str]) -> None:
        self.graph, self.names = graph, names

    def pvalue(self, i: int, j: int, given) -> float:
        sep = nx.is_d_separator(self.graph, {self.names[i]}, {self.names[j]}, {self.names[k] for k in given})
        return 1.0 if sep else 0.0


def test_pc_with_an_oracle_recovers_pgmpys_cpdag() -> None:
    rng = random.Random(5)
    oriented = 0
    for _ in range(40):
        n = rng.randint(4, 8)
        names = [f"V{i}" for i in range(n)]
        edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.4]
        graph = nx.DiGraph(edges)
        graph.add_nodes_from(names)
        result = pc(_Oracle(graph, names), n, 0.5)
        truth = DAG(edges)
        truth.add_nodes_from(names)
        cpdag = truth.to_pdag()
        assert {(names[a], names[b]) for a, b in result.directed} == set(cpdag.directed_edges)
        assert {frozenset((names[a], names[b])) for a, b in result.undirected_pairs()} == {
            frozenset(e) for e in cpdag.undirected_edges
        }
        oriented += len(result.directed)
    assert oriented > 20


def test_pc_on_data_matches_pgmpy_pc() -> None:
    scm = load_scm(DATA / "collider_linear.json")
    values = sample(scm, 3000, np.random.default_rng(0))
    names = list(scm.observed)
    frame = pd.DataFrame({n: values[n] for n in names})
    ours = pc(FisherZ(frame.to_numpy()), len(names), 0.01)
    from pgmpy.causal_discovery import PC

    theirs = (
        PC(variant="stable", ci_test="fisher_z", significance_level=0.01, return_type="cpdag", show_progress=False)
        .fit(frame)
        .causal_graph_
    )
    assert {(names[a], names[b]) for a, b in ours.directed} == set(theirs.directed_edges)
    assert {frozenset((names[a], names[b])) for a, b in ours.undirected_pairs()} == {
        frozenset(e) for e in theirs.undirected_edges
    }
    assert {("A", "C"), ("B", "C"), ("C", "D")} == set(theirs.directed_edges)


def test_ci_test_pvalues_match_pgmpy() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=800)
    y = 0.3 * x + rng.normal(size=800)
    z = 0.5 * y + 0.1 * x + rng.normal(size=800)
    frame = pd.DataFrame({"X": x, "Y": y, "Z": z})
    theirs = PgmpyFisherZ(frame)
    theirs(X="X", Y="Z", Z=["Y"], significance_level=0.05)
    assert FisherZ(frame.to_numpy()).pvalue(0, 2, [1]) == pytest.approx(theirs.p_value_, rel=1e-6)
    # G-test: pgmpy applies Yates' correction to 2x2 strata, so compare on variables with 3+ states,
    # and on binary ones against scipy's uncorrected log-likelihood chi-square.
    scm = parse_scm(discrete_to_json(_load("child")))
    draws = sample(scm, 4000, np.random.default_rng(2))
    names = list(scm.nodes)
    codes = np.column_stack([draws[n] for n in names])
    frame = pd.DataFrame({n: [scm.states(n)[c] for c in draws[n]] for n in names})
    ours = GTest(codes, [len(scm.states(n)) for n in names])
    g = GSq(frame)
    for a, b, given in (
        ("Disease", "LungFlow", ["Age"]),
        ("CO2", "ChestXray", []),
        ("LungParench", "RUQO2", ["LungFlow"]),
        ("Age", "DuctFlow", ["Disease"]),
    ):
        g(X=a, Y=b, Z=given, significance_level=0.05)
        mine = ours.pvalue(names.index(a), names.index(b), [names.index(c) for c in given])
        assert mine == pytest.approx(g.p_value_, rel=1e-6, abs=1e-12), (a, b, given)
    from scipy.stats import chi2_contingency

    table = pd.crosstab(frame["Grunting"], frame["Sick"]).to_numpy()
    expected = chi2_contingency(table, correction=False, lambda_="log-likelihood").pvalue
    assert ours.pvalue(names.index("Grunting"), names.index("Sick"), []) == pytest.approx(expected, rel=1e-9)


def test_sprinkler_round_trip_through_pgmpy_format() -> None:
    scm = load_scm(DATA / "sprinkler.json")
    again = parse_scm(discrete_to_json(json_to_pgmpy(scm)))
    for node in scm.nodes:
        assert np.allclose(again.equations[node].table, scm.equations[node].table)
    assert json.loads(json.dumps(discrete_to_json(json_to_pgmpy(scm))))["scm_type"] == "discrete"
