"""`embodia continual`: naive / replay / EWC through a task sequence, with Continual World metrics."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError

STRATEGY_CHOICES = ("naive", "replay", "ewc", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia continual` and its options (task sequence, strategies, steps, evaluation, seeds)."""
    parser = subparsers.add_parser("continual", help="continual learning through a task sequence")
    parser.add_argument("--tasks", default="reach,push,pick,open", help="comma-separated task sequence")
    parser.add_argument("--strategy", choices=STRATEGY_CHOICES, default="all", help="strategy, or all three")
    parser.add_argument("--steps-per-task", type=int, default=10_240,
                        help="PPO steps per task, after its grounding and behaviour-cloning warm starts")
    parser.add_argument("--eval-every", type=int, default=5_120, help="steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=20, help="episodes per task per evaluation")
    parser.add_argument("--bc-episodes", type=int, default=200,
                        help="expert episodes per task (warm start, replay memory, EWC Fisher states)")
    parser.add_argument("--ewc-weight", type=float, default=None, help="EWC penalty weight (default: built in)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of every task's training config, e.g. --set bc_epochs=10 (repeatable)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm", help="instruction encoder")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/continual"),
                        help="results folder (resumable)")
    parser.set_defaults(func=run)


def _parse(args: argparse.Namespace) -> tuple[list[str], list[str], list[int]]:
    from envs.tasks import TASK_NAMES

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASK_NAMES))
    if unknown or len(tasks) < 2:
        raise InputError(f"--tasks needs at least two of: {', '.join(TASK_NAMES)}; got {args.tasks!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise InputError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if args.steps_per_task < args.eval_every or args.steps_per_task % args.eval_every:
        raise InputError(f"--steps-per-task ({args.steps_per_task}) must be a multiple of --eval-every "
                         f"({args.eval_every})")
    strategies = ["naive", "replay", "ewc"] if args.strategy == "all" else [args.strategy]
    from experiments.continual.sequence import ContinualConfig, task_configs

    task_configs(ContinualConfig(tasks=tuple(tasks), settings=tuple(args.assignments)))  # bad --set: fail now
    return tasks, strategies, seeds


def run(args: argparse.Namespace) -> int:
    """Run each strategy (and a from-scratch reference per task) for every seed, then print the report.

    Returns 0; the runs, references and report are written under --out.
    """
    from tqdm import tqdm

    from experiments.continual.report import report
    from experiments.continual.sequence import ContinualConfig, ContinualRun, curves_of, run_reference
    from experiments.kitchen.factory import make_encoder

    tasks, strategies, seeds = _parse(args)
    encoder = make_encoder(args.encoder)
    total = args.steps_per_task * len(tasks) * (len(strategies) + 1) * len(seeds)
    results: dict[str, dict[int, dict]] = {}
    with tqdm(total=total, desc="continual", unit="step") as progress:
        for seed in seeds:
            base = ContinualConfig(tasks=tuple(tasks), steps_per_task=args.steps_per_task, eval_every=args.eval_every,
                                   eval_episodes=args.eval_episodes, bc_episodes=args.bc_episodes, seed=seed,
                                   encoder=args.encoder, settings=tuple(args.assignments))
            if args.ewc_weight is not None:
                base = replace(base, ewc_weight=args.ewc_weight)
            references = {task: run_reference(task, base, encoder, args.out / f"reference_{task}_seed{seed}",
                                              progress) for task in tasks}
            for strategy in strategies:
                config = replace(base, strategy=strategy)
                runner = ContinualRun(config, encoder, args.out / f"{strategy}_seed{seed}", progress)
                try:
                    state = runner.run()
                finally:
                    runner.close()
                results.setdefault(strategy, {})[seed] = {"curves": curves_of(state), "references": references}
    print(report(results, tasks, args.steps_per_task, args.out))
    return 0
