"""Human-readable outputs of a run: the learning-curve plot and `report.md`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.common.io import atomic_write, atomic_write_text


def plot_learning_curves(curves: Sequence[tuple[str, list[dict[str, Any]]]], path: str | Path, title: str,
                         target: float | None = None) -> Path:
    """Evaluation success (with Wilson bands) and rollout success against environment steps.

    `curves` holds (label, history) pairs; each history is the run's `metrics.json` list.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.0, 3.6), dpi=90)
    for index, (label, history) in enumerate(curves):
        colour = f"C{index}"
        steps = [h["step"] for h in history]
        axis.plot(steps, [h["eval_success"] for h in history], color=colour, marker="o", markersize=3,
                  label=f"{label} eval")
        axis.fill_between(steps, [h["eval_ci95"][0] for h in history], [h["eval_ci95"][1] for h in history],
                          color=colour, alpha=0.12, linewidth=0)
        rollout = [(h["step"], h["rollout_success"]) for h in history if h.get("rollout_success") is not None]
        if rollout:  # markers too: a run with one rollout figure has no line to draw, only a point
            axis.plot(*zip(*rollout, strict=True), color=colour, linestyle=":", linewidth=1, marker="x",
                      markersize=5, label=f"{label} rollouts")
    if target is not None:
        axis.axhline(target, color="grey", linestyle="--", linewidth=0.8)
    axis.set(xlabel="environment steps", ylabel="success rate", ylim=(-0.02, 1.02), title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    written = atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    plt.close(figure)
    return written


def first_reaching(history: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The first evaluation at or above `target` (step and wall time), or None."""
    return next((h for h in history if h["eval_success"] >= target), None)


def _rate(row: dict[str, Any]) -> str:
    low, high = row["ci95"]
    return f"{row['successes']}/{row['episodes']} ({row['rate']:.0%}, 95% CI [{low:.2f}, {high:.2f}])"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Markdown tables of an evaluation summary: overall, per template, per argument."""
    lines = [f"Overall: {_rate(summary)}; mean episode length {summary['mean_steps']:.1f} steps.", "",
             "| template | success |", "|---|---|"]
    lines += [f"| `{name}` | {_rate(row)} |" for name, row in summary["by_template"].items()]
    lines += ["", "| arguments | success |", "|---|---|"]
    lines += [f"| {name} | {_rate(row)} |" for name, row in summary["by_argument"].items()]
    return lines


def write_report(path: str | Path, name: str, config: dict[str, Any], metrics: dict[str, Any],
                 evaluation: dict[str, Any] | None, command: str) -> Path:
    """`report.md`: how the run was made, how long it took, its curve and its evaluation."""
    history = metrics.get("history", [])
    lines = [f"# Training run `{name}`", "", f"Command: `{command}`", "",
             f"Task `{config['task']}`, obs mode `{config['obs_mode']}`, seed {config['seed']}, "
             f"{config['n_envs']} env(s), BC warm start: {'yes' if config['bc_warmstart'] else 'no'}.", "",
             f"Trained {metrics.get('steps', 0)} steps in {metrics.get('elapsed_s', 0.0) / 60:.1f} min "
             f"of wall time.", ""]
    if metrics.get("bc"):
        bc = metrics["bc"]
        lines += [f"BC warm start: {bc['samples']} expert samples from {bc['expert_episodes']} episodes "
                  f"({bc['expert_successes']} successful), final NLL {bc['curve'][-1]['nll']:.3f}, "
                  f"mean |action error| {bc['mean_abs_action_error']:.3f}, {bc['seconds']:.0f} s.", ""]
    if history:
        lines += ["![learning curve](plots/learning_curve.png)", "", "| step | minutes | eval success | 95% CI |",
                  "|---|---|---|---|"]
        lines += [f"| {h['step']} | {h['elapsed_s'] / 60:.1f} | {h['eval_success']:.2f} | "
                  f"[{h['eval_ci95'][0]:.2f}, {h['eval_ci95'][1]:.2f}] |" for h in history]
        lines.append("")
    if evaluation is not None:
        lines += ["## Evaluation (`embodia eval`)", "", f"Command: `{evaluation['command']}`", ""]
        lines += summary_lines(evaluation["summary"])
        videos = evaluation.get("videos", [])
        if videos:
            lines += ["", *[f"![episode](videos/{Path(v).name})" for v in videos]]
    return atomic_write_text(path, "\n".join(lines) + "\n")
