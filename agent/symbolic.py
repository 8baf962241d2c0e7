"""Symbolic states of the planning domain, the skills' preconditions and effects, and a plan checker.

The state is what the planner reasons over and what the environment reports as ``info["facts"]``:
lists like ``["in", "red_block", "bowl"]``, ``["on", "x", "table"]``, ``["open", "drawer"]``,
``["holding", "mug"]``, ``["gripper_empty"]``. `SymbolicState.from_facts` reads them, `to_facts` writes them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from agent.errors import InputError
from agent.skills import (
    BLOCKS,
    DIRECTIONS,
    MOVABLE,
    OBJECTS,
    PLACE_TARGETS,
    Predicate,
    SkillCall,
    check_object,
    place_relation,
)

logger = logging.getLogger(__name__)

FACT_FORMS = ("in(x, y), on(x, y), open(drawer), closed(drawer), holding(x), near(x), pushed(x, direction), "
              "gripper_empty, unknown(x), written as lists such as [\"in\", \"red_block\", \"bowl\"]")
"""The facts `SymbolicState.from_facts` reads (for error messages)."""

Location = tuple[str, str]
"""(relation, support): ``("in", "bowl")`` or ``("on", "table")``."""


@dataclass(frozen=True)
class SymbolicState:
    """What is where, what the gripper holds, whether the drawer is open.

    Attributes:
        objects: Object ids present in the scene (the table always is).
        locations: ``(object, relation, support)`` for every movable object that is not held, sorted.
        holding: The held object, or None when the gripper is empty.
        drawer_open: Whether the drawer is open.
        near: The object `reach` last moved the gripper to; other skills move the gripper elsewhere and
            reset it to None.
        pushed: ``(object, direction)`` pairs: the last push of each object since it was last picked.
    """

    objects: frozenset[str]
    locations: tuple[tuple[str, str, str], ...]
    holding: str | None = None
    drawer_open: bool = False
    near: str | None = None
    pushed: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @classmethod
    def initial(cls, objects: Iterable[str] = OBJECTS) -> SymbolicState:
        """The domain's initial state: movables on the table, drawer closed, gripper empty."""
        present = _present(objects)
        return cls(present, tuple((x, "on", "table") for x in MOVABLE if x in present))

    @classmethod
    def from_facts(cls, facts: Iterable[Sequence[str]], objects: Iterable[str] | None = None) -> SymbolicState:
        """Read env-style facts; movables with no location fact are assumed on the table.

        ``["unknown", x]`` says x was not seen. With no remembered location filled in
        (`agent.recall.fill_unknowns`) and the drawer closed, x is assumed in the drawer: the one place the
        cameras cannot see into, so a plan that needs x opens the drawer first and the agent looks before it
        acts. With the drawer open (or no drawer) an unseen x is assumed on the table like any unlocated movable.

        Raises:
            ValueError: for a malformed fact or a predicate outside the planning domain, naming it.
        """
        facts = [list(f) for f in facts]
        mentioned = {str(a) for f in facts for a in f[1:] if a in OBJECTS}
        present = _present([*(objects if objects is not None else OBJECTS), *mentioned])
        builder = _FactReader(present)
        for fact in facts:
            builder.read(fact)
        return builder.build()

    def location(self, obj: str) -> Location | None:
        """(relation, support) of a movable object, or None when it is held or absent."""
        index = self.__dict__.get("_index")
        if index is None:  # built once per state: search asks this a lot
            index = {x: (rel, support) for x, rel, support in self.locations}
            object.__setattr__(self, "_index", index)
        return index.get(obj)

    def stacked_on(self, obj: str) -> list[str]:
        """Objects resting directly on or in `obj`."""
        return [x for x, _rel, support in self.locations if support == obj]

    def is_clear(self, obj: str) -> bool:
        """Nothing on top of (or inside) `obj`, and it is not held."""
        return self.holding != obj and not self.stacked_on(obj)

    def inside_drawer(self, obj: str) -> bool:
        """Whether `obj` is in the drawer, directly or on something that is."""
        seen: set[str] = set()
        while obj not in seen:
            seen.add(obj)
            loc = self.location(obj)
            if loc is None:
                return False
            if loc[1] == "drawer":
                return True
            obj = loc[1]
        return False

    def holds(self, predicate: Predicate) -> bool:
        """Whether a goal predicate is true in this state."""
        name, args = predicate.predicate, predicate.args
        if name in ("in", "on"):
            return self.location(args[0]) == (name, args[1])
        if name == "open":
            return self.drawer_open and "drawer" in self.objects
        if name == "closed":
            return not self.drawer_open and "drawer" in self.objects
        if name == "holding":
            return self.holding == args[0]
        if name == "near":
            return self.near == args[0]
        return (args[0], args[1]) in self.pushed

    def to_facts(self) -> list[list[str]]:
        """The state as env-style facts (the inverse of `from_facts`)."""
        facts = [[rel, x, support] for x, rel, support in self.locations]
        if "drawer" in self.objects:
            facts.append(["open" if self.drawer_open else "closed", "drawer"])
        facts.append(["holding", self.holding] if self.holding else ["gripper_empty"])
        if self.near:
            facts.append(["near", self.near])
        facts.extend(["pushed", x, d] for x, d in sorted(self.pushed))
        return facts

    def with_location(self, obj: str, location: Location | None) -> SymbolicState:
        """A copy with `obj` moved to `location` (None removes it, e.g. while held)."""
        rest = [entry for entry in self.locations if entry[0] != obj]
        if location is not None:
            rest.append((obj, *location))
        return replace(self, locations=tuple(sorted(rest)))


