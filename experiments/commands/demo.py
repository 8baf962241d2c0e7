"""`embodia demo`: the full agent loop on instructions of rising length, with GIFs and a report.

Skills default to `auto`: the shipped learned policies good enough from chain-like starts act first, the
scripted experts take the other skills and any call a learned policy failed in the episode (`--skills
scripted` runs the experts only, `--skills learned` the learned policies only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.kitchen import factory

DEMO_INSTRUCTIONS = (
    "put the red block in the bowl",
    "stack the blue block on the green block",
    "put the yellow block in the drawer and close it",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia demo` and its options (output folder, scene seed, instructions, agent options)."""
    parser = subparsers.add_parser("demo", help="run the agent on a few instructions; GIFs and report in --out")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--seed", type=args_types.seed, default=0, help="scene seed for every instruction")
    parser.add_argument("--gui", action="store_true",
                        help="watch the robot live in PyBullet's GUI window (needs a display; try xvfb-run -a)")
    parser.add_argument("instructions", nargs="*", default=list(DEMO_INSTRUCTIONS), help="instructions to run")
    factory.add_agent_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the agent on each instruction with GIFs and write report.md; returns 0 if every one succeeded, else 1."""
    from experiments.common.io import atomic_write_text
    from experiments.kitchen.episodes import describe, open_session, run_instruction

    session = open_session(factory.AgentOptions.from_args(args), record=True, gui=args.gui)
    rows = []
    try:
        for index, instruction in enumerate(args.instructions, start=1):
            record = run_instruction(session, instruction, args.seed, args.out, name=f"episode_{index}")
            print(describe(record))
            rows.append((index, record))
    finally:
        session.close()
    lines = ["# Embodia demo", "", f"Scene seed {args.seed}; skills: {args.skills}; planner: {args.planner}.", "",
             "| # | instruction | plan [policy] | result | steps | seconds | video |", "|---|---|---|---|---|---|---|"]
    for index, record in rows:
        plan = ", ".join(f"{s.call.skill}({', '.join(s.call.args)}) [{s.policy}]" for s in record.steps)
        lines.append(f"| {index} | {record.instruction} | {plan} | {'success' if record.success else 'failure'} | "
                     f"{sum(s.steps for s in record.steps)} | {record.seconds:.1f} | "
                     f"![episode {index}](episode_{index}.gif) |")
    lines += ["", "Each `episode_N.json` holds the full trace: plans with grounding and scores, every skill call,",
              "replans and their reasons, and the final symbolic facts."]
    atomic_write_text(args.out / "report.md", "\n".join(lines) + "\n")
    print(f"\nreport: {args.out / 'report.md'}")
    return 0 if all(record.success for _, record in rows) else 1
