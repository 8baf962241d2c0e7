"""The `embodia` command line: the one place that owns the terminal and exit codes.

Error policy (scripts can tell a bad input from a bug by the exit code):

- **0**: the command did what was asked.
- **1**: the command ran, and what it measured failed (an episode that did not reach its goal, a failed
  sweep member); its output says what.
- **2**: bad user input. One line on stderr, ``embodia COMMAND: error: ...``, naming the problem. Bad input is
  an exception whose class carries the ``input_error`` mark (each package's ``errors.InputError`` /
  ``UnknownNameError``, `agent.errors.PlanningError`, ...), a file-system error about a path the user named
  (missing, a directory where a file was expected, no permission, already there), or an argparse error.
  With ``-v`` the full traceback is printed above the line.
- **3**: an internal error, i.e. a bug: the full traceback, then one line saying so. A plain ValueError, KeyError
  or TypeError from deep inside the code is a bug, not bad input: library code marks the input it refuses by
  raising its package's ``InputError``.
- **130**: interrupted (Ctrl-C, or SIGTERM, which is turned into the same exception so that atomic writers
  remove their temporary files).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

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
    "perceive_skill",
    "continual",
    "pretrain_perception",
    "collect_scenes",
    "train_estimator",
    "train_heading",
    "ask",
    "embed",
    "causal",
    "memory",
    "bench",
    "sweep",
)

# File-system errors about paths the user named; any other OSError is the environment's or the code's.
PATH_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
)
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """An argparse error (unknown option, bad value), raised instead of argparse's exit so `main` reports it.

    Attributes:
        prog: The (sub-)command whose arguments were wrong, e.g. ``embodia causal query``.
    """

    input_error = True

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` (one line, exit 2 through `main`) instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage block; the message names the option and the bad value."""
        raise UsageError(f"{message} (see `{self.prog} --help`)", self.prog)


def build_parser() -> argparse.ArgumentParser:
    """Collect every sub-command module that is present into one parser."""
    parser = _Parser(prog="embodia", description="Embodied-agent simulation platform.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level; tracebacks for every error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module_name = f"experiments.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is bad input (exit 2) rather than a bug (exit 3); see the module docstring."""
    return bool(getattr(type(error), "input_error", False)) or isinstance(error, PATH_ERRORS)


def format_user_error(error: BaseException) -> str:
    """The error's message on one line (KeyError's quotes removed, a path error's file named)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename}"
        if error.filename2 is not None:
            text += f" -> {error.filename2}"
    elif isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _verbose_requested(argv: Sequence[str]) -> bool:
    # Before parsing succeeds we still want `-v` to show the trace of a usage error.
    return any(arg in ("-v", "--verbose") for arg in argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `embodia` console script; returns the exit code (see the module docstring)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "embodia"
    verbose = _verbose_requested(argv)
    previous_sigterm = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"embodia {args.command}"
        verbose = args.verbose
        level = logging.INFO if args.verbose else logging.WARNING
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        from experiments.common import quiet

        quiet.configure(args.verbose)
        if _in_main_thread():
            previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        code = args.func(args)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as stop:  # argparse's --help exits 0; a command's own SystemExit keeps its code
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else EXIT_USER_ERROR)
    except Exception as error:  # the one place that classifies every failure
        if isinstance(error, UsageError):
            command = error.prog
        if is_user_error(error):
            if verbose:
                traceback.print_exc(file=sys.stderr)
            print(f"{command}: error: {format_user_error(error)}", file=sys.stderr)
            return EXIT_USER_ERROR
        traceback.print_exc(file=sys.stderr)
        print(f"{command}: internal error (a bug, please report it with the trace above): "
              f"{type(error).__name__}: {format_user_error(error)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return int(code or 0)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
