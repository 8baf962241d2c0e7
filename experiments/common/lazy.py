"""Parser helpers that defer heavy imports until a sub-command actually needs them.

`embodia --help` builds every sub-command's parser; anything a parser imports at build time is paid by every
command, so choices that live in heavy packages (the env's task names import pybullet) are looked up on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator


class LazyChoices:
    """An argparse `choices` container that imports `module.attribute` the first time it is read.

    argparse only tests membership (`value in choices`) when the option is given and iterates the choices when
    that sub-command's help or an error message is formatted, so `embodia --help` never loads the module. Give
    the option a `metavar` (argparse formats the metavar when the option is added) and write `%(choices)s` in
    its help to list them.
    """

    def __init__(self, module: str, attribute: str) -> None:
        self._module = module
        self._attribute = attribute
        self._values: tuple[str, ...] | None = None

    def _load(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(getattr(importlib.import_module(self._module), self._attribute))
        return self._values

    def __contains__(self, value: object) -> bool:
        """Whether `value` is one of the choices."""
        return value in self._load()

    def __iter__(self) -> Iterator[str]:
        """The choices, in their module's order."""
        return iter(self._load())

    def __len__(self) -> int:
        """How many choices there are."""
        return len(self._load())

    def __repr__(self) -> str:
        """The choices as a tuple, for messages."""
        return repr(self._load())
