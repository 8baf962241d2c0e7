"""A clause's roles, and what a goal maker may ask of the interpreter that calls it.

`agent.interpret` fills `Roles` and calls the goal makers of `agent.goal_makers` with itself; both sides
import this module, so neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent.chunking import Chunk, NounPhrase
from agent.grounding import Grounder, Scene
from agent.parsing import Clause


@dataclass
class Roles:
    """A clause's parts after chunking: object groups with destinations, and the rest."""

    groups: list[tuple[list[NounPhrase], Chunk | None]] = field(default_factory=list)
    sources: list[Chunk] = field(default_factory=list)
    unsupported: list[Chunk] = field(default_factory=list)
    withs: list[Chunk] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    particles: list[str] = field(default_factory=list)
    subject_is_object: bool = False

    @property
    def nps(self) -> list[NounPhrase]:
        """The noun phrases of every group, in the order typed (destinations left out)."""
        return [np for nps, _dest in self.groups for np in nps]

    @property
    def dests(self) -> list[Chunk]:
        """The destination chunks of the groups that have one, in order."""
        return [dest for _nps, dest in self.groups if dest is not None]


class ClauseInterpreter(Protocol):
    """The part of `agent.interpret.Interpreter` a goal maker uses: the scene and object resolution."""

    grounder: Grounder
    scene: Scene

    def objects(self, clause: Clause, nps: list[NounPhrase], slot: str, role: str = "object") -> list[str]:
        """The scene objects the noun phrases name, in the given slot."""
        ...

    def movables(self, clause: Clause, nps: list[NounPhrase], exclude: tuple[str, ...] = ()) -> list[str]:
        """The movable scene objects the noun phrases name."""
        ...

    def destination(self, clause: Clause, dest: Chunk, exclude: tuple[str, ...] = ()) -> str:
        """The scene object a destination chunk names."""
        ...
