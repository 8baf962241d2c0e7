"""Every `embodia ...` command the README shows parses: no missing required flag, no unknown option or choice.

A newcomer copies these lines first; argparse is the first thing they meet, so each line goes through the real
parser. Placeholders in capitals (INSTRUCTION, NAME, MODEL.json) are kept as they are: they are positional
values, which argparse does not check. `[--json]` optional parts are included, `a|b` alternatives are each tried.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
from pathlib import Path

import pytest

from experiments.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(text: str) -> list[str]:
    """The embodia command lines in the README's code spans and code blocks, alternatives expanded."""
    spans = re.findall(r"`(embodia [^`]+)`", text)
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.split("#")[0].strip())
    found = [*spans, *(line for line in lines if line.startswith("embodia "))]
    found = [line for line in found if not line.split()[1].endswith(":")]  # "embodia CMD: error: ..." is output
    commands = []
    for line in found:
        line = line.replace("\\|", "|").replace("[", "").replace("]", "")
        words = shlex.split(line)[1:]
        choices = [word.split("|") if "|" in word and not word.startswith("-") else [word] for word in words]
        commands.extend(" ".join(shlex.quote(w) for w in combo) for combo in itertools.product(*choices))
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_the_readme_shows_the_main_commands() -> None:
    shown = {shlex.split(command)[0] for command in COMMANDS}
    assert {"run", "plan", "eval-chains", "train", "causal", "memory", "bench", "sweep", "embed"} <= shown
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command: str) -> None:
    try:
        build_parser().parse_args(shlex.split(command))
    except (SystemExit, argparse.ArgumentError, Exception) as stop:  # argparse refuses by exiting or raising
        pytest.fail(f"README command `embodia {command}` does not parse: {stop!r}")


def test_the_check_refuses_a_command_missing_a_required_flag() -> None:
    # The README once showed `causal study` without its required --values; the parser must catch that.
    with pytest.raises((SystemExit, argparse.ArgumentError, Exception)):
        build_parser().parse_args(shlex.split("causal study --treatment red_block.mass --outcome push_distance"))
