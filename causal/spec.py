"""The SCM file format: parse, validate and represent a structural causal model.

The JSON file is the single source of truth shared by the library and the CLI (format documented in
``causal/README.md``). Validation happens once, here, so every engine downstream can trust the model:
each problem is reported with the node it concerns (cycles, unknown parents, missing coefficients or
CPT rows, probabilities that do not sum to one, unknown state names, unsafe expressions).

Example:
    >>> scm = parse_scm({"format_version": 1, "id": "chain", "scm_type": "linear_gaussian",
    ...     "nodes": ["X", "Y"], "equations": {
    ...         "X": {"parents": [], "coefficients": {}, "intercept": 0, "noise_std": 1},
    ...         "Y": {"parents": ["X"], "coefficients": {"X": 2.0}, "intercept": 1, "noise_std": 1}}})
    >>> scm.parents("Y"), scm.do({"X": 3.0}).equations["X"].intercept
    (('X',), 3.0)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from causal.discrete_spec import DiscreteEquation, parse_discrete_equation, state_name
from causal.expr import Expression, parse_expression
from causal.jsonfile import read_json

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SCM_TYPES = ("linear_gaussian", "discrete", "nonlinear_additive_noise")


@dataclass(frozen=True)
class LinearEquation:
    """``node = intercept + sum(coefficients[p] * p) + N(0, noise_std**2)``."""

    parents: tuple[str, ...]
    coefficients: dict[str, float]
    intercept: float
    noise_std: float


@dataclass(frozen=True)
class NonlinearEquation:
    """``node = expression(parents) + N(0, noise_std**2)``."""

    parents: tuple[str, ...]
    expression: Expression
    noise_std: float


Equation = LinearEquation | DiscreteEquation | NonlinearEquation


@dataclass(frozen=True)
class SCM:
    """A validated structural causal model: DAG, one equation per node, and which nodes are latent."""

    id: str
    scm_type: str
    nodes: tuple[str, ...]
    latent: frozenset[str]
    equations: dict[str, Equation]
    graph: nx.DiGraph = field(compare=False, repr=False)
    order: tuple[str, ...] = field(compare=False, repr=False)

    @property
    def is_discrete(self) -> bool:
        """True for models whose nodes take named states."""
        return self.scm_type == "discrete"

    @property
    def observed(self) -> tuple[str, ...]:
        """Nodes that may appear in data, in file order."""
        return tuple(node for node in self.nodes if node not in self.latent)

    def parents(self, node: str) -> tuple[str, ...]:
        """Parents of `node` in the order its equation lists them."""
        return self.equations[self.check_node(node)].parents

    def check_node(self, node: Any, what: str = "node") -> str:
        """Return `node` if the model has it; otherwise raise a KeyError listing the known nodes."""
        if not isinstance(node, str) or node not in self.equations:
            raise KeyError(f"unknown {what} {node!r}; the model {self.id!r} has nodes {list(self.nodes)}")
        return node

    def states(self, node: str) -> tuple[str, ...]:
        """State names of a discrete node."""
        equation = self.equations[self.check_node(node)]
        if not isinstance(equation, DiscreteEquation):
            raise TypeError(f"node {node!r} is continuous ({self.scm_type}); it has no states")
        return equation.states

    def state_index(self, node: str, value: Any) -> int:
        """Index of state `value` of discrete `node`; unknown states raise a ValueError listing the valid ones."""
        states = self.states(node)
        name = state_name(value)
        if name not in states:
            raise ValueError(f"node {node!r} has no state {value!r}; its states are {list(states)}")
        return states.index(name)

    def value(self, node: str, value: Any) -> float:
        """A continuous node's value as a float, or a discrete node's state index, with a clear error."""
        if self.is_discrete:
            return float(self.state_index(node, value))
        return to_number(value, f"value of node {node!r}")

    def do(self, interventions: Mapping[str, Any]) -> SCM:
        """The mutilated model after ``do(node = value, ...)``: incoming edges cut, the node held constant."""
        equations = dict(self.equations)
        graph = self.graph.copy()
        for node, value in interventions.items():
            self.check_node(node, "intervened node")
            graph.remove_edges_from(list(graph.in_edges(node)))
            equations[node] = self._constant_equation(node, value)
        return replace(self, equations=equations, graph=graph)

    def _constant_equation(self, node: str, value: Any) -> Equation:
        if self.is_discrete:
            states = self.states(node)
            table = np.zeros(len(states))
            table[self.state_index(node, value)] = 1.0
            return DiscreteEquation(parents=(), states=states, table=table)
        number = to_number(value, f"do() value of node {node!r}")
        if self.scm_type == "linear_gaussian":
            return LinearEquation(parents=(), coefficients={}, intercept=number, noise_std=0.0)
        return NonlinearEquation(parents=(), expression=parse_expression(repr(number)), noise_std=0.0)


def to_number(value: Any, what: str) -> float:
    """A finite float from a JSON number (or numeric string), else a ValueError naming `what`."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


