"""`embodia bench TARGET`: side-by-side benchmarks; each target is a module named in TARGETS.

A target's module (numpy, PIL, the env, ...) is imported only when that target runs or shows its help, so
building the `embodia` parser stays cheap; its one-line help comes from the module's docstring, read as text.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.machinery
import importlib.util
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.jsonio import write_json

TARGETS = {"env": "experiments.bench.env", "perception": "experiments.bench.perception",
           "train": "experiments.bench.train", "memory": "experiments.bench.memory", "scale": "experiments.bench.scale",
           "planner": "experiments.bench.planner", "feedback": "experiments.bench.feedback",
           "memory-instructions": "experiments.memory_bench.runner", "startup": "experiments.bench.startup",
           "skills": "experiments.bench.skills"}
"""Bench targets and the module that runs each (it defines `run(args)` and optionally `add_arguments`)."""


def _target_parser_class(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """A subclass of `base` (the CLI's own parser class, with its error handling) that loads a target on first use."""

    class TargetParser(base):
        """A bench target's parser that imports the target's module and adds its arguments on first use."""

        def __init__(self, *args, module_name: str, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._module_name = module_name
            self._loaded = False

        def _load(self) -> None:
            if self._loaded:
                return
            self._loaded = True
            module = importlib.import_module(self._module_name)
            self.add_argument("--json-out", type=args_types.output_file, default=None,
                              help="also write the figures as JSON here")
            if hasattr(module, "add_arguments"):
                module.add_arguments(self)
            self.set_defaults(func=_runner(module))

        def parse_known_args(self, args=None, namespace=None):
            """Load the target, then parse as usual."""
            self._load()
            return super().parse_known_args(args, namespace)

        def format_help(self) -> str:
            """Load the target, then format its help."""
            self._load()
            return super().format_help()

        def format_usage(self) -> str:
            """Load the target, then format its usage line."""
            self._load()
            return super().format_usage()

    return TargetParser


def _summary(spec: importlib.machinery.ModuleSpec) -> str:
    """First line of a module's docstring, read from its source without importing it."""
    source = Path(spec.origin).read_text(encoding="utf-8") if spec.origin else ""
    return (ast.get_docstring(ast.parse(source)) or "").strip().splitlines()[0] if source else ""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bench` and one lazily loaded sub-parser per target module that is present."""
    parser = subparsers.add_parser("bench", help="run a benchmark (ratios measured side by side in one run)")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET",
                                    parser_class=_target_parser_class(type(parser)))
    for name, module_name in TARGETS.items():
        try:
            spec = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:  # its package is absent
            continue
        if spec is None:
            continue
        targets.add_parser(name, help=_summary(spec), module_name=module_name)


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        figures = module.run(args)
        if args.json_out is not None:
            write_json(args.json_out, figures)
        return 0

    return run
