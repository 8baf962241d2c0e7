"""`embodia experts`: success rate of every scripted expert over seeded episodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.io import atomic_write_text
from experiments.common.jsonio import write_json
from experiments.common.stats import wilson_interval


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia experts` and its options (episodes per task, tasks, first seed, output folder)."""
    parser = subparsers.add_parser("experts", help="measure the scripted experts' success rates")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task")
    parser.add_argument("--tasks", default="all", help="comma-separated task names, or 'all'")
    parser.add_argument("--seed", type=args_types.seed, default=0, help="first episode seed")
    parser.add_argument("--start", default="reset", choices=("reset", "chain"),
                        help="episode starts: the plain reset, or chain-like starts (where 0-4 random scripted "
                             "instructions leave the kitchen; places start with the object held)")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/experts"),
                        help="folder for results.json / .md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every chosen task's scripted expert over seeded episodes; print and write the success table.

    Raises ValueError for an unknown task name or --episodes below 1; returns 0.
    """
    from tqdm import tqdm

    from envs.household import HouseholdEnv
    from envs.tasks import TASK_NAMES
    from experiments.kitchen.rollouts import run_expert_episode

    tasks = list(TASK_NAMES) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",")]
    unknown = sorted(set(tasks) - set(TASK_NAMES))
    if unknown:
        raise InputError(f"unknown tasks {unknown}; valid tasks: {', '.join(TASK_NAMES)}")
    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    results = {}
    for task in tasks:
        env = HouseholdEnv(task=task, start=args.start)
        try:
            outcomes = [run_expert_episode(task, args.seed + i, env=env) for i in tqdm(range(args.episodes), desc=task)]
        finally:
            env.close()
        wins = sum(o["success"] for o in outcomes)
        low, high = wilson_interval(wins, len(outcomes))
        results[task] = {"episodes": len(outcomes), "successes": wins, "rate": wins / len(outcomes),
                         "ci95": [low, high], "mean_steps": sum(o["steps"] for o in outcomes) / len(outcomes),
                         "failures": [o["task"] + f" seed={o['seed']}" for o in outcomes if not o["success"]]}
    lines = ["| task | success | 95% CI (Wilson) | mean steps |", "|---|---|---|---|"]
    for task, row in results.items():
        lines.append(f"| {task} | {row['successes']}/{row['episodes']} ({row['rate']:.0%}) | "
                     f"[{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}] | {row['mean_steps']:.1f} |")
    table = "\n".join(lines)
    print(table)
    write_json(args.out / "results.json", results)
    seeds = f"{args.start} starts, seeds {args.seed}..{args.seed + args.episodes - 1}"
    atomic_write_text(args.out / "results.md", f"# Scripted experts\n\n{seeds}\n\n{table}\n")
    return 0
