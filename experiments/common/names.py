"""Run names: plain folder names under a runs directory, never a path that escapes it.

A run name becomes ``<runs_dir>/<name>``; ``../../x``, ``/tmp/x`` or ``a/b`` would write outside the runs folder
(or into another run's), and the README tells cluster users to copy run folders between machines, where such a
name would land anywhere. `plain_name` refuses them before any folder is made.
"""

from __future__ import annotations

import re

from experiments.common.errors import InputError

MAX_NAME_LENGTH = 200
_BAD_CHARACTERS = re.compile(r"[/\\\x00-\x1f\x7f]")


def plain_name(name: str, what: str = "run name") -> str:
    """Return `name` if it is one plain folder name; raise InputError naming the problem otherwise.

    Refused: the empty name, ``.`` and ``..``, path separators (forward or backward slash, hence absolute paths),
    control characters, a leading ``-`` (it would read as an option) and names over 200 characters.
    """
    text = str(name)
    if not text or text.strip() != text:
        problem = "is empty" if not text.strip() else "starts or ends with white space"
    elif text in (".", ".."):
        problem = "is a relative path (. or ..), not a name"
    elif text.startswith(("/", "\\")):
        problem = "is an absolute path, not a name"
    elif _BAD_CHARACTERS.search(text):
        problem = "contains a path separator or a control character"
    elif text.startswith("-"):
        problem = "starts with '-'"
    elif len(text) > MAX_NAME_LENGTH:
        problem = f"is longer than {MAX_NAME_LENGTH} characters"
    else:
        return text
    raise InputError(f"{what} {text[:80]!r} {problem}; use a plain folder name such as 'reach_s0' "
                     f"(runs live under the runs folder)")


def name_argument(text: str) -> str:
    """An argparse `type=` for run names: the same check, reported as a usage error (one line, exit 2)."""
    import argparse

    try:
        return plain_name(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