def _noise_std(node: str, raw: Mapping[str, Any]) -> float:
    if "noise_std" not in raw:
        raise ValueError(f"node {node!r}: equation is missing 'noise_std'")
    std = to_number(raw["noise_std"], f"node {node!r}: noise_std")
    if std < 0:
        raise ValueError(f"node {node!r}: noise_std must be >= 0, got {std}")
    return std


def _parse_linear(node: str, raw: Mapping[str, Any], parents: tuple[str, ...]) -> LinearEquation:
    coefficients = raw.get("coefficients", {})
    if not isinstance(coefficients, Mapping):
        raise TypeError(f"node {node!r}: 'coefficients' must be an object, got {coefficients!r}")
    for parent in parents:
        if parent not in coefficients:
            raise ValueError(
                f"node {node!r}: parent {parent!r} has no coefficient (coefficients: {dict(coefficients)})"
            )
    for name in coefficients:
        if name not in parents:
            raise ValueError(
                f"node {node!r}: coefficient for {name!r}, which is not a parent (parents: {list(parents)})"
            )
    values = {p: to_number(coefficients[p], f"node {node!r}: coefficient of {p!r}") for p in parents}
    intercept = to_number(raw.get("intercept", 0.0), f"node {node!r}: intercept")
    return LinearEquation(parents=parents, coefficients=values, intercept=intercept, noise_std=_noise_std(node, raw))


def _parse_nonlinear(node: str, raw: Mapping[str, Any], parents: tuple[str, ...]) -> NonlinearEquation:
    if "expr" not in raw:
        raise ValueError(f"node {node!r}: equation is missing 'expr'")
    try:
        expression = parse_expression(raw["expr"], allowed_names=parents)
    except (ValueError, TypeError) as error:
        raise type(error)(f"node {node!r}: {error}") from None
    if not expression.names:  # a constant: check it now rather than at query time
        constant = float(expression.evaluate({}))
        if not math.isfinite(constant):
            raise ValueError(f"node {node!r}: expression {expression.text!r} evaluates to {constant} (not finite)")
    unused = set(parents) - expression.names
    if unused:
        logger.info("node %r: parents %s do not appear in its expression", node, sorted(unused))
    return NonlinearEquation(parents=parents, expression=expression, noise_std=_noise_std(node, raw))


def _parse_parents(node: str, raw: Any, known: set[str]) -> tuple[str, ...]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"node {node!r}: equation must be an object, got {raw!r}")
    parents = raw.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise TypeError(f"node {node!r}: 'parents' must be a list of node names, got {parents!r}")
    if len(set(parents)) != len(parents):
        raise ValueError(f"node {node!r}: parents listed twice in {parents}")
    for parent in parents:
        if parent not in known:
            raise ValueError(f"node {node!r}: unknown parent {parent!r}; known nodes: {sorted(known)}")
    return tuple(parents)


