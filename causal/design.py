"""The vocabulary shared by `causal.estimation` and `causal.estimators`: a data table, an estimator, a design.

It sits below both so that the estimators can name the design they implement without importing the module
that chooses between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Data = dict[str, np.ndarray]
Estimator = Callable[[Data], np.ndarray]

@dataclass(frozen=True)
class Design:
    """What to estimate and how: treatment values, outcome transform, adjustment strategy and set."""

    estimand: str
    treatment: str
    outcome: str
    values: tuple[float, ...]
    outcome_state: int | None
    strategy: str
    adjustment: tuple[str, ...]
