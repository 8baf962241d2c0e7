"""The study's report.md and plots (matplotlib, Agg backend, written atomically into the run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.common.io import atomic_write, atomic_write_text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: Path, config, metrics: dict[str, Any], observational: dict[str, np.ndarray]) -> Path:
    """Interventional truth with intervals, the SCM's curve, and the observational scatter."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    t, y = observational[config.treatment], observational[config.outcome]
    colour = observational.get(config.confounder) if config.confounder else None
    points = ax.scatter(t, y, c=colour, s=12, alpha=0.6, cmap="viridis", label="observational units")
    if colour is not None:
        fig.colorbar(points, ax=ax, label=config.confounder)
    curve = metrics["interventional_curve"]
    x = [row["value"] for row in curve]
    means = np.array([row["mean"] for row in curve])
    errors = np.array([[row["mean"] - row["ci_low"] for row in curve], [row["ci_high"] - row["mean"] for row in curve]])
    ax.errorbar(x, means, yerr=errors, fmt="o-", color="crimson", capsize=4, label="do() truth (95% CI)")
    ax.plot(x, [row["mean"] for row in metrics["scm_curve"]], "s--", color="black", label="study SCM")
    ax.set_xlabel(config.treatment)
    ax.set_ylabel(f"{config.outcome} (m)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110), suffix=".png")
    plt.close(fig)
    return path


def plot_counterfactual_errors(path: Path, rows: list[dict[str, float]]) -> Path | None:
    """Histogram of unit-level counterfactual errors vs the population-level prediction's errors."""
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    errors = np.array([r["error"] for r in rows]) * 1000
    baseline = np.array([r["population_error"] for r in rows]) * 1000
    bins = np.linspace(min(errors.min(), baseline.min()), max(errors.max(), baseline.max()), 25)
    ax.hist(baseline, bins=bins, alpha=0.5, label="population E[Y|do(v)] as the unit's prediction")
    ax.hist(errors, bins=bins, alpha=0.7, label="SCM counterfactual for the unit")
    ax.set_xlabel("prediction - simulator counterfactual (mm)")
    ax.set_ylabel("unit x value pairs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110), suffix=".png")
    plt.close(fig)
    return path


def _fmt(value: float | None, scale: float = 1000.0) -> str:
    return "n/a" if value is None else f"{value * scale:+.2f}"


def _ci(interval: list[float] | None, scale: float = 1000.0) -> str:
    return "n/a" if not interval else f"[{interval[0] * scale:+.2f}, {interval[1] * scale:+.2f}]"


def _estimates_table(metrics: dict[str, Any]) -> list[str]:
    effect, naive, adjusted = metrics["interventional_effect"], metrics["naive"], metrics["adjusted"]
    lines = [
        "| estimate | effect (mm) | 95% interval (mm) | error vs truth (mm) | method | adjustment set |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| interventional truth | {_fmt(effect['answer'])} | {_ci(effect['ci'])} | 0 | {effect['method']} | - |",
    ]
    for name, row in (("observational, naive", naive), ("observational, adjusted", adjusted)):
        lines.append(
            f"| {name} | {_fmt(row.get('answer'))} | {_ci(row.get('ci'))} | {_fmt(row.get('error'))} | "
            f"{row.get('method')} | {row.get('adjustment_set')} |"
        )
    support = adjusted.get("outside_support")
    if support is not None and support > 0.1:
        lines += [
            "",
            f"**Poor overlap**: {support:.0%} of the points at which the adjusted (g-formula) estimate "
            "evaluates its outcome model lie far from every observational unit (confounding this strong "
            "never shows some treatment values with some confounder values), so the adjusted estimate "
            "extrapolates there; its interval does not account for that.",
        ]
    return lines


def _curve_table(metrics: dict[str, Any], config) -> list[str]:
    lines = [
        f"| {config.treatment} | E[{config.outcome} \\| do] (mm) | 95% CI (mm) | units | study SCM (mm) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row, scm in zip(metrics["interventional_curve"], metrics["scm_curve"], strict=True):
        lines.append(
            f"| {row['value']:g} | {row['mean'] * 1000:.2f} | [{row['ci_low'] * 1000:.2f}, "
            f"{row['ci_high'] * 1000:.2f}] | {row['n']} | {scm['mean'] * 1000:.2f} |"
        )
    return lines


def _counterfactual_lines(summary: dict[str, Any]) -> list[str]:
    if not summary.get("n"):
        return ["No counterfactual units were recorded (--cf-units 0)."]
    quantiles = summary["quantiles_abs_error"]
    return [
        f"{summary['n']} (unit, value) pairs. Each recorded observational unit was replayed under every treatment "
        "value from its saved start: with `restore_state()` + do() via `set_variables`, and by rebuilding the unit "
        "from its seed + the same do() (bit-exact). The rebuilt replay is the ground truth below.",
        "",
        f"- SCM counterfactual error: mean |e| = {summary['mean_abs_error'] * 1000:.2f} mm, median "
        f"{summary['median_abs_error'] * 1000:.2f} mm, 90th percentile {quantiles['0.9'] * 1000:.2f} mm, "
        f"max {quantiles['1.0'] * 1000:.2f} mm",
        f"- population prediction (E[Y | do(v)] from the SCM, ignoring the unit): mean |e| = "
        f"{summary['population_mean_abs_error'] * 1000:.2f} mm",
        f"- replay under the factual value: rebuilt differs from the factual run by at most "
        f"{summary['rebuild_replay_max_abs_difference']:.1e} m; restored by at most "
        f"{summary['restore_replay_max_abs_difference']:.1e} m",
        f"- restored vs rebuilt counterfactuals: mean |difference| {summary['restore_vs_rebuild_mean_abs'] * 1000:.2f} "
        f"mm, max {summary['restore_vs_rebuild_max_abs'] * 1000:.2f} mm (how far `restore_state` is from exact "
        "re-simulation for this contact-rich outcome)",
    ]


def _header(config, metrics: dict[str, Any]) -> list[str]:
    return [
        f"# Causal study: {config.treatment} -> {config.outcome}",
        "",
        f"Scene `{config.scene}`; outcome procedure `{config.outcome}` on `{config.pushed_object()}` "
        f"(direction {config.direction}); confounder: `{config.confounder or 'none'}` (strength "
        f"{config.confounding_strength:g}); {config.episodes} units per value, {metrics['n_observational']} "
        f"observational units, seed {config.seed}. Faulty (excluded) units: {metrics['faults']}.",
        "",
    ]


def write_report(
    out: Path,
    config,
    metrics: dict[str, Any],
    facts: list[dict[str, Any]],
    observational: dict[str, np.ndarray],
    cf_rows: list[dict[str, float]],
    raw_scm: dict,
) -> Path:
    """Write plots and report.md into the run folder."""
    plot_curves(out / "interventional_curve.png", config, metrics, observational)
    has_cf = plot_counterfactual_errors(out / "counterfactual_errors.png", cf_rows) is not None
    effect = metrics["interventional_effect"]
    lines = [
        *_header(config, metrics),
        "## Interventional curve (ground truth by do())",
        "",
        *_curve_table(metrics, config),
        "",
        "![interventional curve](interventional_curve.png)",
        "",
        f"## Effect of moving {config.treatment} from {effect['low']:g} to {effect['high']:g}",
        "",
        *_estimates_table(metrics),
        "",
        "## Ground-truth counterfactuals",
        "",
        *_counterfactual_lines(metrics["counterfactual"]),
        "",
    ]
    if has_cf:
        lines += ["![counterfactual errors](counterfactual_errors.png)", ""]
    lines += [
        "## Study SCM (`study_scm.json`)",
        "",
        "```",
        _scm_summary(raw_scm),
        "```",
        "",
        "## Facts (`facts.json`)",
        "",
    ]
    lines += [
        f"- {f['subject']} **{f['relation']}** {f['object']}: {f['effect_size'] * 1000:+.2f} mm "
        f"(95% {_ci(f['interval'])} mm, n={f['n']})"
        for f in facts
    ]
    return atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def _scm_summary(raw: dict) -> str:
    lines = []
    for node, equation in raw["equations"].items():
        expr = equation["expr"]
        shown = expr if len(expr) < 160 else expr[:157] + "..."
        lines.append(f"{node} <- {equation['parents']}: {shown} + N(0, {equation['noise_std']:.4g}^2)")
    return "\n".join(lines)
