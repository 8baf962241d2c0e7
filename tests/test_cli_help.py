"""Every help page renders: argparse formats help strings lazily, so a stray '%' only fails when a user asks."""

from __future__ import annotations

import argparse

import pytest

from experiments.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """The top-level parser and every nested sub-command parser, by their full command path."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    pending = [("embodia", build_parser())]
    while pending:
        path, parser = pending.pop()
        found.append((path, parser))
        pending.extend((f"{path} {name}", child) for name, child in _subparsers(parser).items())
    return found


def test_every_command_lists_its_subcommands() -> None:
    paths = {path for path, _ in _all_parsers()}
    for expected in ("embodia train", "embodia eval", "embodia bench env", "embodia causal query",
                     "embodia memory query", "embodia eval-chains"):
        assert expected in paths


@pytest.mark.parametrize(("path", "parser"), _all_parsers(), ids=lambda value: value if isinstance(value, str) else "")
def test_help_page_renders(path: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert text.startswith("usage: " + path.split(" ")[0])
