"""`embodia sweep CONFIG.yaml`: trainings over a grid, as Ray tasks (local Ray or a cluster)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia sweep` and its options (sweep YAML, Ray address, CPUs per trial, dry run)."""
    parser = subparsers.add_parser("sweep", help="run a grid of trainings with Ray and aggregate over seeds")
    parser.add_argument("config", type=Path, help="sweep YAML (see experiments/training/sweep.py)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster ('auto' or HOST:PORT); default: local")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves for each trial")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance")
    parser.add_argument("--dry-run", action="store_true", help="list the trials and their commands only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep's trials as Ray tasks and write its summary; --dry-run only lists them with their status.

    Returns 1 if any trial failed, else 0.
    """
    from tqdm import tqdm

    from experiments.training.sweep import aggregate, load_sweep, run_trial, trial_command, trial_status, write_summary

    sweep = load_sweep(args.config)
    if args.dry_run:
        for trial in sweep.trials:
            status = trial_status(sweep, trial)
            print(f"{status:8s} {' '.join(trial_command(sweep, trial, status == 'partial')[3:])}")
        return 0
    from experiments.common.distributed import init_ray

    ray = init_ray(args.ray_address, args.num_cpus)
    remote = ray.remote(num_cpus=args.cpus_per_trial)(run_trial)
    pending = {remote.remote(sweep, trial): index for index, trial in enumerate(sweep.trials)}
    results: list = [None] * len(sweep.trials)
    with tqdm(total=len(pending), desc=f"sweep {sweep.name}", unit="trial") as progress:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            results[index] = ray.get(done[0])
            progress.update()
    print(write_summary(sweep, results, aggregate(sweep, results)))
    print(f"summary: {sweep.folder / 'summary.md'}")
    return 1 if any("error" in r for r in results) else 0