def _parse_nodes(data: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str], Mapping[str, Any]]:
    nodes, latent, equations = data.get("nodes"), data.get("latent", []), data.get("equations")
    if not isinstance(equations, Mapping):
        raise TypeError(f"'equations' must be an object mapping node names to equations, got {equations!r}")
    if nodes is None:
        raise ValueError("the model has no 'nodes' list")
    for name, value in (("nodes", nodes), ("latent", latent)):
        if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
            raise TypeError(f"'{name}' must be a list of non-empty node names, got {value!r}")
    if len(set(nodes)) != len(nodes):
        duplicated = sorted({n for n in nodes if nodes.count(n) > 1})
        raise ValueError(f"nodes listed twice: {duplicated}")
    extra_latent = [n for n in latent if n not in nodes and n in equations]
    nodes = list(nodes) + extra_latent  # a latent node may be listed only under "latent"
    for name in latent:
        if name not in nodes:
            raise ValueError(f"latent node {name!r} is neither in 'nodes' nor has an equation")
    for name in equations:
        if name not in nodes:
            raise ValueError(f"equation for unknown node {name!r}; nodes are {nodes}")
    for name in nodes:
        if name not in equations:
            raise ValueError(f"node {name!r} has no equation")
    return tuple(nodes), frozenset(latent), equations


def _check_header(data: Any) -> str:
    if not isinstance(data, Mapping):
        raise TypeError(f"an SCM must be a JSON object, got {type(data).__name__}")
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported format_version {version!r}; expected {FORMAT_VERSION}")
    scm_type = data.get("scm_type")
    if scm_type not in SCM_TYPES:
        raise ValueError(f"scm_type must be one of {list(SCM_TYPES)}, got {scm_type!r}")
    return scm_type


def _build_graph(nodes: tuple[str, ...], parents: Mapping[str, tuple[str, ...]]) -> tuple[nx.DiGraph, tuple[str, ...]]:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((p, node) for node in nodes for p in parents[node])
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        position = {node: i for i, node in enumerate(nodes)}
        order = tuple(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
        return graph, order
    path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
    raise ValueError(f"the graph has a cycle through node {cycle[0][0]!r}: {path}")


def parse_scm(data: Any) -> SCM:
    """Validate a decoded SCM JSON object and build the `SCM`; every error names the node concerned."""
    scm_type = _check_header(data)
    nodes, latent, raw_equations = _parse_nodes(data)
    known = set(nodes)
    parents = {node: _parse_parents(node, raw_equations[node], known) for node in nodes}
    graph, order = _build_graph(nodes, parents)
    equations: dict[str, Equation] = {}
    if scm_type == "discrete":
        state_lists = {node: _raw_states(node, raw_equations[node]) for node in nodes}
        for node in nodes:
            equations[node] = parse_discrete_equation(node, raw_equations[node], parents[node], state_lists)
    else:
        parse = _parse_linear if scm_type == "linear_gaussian" else _parse_nonlinear
        for node in nodes:
            equations[node] = parse(node, raw_equations[node], parents[node])
    model_id = data.get("id", "scm")
    return SCM(
        id=str(model_id), scm_type=scm_type, nodes=nodes, latent=latent, equations=equations, graph=graph, order=order
    )


def _raw_states(node: str, raw: Mapping[str, Any]) -> tuple[str, ...]:
    states = raw.get("states")
    if not isinstance(states, list) or not states:
        raise ValueError(f"node {node!r}: 'states' must be a non-empty list, got {states!r}")
    names = tuple(state_name(s) for s in states)
    if len(set(names)) != len(names):
        raise ValueError(f"node {node!r}: states listed twice in {list(names)}")
    return names


def load_scm(path: str | Path) -> SCM:
    """Read and validate an SCM JSON file; errors name the file and then the problem."""
    path = Path(path)
    data = read_json(path, "SCM")
    try:
        return parse_scm(data)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{path}: {error}") from None
