r"""Aggregate several training runs (seeds) into one curve plot and a results row (for RESULTS.md).

    python -m experiments.training.summary --label "reach (state)" --out docs/results/reach.png \
        runs/reach_state_s0 runs/reach_state_s1 runs/reach_state_s2

Prints a markdown row: final evaluation success per seed (from `embodia eval` when present, else the
last training evaluation), mean ± std over seeds, pooled Wilson interval, training minutes, and the
time at which each seed's training evaluation first reached the target.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from experiments.common.jsonio import to_json_text
from experiments.common.stats import mean_std, wilson_interval
from experiments.training.report import first_reaching, plot_learning_curves


def run_figures(root: Path, target: float) -> dict[str, Any]:
    """One run's final success (eval.json preferred), episodes, minutes, and time to `target`."""
    metrics = json.loads((root / "metrics.json").read_text())
    evaluation = root / "eval.json"
    if evaluation.is_file():
        summary = json.loads(evaluation.read_text())["summary"]
        successes, episodes, source = summary["successes"], summary["episodes"], "embodia eval"
    else:
        last = metrics["history"][-1]
        episodes = last["eval_episodes"]
        successes, source = round(last["eval_success"] * episodes), "training eval"
    reached = first_reaching(metrics["history"], target)
    return {"run": root.name, "successes": successes, "episodes": episodes, "rate": successes / episodes,
            "source": source, "minutes": metrics["elapsed_s"] / 60, "steps": metrics["steps"],
            "target_minutes": reached["elapsed_s"] / 60 if reached else None,
            "target_steps": reached["step"] if reached else None, "history": metrics["history"]}


def summarize(roots: list[Path], target: float) -> dict[str, Any]:
    """Per-run figures for `roots` (one per seed), with mean ± std over seeds and the pooled Wilson interval."""
    rows = [run_figures(root, target) for root in roots]
    mean, std = mean_std([r["rate"] for r in rows])
    pooled = wilson_interval(sum(r["successes"] for r in rows), sum(r["episodes"] for r in rows))
    return {"rows": rows, "mean": mean, "std": std, "pooled_ci95": pooled,
            "minutes": mean_std([r["minutes"] for r in rows])}


def markdown_row(label: str, result: dict[str, Any], target: float) -> str:
    """The RESULTS.md table row for a `summarize` result, with each seed's time to reach `target`."""
    rows = result["rows"]
    per_seed = ", ".join(f"{r['rate']:.0%} ({r['successes']}/{r['episodes']})" for r in rows)
    reached = [r["target_minutes"] for r in rows]
    reach_text = ", ".join("never" if m is None else f"{m:.0f} min" for m in reached)
    low, high = result["pooled_ci95"]
    return (f"| {label} | {len(rows)} | {result['mean']:.1%} ± {result['std']:.1%} | [{low:.2f}, {high:.2f}] | "
            f"{per_seed} | {result['minutes'][0]:.0f} ± {result['minutes'][1]:.0f} min, "
            f"{rows[0]['steps']} steps | {target:.0%}: {reach_text} |")


def main() -> None:
    """Command line: print the results row for the run folders and plot their learning curves."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (one per seed)")
    parser.add_argument("--label", required=True, help="row label")
    parser.add_argument("--out", type=Path, required=True, help="PNG for the combined learning curves")
    parser.add_argument("--target", type=float, default=0.95, help="success target to time")
    args = parser.parse_args()
    result = summarize(args.runs, args.target)
    plot_learning_curves([(r["run"], r["history"]) for r in result["rows"]], args.out, args.label, args.target)
    print(markdown_row(args.label, result, args.target))
    print(to_json_text({k: v for k, v in result.items() if k != "rows"}, indent=None))


if __name__ == "__main__":
    main()
