"""Graphical identification: d-separation, back-door and front-door adjustment sets.

Back-door sets are enumerated without trying every subset: a set Z satisfies the back-door criterion
for (X, Y) iff it holds no descendant of X and d-separates X from Y once X's outgoing edges are cut.
Every *minimal* such separator lies inside the ancestors of X and Y (Tian, Paz and Pearl, 1998), where
d-separation equals plain vertex separation in the moral graph. So the minimal back-door sets are the
minimal X-Y vertex separators of that undirected graph that avoid the forbidden nodes (descendants of
X, unobserved nodes), listed by moving from the separator closest to X one vertex at a time (the
Kloks-Kratsch scheme). Front-door sets follow Pearl's three conditions, checked per mediator as pgmpy
does, and are listed as the minimal sets that cut every directed path from X to Y.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable

import networkx as nx

from causal.errors import InputError


class NotIdentifiableError(InputError):
    """The requested causal effect cannot be identified from the observed variables with this method."""


MAX_FRONTDOOR_CANDIDATES = 22


def descendants(graph: nx.DiGraph, nodes: Iterable[str]) -> set[str]:
    """All strict and non-strict descendants of `nodes` (the nodes themselves included)."""
    result = set(nodes)
    for node in list(result):
        result |= nx.descendants(graph, node)
    return result


def ancestors(graph: nx.DiGraph, nodes: Iterable[str]) -> set[str]:
    """All ancestors of `nodes`, the nodes themselves included."""
    result = set(nodes)
    for node in list(result):
        result |= nx.ancestors(graph, node)
    return result


def is_d_separated(graph: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], given: Iterable[str]) -> bool:
    """True when every path between `xs` and `ys` is blocked by `given`."""
    return nx.is_d_separator(graph, set(xs), set(ys), set(given))


def without_outgoing(graph: nx.DiGraph, nodes: Iterable[str]) -> nx.DiGraph:
    """Copy of `graph` with the edges leaving `nodes` removed (the back-door graph)."""
    cut = graph.copy()
    cut.remove_edges_from([edge for node in nodes for edge in graph.out_edges(node)])
    return cut


def is_backdoor_set(graph: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str]) -> bool:
    """Pearl's back-door criterion: Z has no descendant of X and blocks every path into X."""
    xs, ys, zs = set(xs), set(ys), set(zs)
    if zs & (descendants(graph, xs) | ys):
        return False
    return is_d_separated(without_outgoing(graph, xs), xs, ys, zs)


def _closest_separator(
    moral: nx.Graph, side: set[str], targets: set[str], allowed: set[str]
) -> tuple[frozenset[str], set[str]] | None:
    """The minimal separator closest to `side`, using only `allowed` vertices, and the enlarged side."""
    side = set(side)
    while True:
        boundary = {n for v in side for n in moral[v]} - side
        if boundary & targets:
            return None
        blocked = boundary - allowed
        if not blocked:
            break
        side |= blocked
    target_component = _component(moral, targets, boundary | side)
    separator = frozenset(v for v in boundary if any(n in target_component for n in moral[v]))
    return separator, _component(moral, side, set(separator))


def _component(graph: nx.Graph, start: set[str], avoid: set[str]) -> set[str]:
    seen = set(start)
    queue = deque(start)
    while queue:
        for n in graph[queue.popleft()]:
            if n not in seen and n not in avoid:
                seen.add(n)
                queue.append(n)
    return seen


def minimal_separators(moral: nx.Graph, xs: set[str], ys: set[str], allowed: set[str]) -> list[frozenset[str]]:
    """Every minimal vertex set within `allowed` that separates `xs` from `ys` in an undirected graph."""
    first = _closest_separator(moral, xs, ys, allowed)
    if first is None:
        return []
    found = {first[0]}
    queue = deque([first])
    while queue:
        separator, side = queue.popleft()
        for vertex in separator:
            nxt = _closest_separator(moral, side | {vertex}, ys, allowed)
            if nxt is not None and nxt[0] not in found:
                found.add(nxt[0])
                queue.append(nxt)
    return sorted(found, key=lambda s: (len(s), sorted(s)))


