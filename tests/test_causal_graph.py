"""Identification: back-door and front-door sets against hand-worked graphs and brute-force search."""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import pytest

from causal.graph import backdoor_sets, frontdoor_sets, is_backdoor_set, is_frontdoor_set, minimal_separators
from causal.queries import answer_query
from causal.spec import load_scm

DATA = Path(__file__).parent / "data" / "causal"


def _graph(edges: str) -> nx.DiGraph:
    return nx.DiGraph([tuple(edge.split("->")) for edge in edges.split()])


@pytest.mark.parametrize(
    ("edges", "observed", "expected"),
    [
        ("Z->X Z->Y X->Y", "XYZ", [["Z"]]),
        ("X->Y", "XY", [[]]),
        # M-bias: Z is a collider between two latent causes; adjusting for it would open a path
        ("A->X A->Z B->Z B->Y X->Y", "XYZ", [[]]),
        ("A->X A->Z B->Z B->Y X->Y", "XYZAB", [[]]),
        # a confounder reachable two ways: either the parent of X or the parent of Y blocks it
        ("C->A C->B A->X B->Y X->Y", "XYABC", [["A"], ["B"], ["C"]]),
        # the only confounder is latent: not identifiable by adjustment
        ("U->X U->Y X->Y", "XY", []),
        # butterfly: Z is both a collider and a confounder; {Z} alone opens A-Z-B, so A or B must join it
        ("A->Z B->Z A->X B->Y Z->X Z->Y X->Y", "XYZAB", [["A", "Z"], ["B", "Z"]]),
        # a mediator never qualifies (it is a descendant of X)
        ("Z->X Z->Y X->M M->Y", "XYZM", [["Z"]]),
    ],
)
def test_backdoor_sets_on_worked_examples(edges: str, observed: str, expected: list) -> None:
    assert backdoor_sets(_graph(edges), ["X"], ["Y"], list(observed)) == expected


def test_frontdoor_on_the_smoking_graph() -> None:
    graph = _graph("U->X U->Y X->M M->Y")
    assert frontdoor_sets(graph, ["X"], ["Y"], ["X", "M", "Y"]) == [["M"]]
    assert frontdoor_sets(graph, ["X"], ["Y"], ["X", "Y"]) == []  # the mediator is not observed
    graph.add_edge("U", "M")  # the mediator is confounded with X: criterion (ii) fails
    assert frontdoor_sets(graph, ["X"], ["Y"], ["X", "M", "Y"]) == []
    parallel = _graph("U->X U->Y X->M1 X->M2 M1->Y M2->Y")
    assert frontdoor_sets(parallel, ["X"], ["Y"], ["X", "Y", "M1", "M2"]) == [["M1", "M2"]]
    serial = _graph("U->X U->Y X->M1 M1->M2 M2->Y")
    assert frontdoor_sets(serial, ["X"], ["Y"], ["X", "Y", "M1", "M2"]) == [["M1"], ["M2"]]
    assert frontdoor_sets(_graph("X->A Y->A"), ["X"], ["Y"], ["X", "Y", "A"]) == []  # no directed path


def _brute(graph: nx.DiGraph, x: str, y: str, observed: list[str], valid) -> list[list[str]]:
    candidates = sorted(set(observed) - {x, y})
    found: list[frozenset[str]] = []
    for size in range(len(candidates) + 1):
        for combo in itertools.combinations(candidates, size):
            chosen = frozenset(combo)
            if not any(f <= chosen for f in found) and valid(graph, {x}, {y}, chosen):
                found.append(chosen)
    return sorted((sorted(s) for s in found), key=lambda s: (len(s), s))


def _random_dag(rng, n: int, p: float) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(f"V{i}" for i in range(n))
    graph.add_edges_from((f"V{i}", f"V{j}") for i in range(n) for j in range(i + 1, n) if rng.random() < p)
    return graph


def test_enumeration_equals_brute_force_on_random_graphs() -> None:
    import random

    rng = random.Random(11)
    interesting = 0
    for _ in range(250):
        graph = _random_dag(rng, rng.randint(4, 10), rng.uniform(0.2, 0.6))
        x, y = rng.sample(sorted(graph), 2)
        observed = [v for v in graph if rng.random() < 0.75] + [x, y]
        found = backdoor_sets(graph, [x], [y], observed)
        assert found == _brute(graph, x, y, observed, is_backdoor_set), (list(graph.edges), x, y, observed)
        assert frontdoor_sets(graph, [x], [y], observed) == _brute(graph, x, y, observed, is_frontdoor_set)
        interesting += len(found) > 1
    assert interesting >= 10  # many cases with several alternative minimal sets


def test_minimal_separators_respect_forbidden_vertices() -> None:
    path = nx.path_graph(["X", "A", "B", "Y"])
    assert minimal_separators(path, {"X"}, {"Y"}, {"A", "B"}) == [frozenset({"A"}), frozenset({"B"})]
    assert minimal_separators(path, {"X"}, {"Y"}, {"B"}) == [frozenset({"B"})]
    assert minimal_separators(path, {"X"}, {"Y"}, set()) == []


def test_graph_queries_through_the_query_interface() -> None:
    scm = load_scm(DATA / "frontdoor_linear.json")
    back = answer_query(scm, {"type": "backdoor_sets", "treatment": "X", "outcome": "Y"})
    front = answer_query(scm, {"type": "frontdoor_sets", "treatment": "X", "outcome": "Y", "observed": ["X", "M", "Y"]})
    assert back == {"type": "backdoor_sets", "identifiable": False, "sets": [], "method": "exact"}
    assert front["identifiable"] is True and front["sets"] == [["M"]]
    # with the latent confounder declared observed, it becomes a back-door set
    opened = answer_query(scm, {"type": "backdoor_sets", "treatment": "X", "outcome": "Y", "observed": ["U", "X", "Y"]})
    assert opened["sets"] == [["U"]]
