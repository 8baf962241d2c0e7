"""Planner accuracy and speed on the instruction sets, hashing vs MiniLM grounding side by side.

Accuracy: a goal case counts when the plan's goal equals the expected one and the symbolic checker
accepts the plan; a refusal case counts when the planner refuses naming the expected phrase.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
SETS = ("instructions", "instructions_heldout", "instructions_blind", "instructions_blind2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench planner`: which instruction sets and text encoders to score."""
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, help="instruction sets to score")
    parser.add_argument("--encoders", nargs="+", default=["hashing", "minilm"], choices=("hashing", "minilm"))
    parser.add_argument("--show-failures", action="store_true", help="list every failed case")


def run(args: argparse.Namespace) -> dict:
    """Score each set with each encoder; print a table; return the figures."""
    from agent.planner import GroundedPlanner
    from agent.planner.evaluation import evaluate, load_cases
    from perception.text import default_text_encoder

    figures: dict = {}
    for encoder_name in args.encoders:
        encoder = default_text_encoder(encoder_name)
        planner = GroundedPlanner(encoder)
        planner.plan("put the red block in the bowl")  # warm-up: embeds the exemplars and call texts once
        for name in args.sets:
            cases = load_cases(DATA / f"{name}.jsonl")
            start = time.perf_counter()
            report = evaluate(planner, cases)
            seconds = time.perf_counter() - start
            figures.setdefault(name, {})[encoder_name] = {
                "cases": len(report.results), "correct": sum(r.passed for r in report.results),
                "accuracy": report.accuracy, "ms_per_instruction": 1000 * seconds / max(len(report.results), 1),
                "failures": [{"instruction": f.instruction, "got": f.got, "expected": f.expected}
                             for f in report.failures],
            }
    _print_table(figures, args.encoders)
    if args.show_failures:
        for name, by_encoder in figures.items():
            for encoder_name, figure in by_encoder.items():
                for failure in figure["failures"]:
                    print(f"[{name}/{encoder_name}] {failure['instruction']!r}\n    got {failure['got']}\n"
                          f"    expected {failure['expected']}")
    return figures


def _print_table(figures: dict, encoders: list[str]) -> None:
    header = f"{'set':<22}{'cases':>7}" + "".join(f"{e + ' acc':>14}{e + ' ms':>12}" for e in encoders)
    print(header)
    print("-" * len(header))
    for name, by_encoder in figures.items():
        cases = next(iter(by_encoder.values()))["cases"]
        row = f"{name:<22}{cases:>7}"
        for encoder_name in encoders:
            figure = by_encoder[encoder_name]
            row += f"{figure['accuracy']:>14.1%}{figure['ms_per_instruction']:>12.1f}"
        print(row)
