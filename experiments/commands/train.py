"""`embodia train --task TASK`: PPO with language goals; see experiments/training/train.py for the run folder."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.lazy import LazyChoices
from experiments.common.names import name_argument

# Looked up when `train` parses or shows its help: the env's modules import pybullet.
_TASK_NAMES = LazyChoices("envs.tasks", "TASK_NAMES")
_OBS_MODES = LazyChoices("envs.observation", "OBS_MODES")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia train` and its options; repeated --set KEY=VALUE overrides config fields."""
    parser = subparsers.add_parser("train", help="train a language-conditioned PPO skill policy")
    parser.add_argument("--task", choices=_TASK_NAMES, default=None, metavar="TASK",
                        help="env task, one of %(choices)s; one policy covers all its arguments "
                             "(required unless --resume)")
    parser.add_argument("--config", default=None, help="config name in experiments/configs or a YAML path "
                                                       "(default: the task's own)")
    parser.add_argument("--obs-mode", choices=_OBS_MODES, default=None, metavar="MODE",
                        help="observation mode, one of %(choices)s (default: config's)")
    parser.add_argument("--n-envs", type=int, default=None, help="parallel envs (worker processes when > 1)")
    parser.add_argument("--steps", type=args_types.positive_int, default=None,
                        help="total environment steps, rounded UP to whole rollouts (n_steps x n_envs); the run "
                             "says so when it rounds, and metrics.json records requested_steps and steps")
    parser.add_argument("--seed", type=args_types.seed, default=None, help="random seed")
    parser.add_argument("--name", type=name_argument, default=None,
                        help="run name: a plain folder name under --runs-dir (no / or ..); default from the task")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders live")
    parser.add_argument("--resume", action="store_true",
                        help="continue the named run from its newest good checkpoint (a damaged newest one is "
                             "skipped with a warning; a run stopped before its first checkpoint starts again "
                             "from step 0, and says so; a missing run is an error)")
    parser.add_argument("--bc-warmstart", action="store_true", default=None,
                        help="behaviour-clone the scripted expert before PPO")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default=None,
                        help="instruction encoder (hashing: fast, for tests)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set learning_rate=1e-4 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _flags(args: argparse.Namespace) -> dict[str, object]:
    return {"task": args.task, "obs_mode": args.obs_mode, "n_envs": args.n_envs, "total_steps": args.steps,
            "seed": args.seed, "bc_warmstart": args.bc_warmstart, "encoder": args.encoder}


def default_name(config) -> str:
    """Run folder name for a new run: task, observation mode, seed, and `_bc` when BC warm-starts it."""
    suffix = "_bc" if config.bc_warmstart else ""
    return f"{config.task}_{config.obs_mode}_s{config.seed}{suffix}"


def _remove_unstarted_run(paths) -> None:
    """Remove a run folder this command created if it failed before its first checkpoint.

    Otherwise the half-made folder (config.yaml, no checkpoint) would make the corrected re-run fail with
    "already exists" and a `--resume` start from step 0. A folder that holds a checkpoint is kept.
    """
    import shutil

    has_checkpoint = paths.checkpoints.is_dir() and any(paths.checkpoints.iterdir())
    if not has_checkpoint:
        shutil.rmtree(paths.root, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    """Start a new training run, or continue one with --resume, and print where its results are.

    Raises ValueError for missing --task or --name; returns 1 when an env worker crashed, else 0.
    """
    from experiments.training.config import load_config, parse_assignments
    from experiments.training.train import open_run, train
    from experiments.training.vec import EnvWorkerError

    assignments = parse_assignments(args.assignments)
    command = "embodia " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "embodia train"
    if args.resume:
        if args.name is None:
            raise InputError("--resume needs the --name of the run to continue")
        config, paths, checkpoint = open_run(args.name, args.runs_dir, True, None, {**assignments, **_flags(args)})
    else:
        if args.task is None and args.config is None:
            raise InputError(f"--task is required; valid tasks: {', '.join(_TASK_NAMES)}")
        config = load_config(args.config or args.task, assignments, _flags(args))
        config, paths, checkpoint = open_run(args.name or default_name(config), args.runs_dir, False, config)
    for reason in checkpoint.skipped if checkpoint else ():
        print(f"embodia train: warning: {reason}; falling back to the previous good checkpoint", file=sys.stderr)
    if args.resume and checkpoint is None:
        print(f"embodia train: note: run {paths.root} has no checkpoint to resume (it stopped before its first, "
              f"due at step {config.rounded(config.checkpoint_every)}): starting it again from step 0 with its "
              f"stored config", file=sys.stderr)
    total = config.rounded(config.total_steps)
    if total != config.total_steps:
        print(f"embodia train: note: {config.total_steps:,} steps rounded up to {total:,}, whole rollouts of "
              f"n_steps x n_envs = {config.n_steps} x {config.n_envs} (metrics.json records both)", file=sys.stderr)
    print(f"run {paths.root}: {config.task} / {config.obs_mode}, {total} steps, "
          f"{config.n_envs} env(s), seed {config.seed}"
          + (f", resuming at step {checkpoint.step}" if checkpoint else ""))
    made_folder = not paths.root.exists()
    try:
        summary = train(config, paths, checkpoint, progress=not args.quiet, command=command)
    except EnvWorkerError as error:
        print(f"embodia train: error: {error}", file=sys.stderr)
        return 1
    except Exception:
        if made_folder:
            _remove_unstarted_run(paths)
        raise
    print(f"done: {summary['steps']} steps in {summary['elapsed_s'] / 60:.1f} min "
          f"({summary['steps_per_second']:.0f} steps/s); final eval success {summary['final_eval_success']:.2f} "
          f"[{summary['final_eval_ci95'][0]:.2f}, {summary['final_eval_ci95'][1]:.2f}]")
    print(f"policy: {paths.policy}  report: {paths.report}  tensorboard: tensorboard --logdir {paths.tb}")
    return 0
