"""`embodia bench TARGET`: side-by-side benchmarks; each target is a module named in TARGETS."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
from pathlib import Path

TARGETS = {"env": "experiments.bench.env", "perception": "experiments.bench.perception",
           "train": "experiments.bench.train", "memory": "experiments.bench.memory", "scale": "experiments.bench.scale",
           "planner": "experiments.bench.planner", "feedback": "experiments.bench.feedback",
           "memory-instructions": "experiments.memory_bench.runner"}
"""Bench targets and the module that runs each (it defines `run(args)` and optionally `add_arguments`)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia bench` with a sub-command per target whose module imports (optional extras may be absent)."""
    parser = subparsers.add_parser("bench", help="run a benchmark (ratios measured side by side in one run)")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, module_name in TARGETS.items():
        try:
            if importlib.util.find_spec(module_name) is None:
                continue
        except ModuleNotFoundError:  # its package is absent
            continue
        module = importlib.import_module(module_name)
        sub = targets.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        sub.add_argument("--json-out", type=Path, default=None, help="also write the figures as JSON here")
        if hasattr(module, "add_arguments"):
            module.add_arguments(sub)
        sub.set_defaults(func=_runner(module))


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        figures = module.run(args)
        if args.json_out is not None:
            from experiments.common.io import atomic_write_text

            atomic_write_text(args.json_out, json.dumps(figures, indent=2, default=float))
        return 0

    return run
