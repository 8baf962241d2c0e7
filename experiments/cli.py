"""The `embodia` command line: the one place that owns the terminal and exit codes.

Library code raises; this module turns expected failures (bad input, missing files, unknown names)
into a one-line message on stderr and exit code 2, so scripts can tell user errors from crashes.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

# Sub-command modules under experiments/commands, in help order. Each defines register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "run",
    "plan",
    "eval_chains",
    "experts",
    "train",
    "evaluate",
    "convert_policy",
    "collect",
    "dagger",
    "eval_skill",
    "continual",
    "pretrain_perception",
    "collect_scenes",
    "train_estimator",
    "ask",
    "embed",
    "causal",
    "memory",
    "bench",
    "sweep",
)

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, TypeError)
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """Collect every sub-command module that is present into one parser."""
    parser = argparse.ArgumentParser(prog="embodia", description="Embodied-agent simulation platform.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module_name = f"experiments.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def _format_user_error(error: BaseException) -> str:
    # KeyError's str() adds quotes around the message; unwrap it for readability.
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `embodia` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from experiments.common import quiet

    quiet.configure(args.verbose)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"embodia {args.command}: error: {_format_user_error(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
