"""Continual-learning metrics exactly as Continual World defines them (Wołczyk et al., NeurIPS 2021).

Let p_i(t) be the success rate on task i at training step t, N tasks trained one after another for
Δ steps each, task i during [(i-1)Δ, iΔ], and T = NΔ.

- Average performance: P(T) = (1/N) Σ_i p_i(T).
- Forgetting of task i: F_i = p_i(iΔ) − p_i(T), averaged over all tasks but the last.
- Forward transfer of task i: FT_i = (AUC_i − AUC_i^b) / (1 − AUC_i^b), where AUC_i is the area under
  p_i over task i's own training interval (normalised to [0, 1]) and AUC_i^b the same for a reference
  run that trains task i alone from scratch with the same budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """Success rate of one task measured at some training steps."""

    steps: tuple[int, ...]
    success: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.success) or not self.steps:
            raise ValueError(f"a curve needs matching, non-empty steps and success lists, got "
                             f"{len(self.steps)} and {len(self.success)}")
        if list(self.steps) != sorted(self.steps):
            raise ValueError(f"curve steps must increase, got {list(self.steps)}")

    def at(self, step: int) -> float:
        """Success at the last evaluation not after `step`."""
        index = int(np.searchsorted(np.asarray(self.steps), step, side="right")) - 1
        if index < 0:
            raise ValueError(f"no evaluation at or before step {step} (first at {self.steps[0]})")
        return self.success[index]

    def auc(self, start: int, end: int) -> float:
        """Mean success over [start, end] by the trapezoid rule on the evaluations inside it."""
        points = [(s, p) for s, p in zip(self.steps, self.success, strict=True) if start <= s <= end]
        if len(points) < 2:
            raise ValueError(f"need two evaluations in [{start}, {end}] for an AUC, got {len(points)}")
        xs, ys = zip(*points, strict=True)
        return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))


def average_performance(curves: Mapping[str, Curve], end: int) -> float:
    """Mean success over all tasks at step `end` (average performance, A_T in continual-learning papers)."""
    return float(np.mean([curve.at(end) for curve in curves.values()]))


def forgetting(curves: Mapping[str, Curve], tasks: Sequence[str], steps_per_task: int) -> dict[str, float]:
    """F_i for every task but the last."""
    end = steps_per_task * len(tasks)
    return {task: curves[task].at((i + 1) * steps_per_task) - curves[task].at(end)
            for i, task in enumerate(tasks[:-1])}


def forward_transfer(curves: Mapping[str, Curve], references: Mapping[str, Curve], tasks: Sequence[str],
                     steps_per_task: int) -> dict[str, float]:
    """FT_i against from-scratch references (whose curves start at step 0)."""
    result = {}
    for i, task in enumerate(tasks):
        auc = curves[task].auc(i * steps_per_task, (i + 1) * steps_per_task)
        baseline = references[task].auc(0, steps_per_task)
        result[task] = (auc - baseline) / (1.0 - baseline) if baseline < 1.0 else 0.0
    return result


def summarise(curves: Mapping[str, Curve], references: Mapping[str, Curve] | None, tasks: Sequence[str],
              steps_per_task: int) -> dict[str, object]:
    """All three metrics for one run (forward transfer only when references are given)."""
    per_task_forgetting = forgetting(curves, tasks, steps_per_task)
    summary: dict[str, object] = {
        "average_performance": average_performance(curves, steps_per_task * len(tasks)),
        "forgetting": per_task_forgetting,
        "average_forgetting": float(np.mean(list(per_task_forgetting.values()))) if per_task_forgetting else 0.0,
    }
    if references is not None:
        transfer = forward_transfer(curves, references, tasks, steps_per_task)
        summary["forward_transfer"] = transfer
        summary["average_forward_transfer"] = float(np.mean(list(transfer.values())))
    return summary
