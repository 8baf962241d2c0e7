"""Causal feedback: success on choice-leaving instructions with and without a study's findings.

The scenario (worlds with a heavy, a slippery and a decoy block; a lift_height study per changed variable;
the same instructions without and with the findings) lives in `experiments.feedback.scenario`.
"""

from __future__ import annotations

import argparse

from experiments.feedback.scenario import CHOICE_INSTRUCTIONS, ScenarioConfig, format_summary, run_scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `embodia bench feedback`."""
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="one world per seed")
    parser.add_argument("--instructions", nargs="+", default=list(CHOICE_INSTRUCTIONS),
                        help="choice-leaving instructions to run in every world")
    parser.add_argument("--study-episodes", type=int, default=6, help="units per treatment value in each study")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm", help="planner text encoder")
    parser.add_argument("--max-replans", type=int, default=2,
                        help="replans allowed after a failed step (0: success at the first attempt)")
    parser.add_argument("--out", default="runs/feedback", help="folder for studies, stores, episodes, summary")


def run(args: argparse.Namespace) -> dict:
    """Run the scenario, print the table, return the summary."""
    config = ScenarioConfig(seeds=tuple(args.seeds), instructions=tuple(args.instructions),
                            study_episodes=args.study_episodes, encoder=args.encoder, max_replans=args.max_replans,
                            out=args.out)
    summary = run_scenario(config, progress=lambda message: print(f"[feedback] {message}", flush=True))
    print(format_summary(summary))
    print(f"details: {config.out}/summary.json, {config.out}/episodes.json")
    return summary