def _present(objects: Iterable[str]) -> frozenset[str]:
    names = [check_object(str(o), OBJECTS, "scene object") for o in objects]
    return frozenset([*names, "table"])


class _FactReader:
    """Accumulates facts into a state; the most specific location of each object wins."""

    _RANK: ClassVar[dict[str, int]] = {"drawer": 4, "bowl": 3, "plate": 1, "table": 0}

    def __init__(self, present: frozenset[str]) -> None:
        self.present = present
        self.locations: dict[str, Location] = {}
        self.holding: str | None = None
        self.drawer_open = False
        self.near: str | None = None
        self.pushed: set[tuple[str, str]] = set()
        self.unseen: list[str] = []

    def read(self, fact: list[str]) -> None:
        if not fact or not all(isinstance(part, str) for part in fact):
            raise InputError(f"a fact must be a non-empty list of strings, got {fact!r}")
        name, args = fact[0], fact[1:]
        if name in ("in", "on") and len(args) == 2:
            self._locate(args[0], (name, args[1]))
        elif name in ("open", "closed") and args == ["drawer"]:
            self.drawer_open = name == "open"
        elif name == "holding" and len(args) == 1:
            self.holding = check_object(args[0], MOVABLE, "held object")
        elif name == "near" and len(args) == 1:
            self.near = check_object(args[0], OBJECTS, "object of near")
        elif name == "pushed" and len(args) == 2:
            self.pushed.add((check_object(args[0], MOVABLE), check_object(args[1], DIRECTIONS, "direction")))
        elif name == "unknown" and len(args) == 1:
            self.unseen.append(check_object(args[0], MOVABLE, "unseen object"))
        elif not (name == "gripper_empty" and not args):
            raise InputError(f"unknown fact {fact!r}: expected one of {FACT_FORMS}")

    def _locate(self, obj: str, location: Location) -> None:
        if obj not in MOVABLE:
            return  # e.g. ["on", "bowl", "table"]: fixed objects need no location
        check_object(location[1], OBJECTS, "support")
        old = self.locations.get(obj)
        if old is None or self._rank(location[1]) > self._rank(old[1]):
            self.locations[obj] = location

    def _rank(self, support: str) -> int:
        return self._RANK.get(support, 2)  # a block or the mug sits between the plate and the bowl

    def build(self) -> SymbolicState:
        locations = {x: ("on", "table") for x in MOVABLE if x in self.present}
        if not self.drawer_open and "drawer" in self.present:
            locations.update({x: ("in", "drawer") for x in self.unseen if x in self.present})
        locations.update(self.locations)
        if self.holding is not None:
            locations.pop(self.holding, None)
        entries = tuple(sorted((x, rel, support) for x, (rel, support) in locations.items()))
        return SymbolicState(self.present, entries, self.holding, self.drawer_open, self.near, frozenset(self.pushed))


def precondition_failure(state: SymbolicState, call: SkillCall) -> str | None:
    """Why `call` cannot run in `state`, or None when all its preconditions hold."""
    missing = [a for a in call.args if a in OBJECTS and a not in state.objects]
    if missing:
        return f"{missing[0]} is not in the scene"
    skill, args = call.skill, call.args
    if skill in ("pick", "push", "open", "close") and state.holding is not None:
        return f"{skill} needs an empty gripper but it holds {state.holding}"
    if skill == "pick":
        return _pick_failure(state, args[0])
    if skill == "place":
        return _place_failure(state, args[0])
    if skill in ("open", "close"):
        needs_open = skill == "close"
        if state.drawer_open == needs_open:
            return None
        return f"the drawer is already {'open' if skill == 'open' else 'closed'}"
    if skill == "push":
        if state.location(args[0]) != ("on", "table"):
            return f"push needs {args[0]} on the table"
        return None if state.is_clear(args[0]) else f"something is on top of {args[0]}"
    return None  # reach has no precondition beyond presence


