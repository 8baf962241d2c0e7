"""Structural causal models: specification, do(), counterfactuals, identification, estimation, discovery.

The entry points, importable from here (loaded on first use, so `import causal` stays cheap)::

    from causal import load_scm, answer_query
    scm = load_scm("model.json")            # an `SCM`; `scm.do({"x": 1.0})` is the intervened model
    answer_query(scm, {"type": "interventional_mean", "target": "y", "do": {"x": 1.0}})

`answer_query` / `answer_queries` answer every query type (interventions, counterfactuals, identification,
estimation, discovery); `estimate` and `discover` are the data-driven ones on their own, `backdoor_sets` /
`frontdoor_sets` the graph-only identification, and `fit_equation` fits one mechanism from data.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SCM": "causal.spec",
    "parse_scm": "causal.spec",
    "load_scm": "causal.spec",
    "answer_query": "causal.queries",
    "answer_queries": "causal.queries",
    "estimate": "causal.estimation",
    "discover": "causal.discovery",
    "backdoor_sets": "causal.graph",
    "frontdoor_sets": "causal.graph",
    "NotIdentifiableError": "causal.graph",
    "Design": "causal.design",
    "fit_equation": "causal.fitting",
    "bootstrap": "causal.fitting",
    "load_data": "causal.data",
    "write_csv": "causal.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
