"""Tables, plots and results.json for `embodia continual`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

from experiments.common.jsonio import write_json

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common.io import atomic_write, atomic_write_text
from experiments.common.stats import mean_std
from memory.continual_metrics import Curve, summarise


def report(results: dict[str, dict[int, dict[str, Any]]], tasks: list[str], steps_per_task: int, out: Path) -> str:
    """Metrics per strategy (mean ± std over seeds), written to results.json, results.md and curves.png."""
    rows, per_run = [], {}
    for strategy, seeds in results.items():
        metrics = {seed: summarise(run["curves"], run["references"], tasks, steps_per_task)
                   for seed, run in seeds.items()}
        per_run[strategy] = metrics
        rows.append((strategy, *[mean_std([m[key] for m in metrics.values()]) for key in
                                 ("average_performance", "average_forgetting", "average_forward_transfer")]))
    naive = next((row[2][0] for row in rows if row[0] == "naive"), None)
    lines = [f"Continual World metrics over {', '.join(tasks)} ({steps_per_task} steps per task, "
             f"{len(next(iter(results.values())))} seed(s)); mean ± std over seeds.", "",
             "| strategy | average performance | average forgetting | forgetting / naive | forward transfer |",
             "|---|---|---|---|---|"]
    for strategy, perf, forget, transfer in rows:
        ratio = f"{forget[0] / naive:.2f}" if naive and naive > 0 else "n/a"
        lines.append(f"| {strategy} | {perf[0]:.2f} ± {perf[1]:.2f} | {forget[0]:.2f} ± {forget[1]:.2f} | {ratio} | "
                     f"{transfer[0]:.2f} ± {transfer[1]:.2f} |")
    lines += ["", "Forgetting per task (mean over seeds):", ""]
    for strategy, metrics in per_run.items():
        per_task = {t: sum(m["forgetting"][t] for m in metrics.values()) / len(metrics) for t in tasks[:-1]}
        lines.append(f"- {strategy}: " + ", ".join(f"{t} {v:+.2f}" for t, v in per_task.items()))
    table = "\n".join(lines)
    atomic_write_text(out / "results.md", "# Continual learning\n\n" + table + "\n\n![curves](curves.png)\n")
    serialisable = {s: {str(seed): {"metrics": per_run[s][seed],
                                    "curves": {t: list(zip(c.steps, c.success, strict=True))
                                               for t, c in run["curves"].items()}}
                        for seed, run in seeds.items()} for s, seeds in results.items()}
    write_json(out / "results.json", serialisable)
    _plot(results, tasks, steps_per_task, out / "curves.png")
    return table


def _plot(results: dict[str, dict[int, dict[str, Any]]], tasks: list[str], steps_per_task: int, path: Path) -> None:
    figure, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.2), squeeze=False, sharey=True)
    for axis, (strategy, seeds) in zip(axes[0], results.items(), strict=True):
        for task in tasks:
            curves: list[Curve] = [run["curves"][task] for run in seeds.values()]
            steps = curves[0].steps
            mean = [sum(c.at(s) for c in curves) / len(curves) for s in steps]
            axis.plot(steps, mean, marker="o", markersize=3, label=task)
        for boundary in range(1, len(tasks)):
            axis.axvline(boundary * steps_per_task, color="grey", linewidth=0.6, linestyle="--")
        axis.set_title(strategy)
        axis.set_xlabel("training steps")
        axis.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("success rate")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
