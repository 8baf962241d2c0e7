"""argparse types shared by the sub-commands: values checked when the command line is read.

A bad value is reported by argparse as one line naming the option (exit 2) before anything is built or
written, instead of surfacing later as a library's traceback (gymnasium refuses a negative seed deep inside
``reset``; ``os.replace`` onto a directory names only its temporary file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

MAX_SEED = 2**32 - 1  # numpy's SeedSequence and gymnasium accept 0 .. 2**32 - 1 for every derived stream


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**32 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed must be an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, {MAX_SEED}], got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: episodes, chains, steps)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def output_file(text: str) -> Path:
    """A file to create or replace: not an existing directory, and its folder (if it exists) is a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; expected a file name to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a directory")
            break
    return path


def output_dir(text: str) -> Path:
    """A folder to write results into: missing (it is created) or an existing directory, never a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is an existing file; expected a directory for the results")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a directory")
            break
    return path
