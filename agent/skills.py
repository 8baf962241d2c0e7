"""The planning domain: objects, skills, goal predicates and their text forms.

Objects: ``red_block, green_block, blue_block, yellow_block, mug, bowl, plate, drawer, table``. The four
blocks and the mug are movable. Initially every movable object stands on the table, the drawer is closed
and the gripper is empty.

=================  ======================================================================  ===================
skill              preconditions                                                           effect
=================  ======================================================================  ===================
``pick(x)``        gripper empty; x movable, nothing on top of x; drawer open if x is in it  holding x
``place(t)``       holding some x != t; t in {bowl, drawer, plate, table, a block}; drawer   x in t (bowl, drawer)
                   open if t is (or is inside) the drawer; a block t must be free,           or on t; gripper empty
                   and only a block stacks on a block (a mug on a cube topples)
``open(drawer)``   gripper empty; drawer closed                                             drawer open
``close(drawer)``  gripper empty; drawer open                                               drawer closed
``push(x, d)``     gripper empty; x movable, on the table, nothing on it;                   x pushed in d
                   d in {left, right, forward, backward} (forward = away from the robot)
``reach(x)``       x is in the scene                                                        gripper near x
=================  ======================================================================  ===================

Only `reach` makes ``near`` true; the other skills move the gripper on and leave ``near`` unset.
Goal predicates: ``in(x, bowl|drawer)``, ``on(x, plate|table|block)``, ``open(drawer)``, ``closed(drawer)``,
``holding(x)``, ``near(x)``, ``pushed(x, d)``. The symbolic state and the checker over this table live in
`agent.symbolic`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import InputError, InputTypeError

BLOCKS: tuple[str, ...] = ("red_block", "green_block", "blue_block", "yellow_block")
MOVABLE: tuple[str, ...] = (*BLOCKS, "mug")
OBJECTS: tuple[str, ...] = (*MOVABLE, "bowl", "plate", "drawer", "table")
CONTAINERS: tuple[str, ...] = ("bowl", "drawer")
"""Targets that `place` puts things *in*; every other target gets things put *on* it."""
PLACE_TARGETS: tuple[str, ...] = ("bowl", "drawer", "plate", "table", *BLOCKS)
DIRECTIONS: tuple[str, ...] = ("left", "right", "forward", "backward")
BLOCK_COLOURS: dict[str, str] = {
    "red": "red_block", "green": "green_block", "blue": "blue_block", "yellow": "yellow_block",
}

PREDICATE_ARITY: dict[str, int] = {"in": 2, "on": 2, "open": 1, "closed": 1, "holding": 1, "near": 1, "pushed": 2}
SKILL_PARAMS: dict[str, tuple[str, ...]] = {
    "pick": ("x",),
    "place": ("target",),
    "open": ("drawer",),
    "close": ("drawer",),
    "push": ("x", "direction"),
    "reach": ("x",),
}
SKILL_DESCRIPTIONS: dict[str, str] = {
    "pick": "pick up an object with the gripper and hold it",
    "place": "put the held object in or on a target",
    "open": "open the drawer",
    "close": "close the drawer",
    "push": "push an object along the table in a direction",
    "reach": "move the gripper next to an object",
}
_DIRECTION_TEXT = {
    "left": "to the left",
    "right": "to the right",
    "forward": "away from you",
    "backward": "towards you",
}


def object_text(name: str) -> str:
    """Natural-language name of an object id: ``red_block`` -> ``the red block``."""
    return "the " + name.replace("_", " ")


def check_object(name: str, allowed: Sequence[str] = OBJECTS, role: str = "object") -> str:
    """Return `name` if it is one of `allowed`, else raise ValueError naming the valid choices."""
    if name not in allowed:
        raise InputError(f"unknown {role} {name!r}; expected one of: {', '.join(allowed)}")
    return name


@dataclass(frozen=True)
class Predicate:
    """One goal or fact, e.g. ``Predicate("in", ("red_block", "bowl"))``."""

    predicate: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.predicate not in PREDICATE_ARITY:
            raise InputError(f"unknown predicate {self.predicate!r}; expected one of: {', '.join(PREDICATE_ARITY)}")
        object.__setattr__(self, "args", tuple(self.args))
        arity = PREDICATE_ARITY[self.predicate]
        if len(self.args) != arity:
            raise InputError(f"{self.predicate} takes {arity} argument(s), got {list(self.args)}")
        _check_predicate_args(self.predicate, self.args)

    def to_json(self) -> dict[str, Any]:
        """The plan-JSON form: ``{"predicate": "in", "args": ["red_block", "bowl"]}``."""
        return {"predicate": self.predicate, "args": list(self.args)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Predicate:
        """Parse the plan-JSON form, rejecting missing or extra keys."""
        _check_keys(data, {"predicate", "args"}, "goal entry")
        return cls(str(data["predicate"]), tuple(str(a) for a in _as_list(data["args"], "args")))

    def __str__(self) -> str:
        return f"{self.predicate}({', '.join(self.args)})"


def _check_predicate_args(name: str, args: tuple[str, ...]) -> None:
    if name in ("open", "closed"):
        check_object(args[0], ("drawer",), f"argument of {name}")
    elif name in ("holding", "pushed"):
        check_object(args[0], MOVABLE, f"argument of {name}")
    elif name == "near":
        check_object(args[0], OBJECTS, "argument of near")
    if name == "pushed":
        check_object(args[1], DIRECTIONS, "direction")
    if name == "in":
        check_object(args[0], MOVABLE, "object of in")
        check_object(args[1], CONTAINERS, "container of in")
    if name == "on":
        check_object(args[0], MOVABLE, "object of on")
        check_object(args[1], ("plate", "table", *BLOCKS), "support of on")
        if args[0] == args[1]:
            raise InputError(f"on({args[0]}, {args[1]}): an object cannot be on itself")


@dataclass(frozen=True)
class SkillCall:
    """One step of a plan: a skill name and its arguments, with a text form for people and policies.

    Example:
        >>> SkillCall("pick", ("red_block",)).text
        'pick up the red block'
    """

    skill: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.skill not in SKILL_PARAMS:
            raise InputError(f"unknown skill {self.skill!r}; expected one of: {', '.join(SKILL_PARAMS)}")
        object.__setattr__(self, "args", tuple(self.args))
        params = SKILL_PARAMS[self.skill]
        if len(self.args) != len(params):
            raise InputError(
                f"{self.skill} takes {len(params)} argument(s) ({', '.join(params)}), got {list(self.args)}"
            )
        _check_call_args(self.skill, self.args)

    @property
    def text(self) -> str:
        """The call in words, e.g. ``put it in the bowl``; used as the goal text of skill policies."""
        return call_text(self.skill, self.args)

    def to_json(self) -> dict[str, Any]:
        """The plan-JSON form: ``{"skill": "pick", "args": ["red_block"]}``."""
        return {"skill": self.skill, "args": list(self.args)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SkillCall:
        """Parse the plan-JSON form, rejecting missing or extra keys."""
        _check_keys(data, {"skill", "args"}, "plan entry")
        return cls(str(data["skill"]), tuple(str(a) for a in _as_list(data["args"], "args")))

    def __str__(self) -> str:
        return f"{self.skill}({', '.join(self.args)})"


def _check_call_args(skill: str, args: tuple[str, ...]) -> None:
    if skill in ("pick", "push"):
        check_object(args[0], MOVABLE, f"object of {skill}")
    elif skill == "place":
        check_object(args[0], PLACE_TARGETS, "target of place")
    elif skill in ("open", "close"):
        check_object(args[0], ("drawer",), f"object of {skill}")
    elif skill == "reach":
        check_object(args[0], OBJECTS, "object of reach")
    if skill == "push":
        check_object(args[1], DIRECTIONS, "direction")


def call_text(skill: str, args: Sequence[str]) -> str:
    """Text template of a skill call (the sentence a person would say for this one step)."""
    if skill == "pick":
        return f"pick up {object_text(args[0])}"
    if skill == "place":
        relation = "in" if args[0] in CONTAINERS else "on"
        return f"put it {relation} {object_text(args[0])}"
    if skill in ("open", "close"):
        return f"{skill} {object_text(args[0])}"
    if skill == "push":
        return f"push {object_text(args[0])} {_DIRECTION_TEXT[args[1]]}"
    if skill == "reach":
        return f"move the gripper to {object_text(args[0])}"
    raise InputError(f"unknown skill {skill!r}; expected one of: {', '.join(SKILL_PARAMS)}")


def place_relation(target: str) -> str:
    """The predicate that `place(target)` makes true: ``in`` for containers, ``on`` otherwise."""
    return "in" if target in CONTAINERS else "on"


def predicate_text(predicate: Predicate) -> str:
    """A goal predicate in words, e.g. ``the red block is in the bowl``."""
    name, args = predicate.predicate, predicate.args
    if name in ("in", "on"):
        return f"{object_text(args[0])} is {name} {object_text(args[1])}"
    if name in ("open", "closed"):
        return f"{object_text(args[0])} is {name}"
    if name == "holding":
        return f"the gripper holds {object_text(args[0])}"
    if name == "near":
        return f"the gripper is near {object_text(args[0])}"
    return f"{object_text(args[0])} was pushed {_DIRECTION_TEXT[args[1]]}"


def _check_keys(data: Mapping[str, Any], keys: set[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise InputTypeError(f"{what} must be a JSON object, got {type(data).__name__}")
    if set(data) != keys:
        raise InputError(f"{what} must have exactly the keys {sorted(keys)}, got {sorted(data)}")


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InputTypeError(f"{what} must be a JSON list, got {type(value).__name__}")
    return value
