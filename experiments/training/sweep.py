"""`embodia sweep CONFIG.yaml`: a grid of trainings as Ray tasks, aggregated over seeds.

Each trial is an ordinary `embodia train` run in its own process and run folder, so it logs, checkpoints
and resumes exactly like a hand-started run. A trial whose folder already holds final metrics is not run
again; one with checkpoints but no final metrics is resumed. Killing a sweep and starting it again
therefore redoes nothing that finished.

The config file::

    name: reach_seeds            # sweep folder under runs_dir
    runs_dir: runs/sweeps        # optional
    train:                       # flags passed to every `embodia train` (optional)
      steps: 20000
      obs_mode: state
    grid:                        # the product of these lists is the set of trials
      task: [reach, push]
      seed: [0, 1, 2]
      learning_rate: [0.0003, 0.001]   # any other key becomes `--set key=value`
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from experiments.common.errors import InputError
from experiments.common.io import atomic_write, atomic_write_text
from experiments.common.jsonio import write_json
from experiments.common.names import plain_name
from experiments.common.stats import mean_std

TRAIN_FLAGS = {"steps", "obs_mode", "n_envs", "bc_warmstart", "encoder", "config"}
GRID_FLAGS = {"task", "seed", *TRAIN_FLAGS}


@dataclass(frozen=True)
class Trial:
    """One training run of the sweep."""

    name: str
    values: tuple[tuple[str, Any], ...]

    @property
    def group(self) -> str:
        """The trial's settings without the seed: trials of one group are aggregated over seeds."""
        return ", ".join(f"{k}={v}" for k, v in self.values if k != "seed")


@dataclass(frozen=True)
class Sweep:
    """A sweep read from its YAML file: base training settings and the trials to run under `runs_dir`."""
    name: str
    runs_dir: Path
    train: dict[str, Any]
    trials: tuple[Trial, ...]

    @property
    def folder(self) -> Path:
        """Folder holding the sweep's trial runs and its summary."""
        return self.runs_dir / self.name


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; errors name the offending key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
        raise InputError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict) or "name" not in data or "grid" not in data:
        found = sorted(data) if isinstance(data, dict) else data
        raise InputError(f"{path}: a sweep needs 'name' and 'grid' keys, got {found!r}")
    unknown = set(data) - {"name", "runs_dir", "train", "grid"}
    if unknown:
        raise InputError(f"{path}: unknown keys {sorted(unknown)}; expected name, runs_dir, train, grid")
    grid, train = data["grid"], data.get("train") or {}
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise InputError(f"{path}: 'grid' must map each key to a non-empty list, got {grid!r}")
    if "task" not in grid and "config" not in train:
        raise InputError(f"{path}: the grid needs a 'task' list (or train.config)")
    bad_train = set(train) - TRAIN_FLAGS
    if bad_train:
        raise InputError(f"{path}: unknown train flags {sorted(bad_train)}; expected some of {sorted(TRAIN_FLAGS)}")
    keys = list(grid)
    trials = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = tuple(zip(keys, combo, strict=True))
        slug = "_".join(f"{k}{v}" for k, v in values).replace("/", "-").replace(" ", "")
        trials.append(Trial(plain_name(slug, f"{path}: trial name"), values))
    name = plain_name(str(data["name"]), f"{path}: sweep name")
    return Sweep(name, Path(data.get("runs_dir", "runs/sweeps")), dict(train), tuple(trials))


def trial_command(sweep: Sweep, trial: Trial, resume: bool) -> list[str]:
    """The `embodia train` command line of one trial."""
    argv = [sys.executable, "-m", "experiments.cli", "train", "--name", trial.name, "--runs-dir",
            str(sweep.folder), "--quiet"]
    options = {**sweep.train, **{k: v for k, v in trial.values if k in GRID_FLAGS}}
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if key == "bc_warmstart":
            argv += [flag] if value else []
        else:
            argv += [flag, str(value)]
    argv += [f"--set={k}={v}" for k, v in trial.values if k not in GRID_FLAGS]
    return argv + (["--resume"] if resume else [])


