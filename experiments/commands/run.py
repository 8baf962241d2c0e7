"""`embodia run "INSTRUCTION"`: plan and execute one instruction in the kitchen, with a trace and a GIF."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.kitchen import factory


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia run` and its options (instruction, scene seed, output, video, agent options)."""
    parser = subparsers.add_parser("run", help="plan and execute one instruction in the kitchen")
    parser.add_argument("instruction", help='e.g. "put the yellow block in the drawer"')
    parser.add_argument("--seed", type=args_types.seed, default=0, help="scene seed")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/run"),
                        help="folder for episode.json / episode.gif")
    parser.add_argument("--no-video", action="store_true", help="skip the GIF (faster)")
    parser.add_argument("--gui", action="store_true",
                        help="watch the robot live in PyBullet's GUI window (needs a display; try xvfb-run -a)")
    factory.add_agent_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the instruction was accomplished, 1 when execution failed, 2 when it was refused."""
    from experiments.kitchen.episodes import describe, open_session, run_instruction

    session = open_session(factory.AgentOptions.from_args(args), record=not args.no_video, gui=args.gui)
    try:
        record = run_instruction(session, args.instruction, args.seed, args.out)
    finally:
        session.close()
    print(describe(record))
    print(f"trace: {args.out / 'episode.json'}" + ("" if args.no_video else f"  video: {args.out / 'episode.gif'}"))
    return 0 if record.success else 1
