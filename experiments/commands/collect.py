"""`embodia collect`: scripted-expert demonstrations recorded as a Minari dataset.

Example: `embodia collect --skill pick --episodes N --start chain --obs-mode state --out DIR`;
`minari.load_dataset` reads the result with MINARI_DATASETS_PATH=DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.lazy import LazyChoices
from experiments.common.names import name_argument

TASK_NAMES = LazyChoices("envs.tasks", "TASK_NAMES")
"""The env's task names, imported on first use (importing envs loads pybullet)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `collect` sub-command."""
    parser = subparsers.add_parser("collect", help="record scripted-expert demonstrations as a Minari dataset")
    parser.add_argument("--skill", required=True, metavar="TASK",
                        help="env task, one of envs.TASK_NAMES (an unknown one is refused with the list)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes to record")
    parser.add_argument("--start", default="chain", help="episode starts: chain or reset")
    parser.add_argument("--prefix", default="scripted",
                        help="who runs the chain starts' sub-chains: scripted, learned (the shipped learned skills) "
                             "or mixed")
    parser.add_argument("--obs-mode", default="state", help="observation set: state or rgbd_touch")
    parser.add_argument("--seed", type=args_types.seed, default=0, help="episode i uses seed + i")
    parser.add_argument("--encoder", default="minilm", help="text encoder for the goal: minilm or hashing (tests)")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/datasets"),
                        help="Minari datasets root folder")
    parser.add_argument("--name", type=name_argument, default=None,
                        help="dataset name (default <skill>-<obs>-<start>-s<seed>)")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse an unknown skill, start mode, prefix runner or observation set before anything is built."""
    from experiments.imitation.dagger import START_MODES
    from experiments.imitation.learned_prefix import check_prefix
    from experiments.imitation.rollout import OBS_SETS

    if args.skill not in TASK_NAMES:
        raise InputError(f"unknown skill {args.skill!r}; expected one of: {', '.join(TASK_NAMES)}")
    if args.start not in START_MODES:
        raise InputError(f"unknown start mode {args.start!r}; expected one of: {', '.join(START_MODES)}")
    if args.obs_mode not in OBS_SETS:
        raise InputError(f"unknown observation set {args.obs_mode!r}; expected one of: {', '.join(OBS_SETS)}")
    check_prefix(args.prefix, args.start)
    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")


def run(args: argparse.Namespace) -> int:
    """Check the arguments (exit 2 on an unknown skill, start or observation set), then record the dataset."""
    check_arguments(args)
    from experiments.imitation.dataset import write_dataset
    from experiments.imitation.rollout import SkillEnv, rollout
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import default_text_encoder

    name = args.name or f"{args.skill}-{args.obs_mode}-{args.start}-s{args.seed}"
    table = EmbeddingTable.build(default_text_encoder(args.encoder), all_texts(args.skill), source=args.encoder)
    env = SkillEnv(args.skill, args.obs_mode, args.start, table, prefix=args.prefix)
    try:
        episodes = [rollout(env, args.seed + i) for i in range(args.episodes)]
    finally:
        env.close()
    starts = f"{args.start} starts" + (f", {args.prefix} prefix" if args.start == "chain" else "")
    path = write_dataset(args.out, name, episodes, env.observation_space, env.action_space,
                         description=f"scripted-expert demonstrations of {args.skill} ({args.obs_mode}, "
                                     f"{starts}), seeds {args.seed}..{args.seed + args.episodes - 1}",
                         algorithm="scripted-expert")
    wins = sum(e.success for e in episodes)
    print(f"{args.episodes} episodes ({sum(len(e) for e in episodes)} steps, expert succeeded in {wins}) -> {path}")
    print(f"load: MINARI_DATASETS_PATH={Path(args.out).resolve()} python -c \"import minari; "
          f"minari.load_dataset('embodia/{name}-v0')\"")
    return 0