def trial_status(sweep: Sweep, trial: Trial) -> str:
    """"done" (final metrics written), "partial" (a run folder exists: resume it) or "new".

    A trial killed before its first checkpoint has a folder but no checkpoint; `train --resume` starts it
    again from step 0 (a fresh `train` would refuse the existing folder).
    """
    folder = sweep.folder / trial.name
    metrics = folder / "metrics.json"
    if metrics.is_file():
        try:
            if "final_eval_success" in json.loads(metrics.read_text()):
                return "done"
        except json.JSONDecodeError:
            pass
    started = (folder / "config.yaml").is_file()
    return "partial" if started or ((folder / "checkpoints").is_dir() and any((folder / "checkpoints").iterdir())) \
        else "new"


def run_trial(sweep: Sweep, trial: Trial) -> dict[str, Any]:
    """Run (or resume, or skip) one trial in a subprocess; returns its final metrics."""
    status = trial_status(sweep, trial)
    if status != "done":
        log = sweep.folder / f"{trial.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            result = subprocess.run(trial_command(sweep, trial, resume=status == "partial"), stdout=handle,
                                    stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            return {"trial": trial.name, "error": f"train exited with {result.returncode}; see {log}"}
    metrics = json.loads((sweep.folder / trial.name / "metrics.json").read_text())
    return {"trial": trial.name, "status": status, "success": metrics["final_eval_success"],
            "ci95": metrics.get("final_eval_ci95"), "minutes": metrics.get("elapsed_s", 0) / 60}


def aggregate(sweep: Sweep, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std and a 95% t-interval of final success over the seeds of each group."""
    by_group: dict[str, list[float]] = {}
    for trial, result in zip(sweep.trials, results, strict=True):
        if "success" in result:
            by_group.setdefault(trial.group, []).append(float(result["success"]))
    rows = []
    for group, values in by_group.items():
        mean, std = mean_std(values)
        half = _t95(len(values) - 1) * std / math.sqrt(len(values)) if len(values) > 1 else float("nan")
        rows.append({"group": group, "seeds": len(values), "mean": mean, "std": std,
                     "ci95": [mean - half, mean + half], "values": values})
    return rows


def _t95(df: int) -> float:
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
    return table.get(df, 1.96)


def write_summary(sweep: Sweep, results: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """Write the sweep's summary (summary.md, summary.json, summary.png) and return its markdown table.

    The table holds one row per group of seeds; failed trials are listed below it with their errors.
    """
    lines = [f"# Sweep {sweep.name}", "", "| settings | seeds | success mean ± std | 95% CI (t) |", "|---|---|---|---|"]
    for row in rows:
        low, high = row["ci95"]
        lines.append(f"| {row['group']} | {row['seeds']} | {row['mean']:.2f} ± {row['std']:.2f} | "
                     f"[{low:.2f}, {high:.2f}] |")
    failed = [r for r in results if "error" in r]
    lines += [""] + [f"- {r['trial']}: {r['error']}" for r in failed]
    table = "\n".join(lines) + "\n"
    atomic_write_text(sweep.folder / "summary.md", table + "\n![success](summary.png)\n")
    write_json(sweep.folder / "summary.json", {"trials": results, "groups": rows})
    _plot(rows, sweep.folder / "summary.png")
    return table


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # constrained layout keeps the axis labels and the (wrapped) group names inside the figure
    figure, axis = plt.subplots(figsize=(max(4.0, 1.6 * len(rows)), 3.6), layout="constrained")
    axis.bar(range(len(rows)), [r["mean"] for r in rows], yerr=[r["std"] for r in rows], capsize=4)
    axis.set_xticks(range(len(rows)), [r["group"].replace(" ", "\n") for r in rows], fontsize=7)
    axis.set_ylabel("final success\n(mean ± std over seeds)")
    axis.set_ylim(0, 1.05)
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
