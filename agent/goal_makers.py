"""Goal predicates for each skill class of a clause, called by `agent.interpret.Interpreter` (a `ClauseInterpreter`)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from agent import lexicon as lx
from agent.chunking import NounPhrase
from agent.errors import PlanningError
from agent.parsing import Clause
from agent.roles import ClauseInterpreter, Roles
from agent.skills import BLOCKS, MOVABLE, Predicate, place_relation

GoalMaker = Callable[[ClauseInterpreter, Clause, Roles], list[Predicate]]


def place_goals(objects: list[str], target: str) -> list[Predicate]:
    """``in``/``on`` goals for putting `objects` on `target`; several objects on a block make a tower."""
    movers = [o for o in objects if o != target]
    if not movers:
        raise PlanningError(f"cannot put the {target.replace('_', ' ')} on itself", target.replace("_", " "))
    if target in BLOCKS and len(movers) > 1:
        return tower_goals([target, *movers])
    return [Predicate(place_relation(target), (o, target)) for o in movers]


def tower_goals(order: list[str]) -> list[Predicate]:
    """A tower from the bottom up: each object on the one before it."""
    return [Predicate("on", (upper, lower)) for lower, upper in pairwise(order)]


def _default_destination(it: ClauseInterpreter, clause: Clause, roles: Roles, obj: str, default: str | None) -> str:
    """Where "put it down / away / back" goes when no destination is named."""
    words = set(roles.particles) | set(roles.directions)
    if "back" in words:
        return _back_destination(it, clause, obj)
    if "away" in words and "drawer" in it.scene.objects:
        return "drawer"
    if "down" in words or clause.verb in ("drop", "lower", "release") or default == "table":
        return "table"
    if default is not None and default in it.scene.objects:
        return default
    raise PlanningError(f"cannot tell where to put things in {clause.text!r}: name a place", clause.text)


def _back_destination(it: ClauseInterpreter, clause: Clause, obj: str) -> str:
    """Where "put it back (where it was)" puts `obj`.

    When an earlier clause of this instruction moved it ("pick up the mug and put it back"), the scene settles
    it: where it was when the instruction started. Otherwise "back" refers to the past, and memory says where
    it was before the agent last moved it; with no such memory the planner says so instead of guessing.
    """
    name = obj.replace("_", " ")
    earlier = any(m.role == "object" and obj in m.objects and m.clause < clause.position
                  for m in it.scene.discourse.mentions)
    if earlier:
        location = it.scene.state.location(obj)
        return location[1] if location is not None else "table"
    history = it.scene.history
    if not history:
        raise PlanningError(f"I do not remember where the {name} was before: no past episodes are in memory "
                            "(give the agent its knowledge store, e.g. --memory)", clause.text)
    found = history.last_move(obj)
    if found is None or found[1].before is None:
        raise PlanningError(f"I do not remember moving the {name}, so I cannot tell where it was before",
                            clause.text)
    episode, move = found
    assert move.before is not None
    relation, support = move.before
    it.scene.notes.append(f"memory: the {name} was {relation} the {support.replace('_', ' ')} before "
                          f"{episode.label} moved it")
    return support


THROW_VERBS = frozenset({"throw", "toss", "chuck", "bin", "trash", "dump"})


def _goal_place(it: ClauseInterpreter, clause: Clause, roles: Roles, default: str | None = None) -> list[Predicate]:
    if clause.verb in THROW_VERBS and not roles.dests and {"away", "out"} & {*roles.particles, *roles.directions}:
        raise PlanningError(f"cannot throw things away ({clause.text!r}): there is no bin in the scene",
                            clause.verb_text)
    goals: list[Predicate] = []
    groups = [(nps, dest) for nps, dest in roles.groups]
    leading = [dest for nps, dest in groups if not nps and dest is not None]  # "put in the bowl the red block"
    last_dest = leading[0] if leading else None
    for nps, dest in groups:
        if not nps:
            continue
        objects = it.movables(clause, nps)
        dest = dest or last_dest
        if dest is not None:
            target = it.destination(clause, dest, tuple(objects))
            last_dest = dest
            goals += place_goals(objects, target)
        else:
            goals += [_place_one(it, clause, roles, o, default) for o in objects]
    if not goals:
        raise PlanningError(f"cannot tell what to move in {clause.text!r}", clause.text)
    return goals


def _place_one(it: ClauseInterpreter, clause: Clause, roles: Roles, obj: str, default: str | None) -> Predicate:
    target = _default_destination(it, clause, roles, obj, default)
    return place_goals([obj], target)[0]


def _goal_hide(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    return _goal_place(it, clause, roles, default="drawer")


def _goal_release(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    if roles.nps:
        return _goal_place(it, clause, roles, default="table")
    held = it.scene.state.holding
    if held is None:
        raise PlanningError(f"nothing to let go of in {clause.text!r}: the gripper is empty", clause.text)
    target = it.destination(clause, roles.dests[0]) if roles.dests else "table"
    return place_goals([held], target)


def _goal_remove(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    return _goal_place(it, clause, roles, default="table")


def _goal_pick(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    objects = it.movables(clause, roles.nps)
    if not objects:
        raise PlanningError(f"cannot tell what to pick up in {clause.text!r}", clause.text)
    if roles.sources and len(objects) > 1:  # "take everything out of the drawer": one hand, so set them down
        return [Predicate("on", (o, "table")) for o in objects]
    return [Predicate("holding", (o,)) for o in objects]


def _tower_members(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[str]:
    nps = [np for np in roles.nps if not _is_tower(it, np)]
    nps += [c.np for c in roles.withs if c.np is not None]
    return it.movables(clause, nps)


def _is_tower(it: ClauseInterpreter, np: NounPhrase) -> bool:
    match = None if np.pronoun else it.grounder.noun_type(np)
    return match is not None and match.label == "tower"


def _goal_stack(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    members = _tower_members(it, clause, roles)
    base = [it.destination(clause, d, tuple(members)) for d in roles.dests[:1]]
    order = [*base, *(m for m in members if m not in base)]
    if len(order) < 2:
        raise PlanningError(f"stacking needs two things in {clause.text!r}: say what goes on what", clause.text)
    return tower_goals(order)


def _drawer_goal(it: ClauseInterpreter, clause: Clause, roles: Roles, predicate: str) -> list[Predicate]:
    for np in roles.nps:
        for obj in it.objects(clause, [np], "drawer" if np.pronoun else "any"):
            if obj != "drawer":
                raise PlanningError(f"cannot {clause.verb or predicate} {np.text!r}: only the drawer opens and closes",
                                    np.text)
    if "drawer" not in it.scene.objects:
        raise PlanningError("there is no drawer in the scene", "the drawer")
    if not roles.nps:
        it.scene.discourse.add(["drawer"], "object", clause.position)
    return [Predicate(predicate, ("drawer",))]


def _goal_open(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    return _drawer_goal(it, clause, roles, "open")


def _goal_close(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    return _drawer_goal(it, clause, roles, "closed")


def _goal_push(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    words = [w for w in roles.directions if w in lx.DIRECTION_WORDS]
    if len(words) > 1 and len(words) == len(roles.nps):  # "push the red block left and the blue block right"
        pairs = [(it.movables(clause, [np]), lx.DIRECTION_WORDS[w]) for np, w in zip(roles.nps, words, strict=True)]
        return [Predicate("pushed", (o, d)) for objects, d in pairs for o in objects]
    objects = it.movables(clause, roles.nps)
    if not objects:
        raise PlanningError(f"cannot tell what to push in {clause.text!r}", clause.text)
    if words:
        direction = lx.DIRECTION_WORDS[words[-1]]
    else:
        direction = "forward"
        it.scene.notes.append(f"no direction in {clause.text!r}: pushing forward (away from the robot)")
    return [Predicate("pushed", (o, direction)) for o in objects]


def _goal_reach(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    nps = [np for np in roles.nps if np.pronoun is not None or not _is_self(it, np)]
    nps += [c.np for c in [*roles.dests, *roles.unsupported] if c.np is not None]
    targets = it.objects(clause, nps, "any")
    if not targets:
        raise PlanningError(f"cannot tell where to move the gripper in {clause.text!r}", clause.text)
    return [Predicate("near", (t,)) for t in targets]


def _is_self(it: ClauseInterpreter, np: NounPhrase) -> bool:
    match = it.grounder.noun_type(np)
    return match is not None and match.label == "self"


def _goal_empty(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    holders = it.objects(clause, roles.nps, "target") if roles.nps else []
    if not holders or "table" in holders:
        raise PlanningError(f"cannot tell where to clear things to in {clause.text!r}", clause.text)
    items = [x for x in MOVABLE if (loc := it.scene.state.location(x)) is not None and loc[1] in holders]
    target = it.destination(clause, roles.dests[0], tuple(items)) if roles.dests else "table"
    if not items:
        it.scene.notes.append(f"{clause.text!r}: nothing is there, nothing to do")
        return []
    return [Predicate(place_relation(target), (x, target)) for x in items if x != target]


def _goal_unstack(it: ClauseInterpreter, clause: Clause, roles: Roles) -> list[Predicate]:
    named = it.movables(clause, roles.nps) if roles.nps else []
    stacked = [x for x in MOVABLE if (loc := it.scene.state.location(x)) is not None and loc[1] in BLOCKS]
    objects = [x for x in named if x in stacked] if named and len(named) == 1 else stacked
    objects = objects or named
    return [Predicate("on", (x, "table")) for x in objects]


GOAL_MAKERS: dict[str, GoalMaker] = {
    "place": _goal_place, "hide": _goal_hide, "release": _goal_release, "remove": _goal_remove,
    "pick": _goal_pick, "stack": _goal_stack, "open": _goal_open, "close": _goal_close, "push": _goal_push,
    "reach": _goal_reach, "empty": _goal_empty, "unstack": _goal_unstack,
}