def backdoor_sets(graph: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], observed: Iterable[str]) -> list[list[str]]:
    """Every minimal set of `observed` nodes satisfying the back-door criterion for (xs, ys).

    Example:
        >>> g = nx.DiGraph([("Z", "X"), ("Z", "Y"), ("X", "Y")])
        >>> backdoor_sets(g, ["X"], ["Y"], ["X", "Y", "Z"])
        [['Z']]
    """
    xs, ys = set(xs), set(ys)
    if xs & ys:
        return []
    cut = without_outgoing(graph, xs)
    relevant = ancestors(cut, xs | ys)
    moral = nx.moral_graph(cut.subgraph(relevant))
    allowed = (set(observed) & relevant) - descendants(graph, xs) - ys
    separators = minimal_separators(moral, xs, ys, allowed)
    return [sorted(s) for s in separators]


def _intercepts(graph: nx.DiGraph, xs: set[str], ys: set[str], zs: set[str]) -> bool:
    reachable = descendants(graph.subgraph(set(graph) - zs), xs)
    return not (reachable & ys)


def is_frontdoor_set(graph: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], zs: Iterable[str]) -> bool:
    """Pearl's front-door criterion, each mediator checked on its own (as pgmpy does).

    (i) Z cuts every directed path from X to Y, and at least one such path exists; (ii) no back-door path
    from X reaches any z; (iii) X blocks every back-door path from each z to Y.
    """
    xs, ys, zs = set(xs), set(ys), set(zs)
    if not (descendants(graph, xs) - xs) & ys or zs & (xs | ys):
        return False
    if not _intercepts(graph, xs, ys, zs):
        return False
    return all(_mediator_ok(graph, xs, ys, z) for z in zs)


def _mediator_ok(graph: nx.DiGraph, xs: set[str], ys: set[str], z: str) -> bool:
    no_backdoor_into_z = is_d_separated(without_outgoing(graph, xs), xs, {z}, set())
    return no_backdoor_into_z and is_backdoor_set(graph, {z}, ys, xs)


def frontdoor_sets(graph: nx.DiGraph, xs: Iterable[str], ys: Iterable[str], observed: Iterable[str]) -> list[list[str]]:
    """Every minimal set of `observed` nodes satisfying the front-door criterion for (xs, ys).

    Only nodes on a directed path from X to Y can belong to a minimal set (any other node leaves
    condition (i) unchanged and only adds constraints), so the search is over those.

    Example:
        >>> g = nx.DiGraph([("U", "X"), ("U", "Y"), ("X", "M"), ("M", "Y")])
        >>> frontdoor_sets(g, ["X"], ["Y"], ["X", "M", "Y"])
        [['M']]
    """
    xs, ys = set(xs), set(ys)
    if xs & ys or not (descendants(graph, xs) - xs) & ys:
        return []
    on_paths = (descendants(graph, xs) & ancestors(graph, ys)) - xs - ys
    candidates = sorted(z for z in on_paths & set(observed) if _mediator_ok(graph, xs, ys, z))
    if len(candidates) > MAX_FRONTDOOR_CANDIDATES:
        raise InputError(
            f"front-door search over {len(candidates)} mediators is too large (limit {MAX_FRONTDOOR_CANDIDATES})"
        )
    minimal: list[frozenset[str]] = []
    for size in range(len(candidates) + 1):
        for combo in itertools.combinations(candidates, size):
            chosen = frozenset(combo)
            if any(found <= chosen for found in minimal):
                continue
            if _intercepts(graph, xs, ys, set(chosen)):
                minimal.append(chosen)
    return [sorted(s) for s in minimal]
