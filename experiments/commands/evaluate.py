"""`embodia eval --run NAME`: success rate with Wilson 95% CIs per template and argument, videos, curve.

`--ship` then copies the run's policy and card (with this evaluation and both commands) into
`agent/skill_policies/` as `<task>.safetensors` / `<task>.json`, where the agent's `--skills learned|auto` finds it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.distributed import add_ray_arguments
from experiments.common.errors import InputError
from experiments.common.names import name_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia eval` and its options (run, episodes, videos, seed, shipping, Ray)."""
    parser = subparsers.add_parser("eval", help="evaluate a trained run: success with 95%% CIs, videos, curve")
    parser.add_argument("--run", required=True, type=name_argument, help="run name (a folder under --runs-dir)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders live")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes (balanced over arguments)")
    parser.add_argument("--videos", type=int, default=3, help="episodes to save as GIFs")
    parser.add_argument("--seed", type=args_types.seed, default=None,
                        help="first episode seed (default: the fixed eval seed)")
    parser.add_argument("--ship", action="store_true", help="copy the policy and its card into --policy-dir")
    parser.add_argument("--policy-dir", type=Path, default=None, help="where shipped policies go "
                                                                      "(default: agent/skill_policies)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate a trained run, print its summary and report path, and ship the policy when asked; returns 0."""
    from experiments.training.report import summary_lines
    from experiments.training.run_eval import evaluate_run, ship_policy

    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    command = "embodia " + shlex.join(sys.argv[1:]) if sys.argv[1:] else f"embodia eval --run {args.run}"
    result = evaluate_run(args.runs_dir / args.run, args.episodes, args.videos, args.seed, command,
                          progress=not args.quiet, ray=args.ray, ray_address=args.ray_address,
                          ray_workers=args.ray_workers)
    print("\n".join(summary_lines(result["summary"])))
    print(f"\nreport: {args.runs_dir / args.run / 'report.md'}")
    if args.ship:
        shipped = ship_policy(args.runs_dir / args.run, args.policy_dir)
        print(f"shipped: {shipped}")
    return 0
