"""Partially directed graphs over integer nodes, with Meek's orientation rules.

Used by discovery: PC produces a skeleton, v-structures orient some edges, interventions others, and
Meek's four rules orient every further edge whose direction is forced (any other choice would create a
new v-structure or a cycle). Orientations never overwrite an edge that is already directed.
"""

from __future__ import annotations

from collections.abc import Iterable


class PDAG:
    """Directed edges ``(a, b)`` meaning a -> b, and undirected edges as frozensets."""

    def __init__(self, n_nodes: int, edges: Iterable[frozenset[int]]) -> None:
        self.n_nodes = n_nodes
        self.undirected: set[frozenset[int]] = set(edges)
        self.directed: set[tuple[int, int]] = set()

    def adjacent(self, a: int, b: int) -> bool:
        """True if a and b share an edge of either kind."""
        return frozenset((a, b)) in self.undirected or (a, b) in self.directed or (b, a) in self.directed

    def neighbours(self, a: int) -> set[int]:
        """Nodes sharing an edge of any kind with `a`."""
        return {b for b in range(self.n_nodes) if b != a and self.adjacent(a, b)}

    def undirected_pairs(self) -> list[tuple[int, int]]:
        """Undirected edges as sorted pairs."""
        return sorted(tuple(sorted(edge)) for edge in self.undirected)  # type: ignore[misc]

    def is_undirected(self, a: int, b: int) -> bool:
        """True if a - b is present and not yet oriented."""
        return frozenset((a, b)) in self.undirected

    def orient(self, a: int, b: int) -> bool:
        """Turn a - b into a -> b; returns whether anything changed."""
        edge = frozenset((a, b))
        if edge not in self.undirected:
            return False
        self.undirected.discard(edge)
        self.directed.add((a, b))
        return True

    def orient_collider(self, a: int, c: int, b: int) -> None:
        """Orient the v-structure a -> c <- b where its edges are still undirected."""
        self.orient(a, c)
        self.orient(b, c)

    def _parents(self, b: int) -> set[int]:
        return {a for a, child in self.directed if child == b}

    def _rule_1(self, a: int, b: int) -> bool:
        # c -> a - b with c, b nonadjacent  =>  a -> b
        return any(not self.adjacent(c, b) for c in self._parents(a) if c != b)

    def _rule_2(self, a: int, b: int) -> bool:
        # a -> c -> b and a - b  =>  a -> b
        return any((a, c) in self.directed for c in self._parents(b))

    def _rule_3(self, a: int, b: int) -> bool:
        # a - c -> b, a - d -> b, c and d nonadjacent  =>  a -> b
        candidates = [c for c in self._parents(b) if self.is_undirected(a, c)]
        return any(not self.adjacent(c, d) for i, c in enumerate(candidates) for d in candidates[i + 1 :])

    def _rule_4(self, a: int, b: int) -> bool:
        # a - c -> d -> b, c and b nonadjacent, a adjacent to d  =>  a -> b
        for d in self._parents(b):
            if not self.adjacent(a, d):
                continue
            for c in self._parents(d):
                if c != b and self.is_undirected(a, c) and not self.adjacent(c, b):
                    return True
        return False

    def apply_meek_rules(self) -> None:
        """Apply Meek's rules 1-4 until no undirected edge can be oriented further."""
        rules = (self._rule_1, self._rule_2, self._rule_3, self._rule_4)
        changed = True
        while changed:
            changed = False
            for edge in sorted(self.undirected_pairs()):
                for a, b in (edge, edge[::-1]):
                    if self.is_undirected(a, b) and any(rule(a, b) for rule in rules):
                        changed |= self.orient(a, b)