def _pick_failure(state: SymbolicState, obj: str) -> str | None:
    if not state.is_clear(obj):
        return f"something is on top of {obj}"
    if state.inside_drawer(obj) and not state.drawer_open:
        return f"{obj} is in the closed drawer"
    return None


def _place_failure(state: SymbolicState, target: str) -> str | None:
    held = state.holding
    if held is None:
        return "place needs a held object but the gripper is empty"
    if target == held:
        return f"cannot place {held} on itself"
    if target not in PLACE_TARGETS:
        return f"{target} is not a place target"
    if target in BLOCKS and held not in BLOCKS:
        return f"only a block can be stacked on {target}, not {held}"
    if target not in ("bowl", "drawer", "plate", "table") and not state.is_clear(target):
        return f"something is on top of {target}"
    if (target == "drawer" or state.inside_drawer(target)) and not state.drawer_open:
        return "the drawer is closed"
    return None


def apply_call(state: SymbolicState, call: SkillCall) -> SymbolicState:
    """The state after `call`; raises ValueError naming the broken precondition."""
    failure = precondition_failure(state, call)
    if failure is not None:
        raise InputError(f"{call} is not applicable: {failure}")
    return successor(state, call)


def successor(state: SymbolicState, call: SkillCall) -> SymbolicState:
    """The state after `call`, assuming its preconditions hold (see `apply_call` for the checked form)."""
    skill, args = call.skill, call.args
    if skill == "pick":
        pushed = frozenset(p for p in state.pushed if p[0] != args[0])
        return replace(state.with_location(args[0], None), holding=args[0], near=None, pushed=pushed)
    if skill == "place":
        held = state.holding
        assert held is not None, "place precondition guarantees a held object"
        moved = state.with_location(held, (place_relation(args[0]), args[0]))
        return replace(moved, holding=None, near=None)
    if skill in ("open", "close"):
        return replace(state, drawer_open=skill == "open", near=None)
    if skill == "push":
        pushed = frozenset([*(p for p in state.pushed if p[0] != args[0]), (args[0], args[1])])
        return replace(state, pushed=pushed, near=None)
    return replace(state, near=args[0])


@functools.lru_cache(maxsize=256)
def _candidate_calls(objects: frozenset[str], with_push: bool, with_reach: bool) -> tuple[SkillCall, ...]:
    present = [o for o in OBJECTS if o in objects]
    calls = [SkillCall("pick", (x,)) for x in present if x in MOVABLE]
    calls += [SkillCall("place", (t,)) for t in present if t in PLACE_TARGETS]
    if "drawer" in objects:
        calls += [SkillCall("open", ("drawer",)), SkillCall("close", ("drawer",))]
    if with_push:
        calls += [SkillCall("push", (x, d)) for x in present if x in MOVABLE for d in DIRECTIONS]
    if with_reach:
        calls += [SkillCall("reach", (x,)) for x in present]
    return tuple(calls)


def applicable_calls(state: SymbolicState, with_push: bool = False, with_reach: bool = False) -> list[SkillCall]:
    """Every call whose preconditions hold, in a fixed order (push and reach only when asked)."""
    candidates = _candidate_calls(state.objects, with_push, with_reach)
    return [call for call in candidates if precondition_failure(state, call) is None]


@dataclass(frozen=True)
class PlanCheck:
    """Outcome of `check_plan`: whether the plan is valid, and if not, the first reason."""

    valid: bool
    reason: str = ""
    final_state: SymbolicState | None = None


def check_plan(
    state: SymbolicState, calls: Sequence[SkillCall], stages: Sequence[Sequence[Predicate]] = ()
) -> PlanCheck:
    """Simulate `calls` from `state`: every precondition must hold and the goal stages be reached in order.

    A stage is reached at the first step (or the start) where all its predicates hold, looking only
    at steps after the previous stage was reached.
    """
    states = [state]
    for index, call in enumerate(calls):
        failure = precondition_failure(states[-1], call)
        if failure is not None:
            return PlanCheck(False, f"step {index + 1} {call}: {failure}")
        states.append(successor(states[-1], call))
    position = 0
    for number, stage in enumerate(stages, start=1):
        while position < len(states) and not all(states[position].holds(p) for p in stage):
            position += 1
        if position == len(states):
            goals = ", ".join(str(p) for p in stage)
            return PlanCheck(False, f"goal stage {number} ({goals}) is never reached", states[-1])
    return PlanCheck(True, "", states[-1])
