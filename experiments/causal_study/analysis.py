"""Analysis of a collected simulator study: truth vs estimates, the study SCM, counterfactual errors, facts.

Separated from the collection (`causal_study`) so the numbers can be recomputed from saved records and
tested without the simulator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from causal.data import write_csv
from causal.jsonfile import dumps_strict
from causal.spec import parse_scm
from experiments.causal_study import stats as st
from experiments.causal_study.config import config_dict
from experiments.common.io import atomic_write_text

logger = logging.getLogger(__name__)
Records = dict[str, list[dict[str, Any]]]


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not r["fault"] and np.isfinite(r["outcome"])]


def _columns(config, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    columns = {
        config.treatment: np.array([r["treatment"] for r in rows]),
        config.outcome: np.array([r["outcome"] for r in rows]),
    }
    if config.confounder:
        columns[config.confounder] = np.array([r["confounder"] for r in rows])
    return columns


def _write_data(out: Path, config, records: Records) -> Path:
    for regime in ("observational", "interventional"):
        rows = _clean(records[regime])
        columns = {"seed": [r["seed"] for r in rows], **{k: v.tolist() for k, v in _columns(config, rows).items()}}
        write_csv(out / f"{regime}.csv", columns)
    return out / "observational.csv"


def _truth(config, rows: list[dict[str, Any]]) -> tuple[list[dict[str, float]], dict[str, Any]]:
    by_value: dict[float, dict[int, float]] = {float(v): {} for v in config.values}
    for row in rows:
        by_value[float(row["treatment"])][row["seed"]] = row["outcome"]
    curve = st.interventional_curve(config.values, {v: list(d.values()) for v, d in by_value.items()})
    low, high = min(config.values), max(config.values)
    effect, lo, hi, n = st.paired_contrast(by_value[high], by_value[low])
    return curve, {
        "answer": effect,
        "ci": [lo, hi],
        "n_units": n,
        "low": low,
        "high": high,
        "method": "interventional (paired do() through env variables)",
    }


def _score(estimate: dict[str, Any], truth: float) -> dict[str, Any]:
    if estimate.get("answer") is None:
        return {**estimate, "error": None}
    return {**estimate, "error": estimate["answer"] - truth}


def _estimates(config, scm, obs_path: Path, observational: dict[str, np.ndarray], effect: dict[str, Any]):
    low, high = effect["low"], effect["high"]
    t, y = observational[config.treatment], observational[config.outcome]
    naive = _score(st.naive_contrast(t, y, low, high, config.seed), effect["answer"])
    observed = [n for n in (config.confounder, config.treatment, config.outcome) if n]
    adjusted = _score(
        st.adjusted_contrast(scm, obs_path, config.treatment, config.outcome, observed, low, high, config.seed),
        effect["answer"],
    )
    return naive, adjusted


def _scm_curve(scm, config) -> list[dict[str, float]]:
    from causal.queries import answer_query

    rows = []
    for value in config.values:
        answer = answer_query(
            scm,
            {
                "type": "interventional_mean",
                "target": config.outcome,
                "do": {config.treatment: value},
                "samples": 200_000,
            },
        )
        rows.append({"value": float(value), "mean": answer["answer"], "standard_error": answer["standard_error"]})
    return rows


def _counterfactual_summary(rows: list[dict[str, float]], units: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n": 0}
    errors = np.array([r["error"] for r in rows])
    baseline = np.array([r["population_error"] for r in rows])
    restore_gap = np.array([r["restored_truth"] - r["truth"] for r in rows])
    return {
        "n": len(rows),
        "mean_abs_error": float(np.abs(errors).mean()),
        "median_abs_error": float(np.median(np.abs(errors))),
        "rmse": float(np.sqrt((errors**2).mean())),
        "quantiles_abs_error": {q: float(np.quantile(np.abs(errors), float(q))) for q in ("0.5", "0.9", "1.0")},
        "population_mean_abs_error": float(np.abs(baseline).mean()),
        "rebuild_replay_max_abs_difference": float(max(abs(u["replay_difference"]) for u in units)),
        "restore_replay_max_abs_difference": float(max(abs(u["restore_replay_difference"]) for u in units)),
        "restore_vs_rebuild_mean_abs": float(np.abs(restore_gap).mean()),
        "restore_vs_rebuild_max_abs": float(np.abs(restore_gap).max()),
    }


def _facts(config, effect, naive, adjusted, run: str) -> list[dict[str, Any]]:
    details = {
        "estimand": f"E[{config.outcome} | do({config.treatment}={effect['high']})] - "
        f"E[{config.outcome} | do({config.treatment}={effect['low']})]",
        "method": effect["method"],
        "scene": config.scene,
        "outcome_procedure": config.outcome,
    }
    facts = [
        st.fact_record(
            config.treatment,
            config.outcome,
            effect["answer"],
            tuple(effect["ci"]),
            effect["n_units"],
            run,
            details=details,
        )
    ]
    if config.confounder:
        bias = naive["answer"] - effect["answer"]
        facts.append(
            st.fact_record(
                config.confounder,
                f"{config.treatment} -> {config.outcome}",
                bias,
                (naive["ci"][0] - effect["answer"], naive["ci"][1] - effect["answer"]),
                config.n_observational,
                run,
                relation="confounds",
                details={
                    "meaning": "naive observational contrast minus interventional truth",
                    "adjusted_error": adjusted.get("error"),
                    "adjustment_set": adjusted.get("adjustment_set"),
                },
            )
        )
    return facts


def _write_counterfactuals(out: Path, rows: list[dict[str, float]]) -> None:
    if rows:
        write_csv(out / "counterfactuals.csv", {k: [r[k] for r in rows] for k in rows[0]})


def analyse(config, records: Records, out: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """Compute every number of the study and write the run folder."""
    from experiments.causal_study.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    obs_path = _write_data(out, config, records)
    observational = _columns(config, _clean(records["observational"]))
    pooled_rows = _clean(records["observational"]) + _clean(records["interventional"])
    curve, effect = _truth(config, _clean(records["interventional"]))
    raw_scm = st.fit_study_scm(
        f"study_{out.name}",
        config.treatment,
        config.outcome,
        config.confounder,
        observational,
        _columns(config, pooled_rows),
    )
    atomic_write_text(out / "study_scm.json", dumps_strict(raw_scm, indent=2))
    scm = parse_scm(raw_scm)
    progress("estimating from observational data")
    naive, adjusted = _estimates(config, scm, obs_path, observational, effect)
    units = [u for u in records["counterfactual"] if not u["fault"]]
    cf_rows = st.counterfactual_errors(
        scm, units, config.treatment, config.outcome, config.confounder, [float(v) for v in config.values]
    )
    _write_counterfactuals(out, cf_rows)
    faults = {k: sum(r["fault"] for r in v) for k, v in records.items()}
    metrics = {
        "interventional_curve": curve,
        "interventional_effect": effect,
        "naive": naive,
        "adjusted": adjusted,
        "scm_curve": _scm_curve(scm, config),
        "faults": faults,
        "counterfactual": _counterfactual_summary(cf_rows, units),
        "n_observational": len(observational[config.treatment]),
    }
    facts = _facts(config, effect, naive, adjusted, str(out))
    atomic_write_text(out / "facts.json", dumps_strict(facts, indent=2))
    atomic_write_text(out / "metrics.json", dumps_strict(metrics, indent=2))
    atomic_write_text(out / "config.json", dumps_strict(config_dict(config), indent=2))
    write_report(out, config, metrics, facts, observational, cf_rows, raw_scm)
    return metrics
