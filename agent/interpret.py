"""From parsed clauses to goal predicates: what each clause asks to be true.

Each clause becomes one goal stage. The action word is grounded to a skill class with embeddings
(`Grounder.verb`), then the clause's structure decides the goal: a destination makes it a placement
("get the mug into the bowl"), a direction a push ("move the block left"), a state word an open/close
("get the drawer open"). Pronouns resolve in text order; stages come out in execution order.
"""

from __future__ import annotations

import itertools

from agent import lexicon as lx
from agent.chunking import Chunk, NounPhrase
from agent.errors import PlanningError
from agent.goal_makers import GOAL_MAKERS
from agent.grounding import Grounder, Scene, resolve_np
from agent.parsing import Clause
from agent.roles import Roles
from agent.skills import BLOCKS, PLACE_TARGETS, Predicate

PURE_PICK = frozenset({"pick", "grab", "grasp", "lift", "hold", "seize", "snatch", "pluck", "grip", "clutch",
                       "hoist", "catch", "raise"})
"""Pick verbs whose static location phrase describes the object ("grab the block in the bowl")."""
DROP_VERBS = frozenset({"drop", "lower", "set", "lay", "release"})
_SLOT_OF_PREP = {"in": "container", "on": "surface", "to": "target"}


def _merge_subject(nps: list[NounPhrase], groups: list[tuple[list[NounPhrase], Chunk | None]]):
    """Put subject noun phrases into the first group without objects (or a new one)."""
    for index, (members, dest) in enumerate(groups):
        if not members:
            return [*groups[:index], (list(nps), dest), *groups[index + 1 :]]
    return [(list(nps), None), *groups]


def _fill_ellipsis(previous: Clause, clause: Clause) -> None:
    """Let a verbless clause after an action repeat that action.

    '..., then to the left' keeps the object and gives a new place; '..., then the green block too' gives a
    new object for the same place.
    """
    if clause.verb is not None or previous.verb is None or not clause.subject:
        return
    kinds = {c.kind for c in clause.subject} - {"conj", "particle"}
    if kinds <= {"dir", "pp"} and kinds:
        clause.chunks = [Chunk("np", np=NounPhrase("it", pronoun="it")), *clause.subject]
    elif kinds == {"np"}:
        clause.chunks = [*clause.subject, *(c for c in previous.chunks if c.kind in ("pp", "dir"))]
    else:
        return
    clause.verb, clause.verb_text = previous.verb, previous.verb_text
    clause.subject = []


def clause_roles(chunks: list[Chunk]) -> Roles:
    """Group noun phrases with the destination that follows them ("X in Y and Z on W": two groups)."""
    roles = Roles()
    current: list[NounPhrase] = []
    for chunk in chunks:
        if chunk.kind == "np" and chunk.np is not None:
            current.append(chunk.np)
        elif chunk.kind == "pp":
            current = _add_pp(roles, chunk, current)
        elif chunk.kind == "dir":
            roles.directions.append(chunk.word)
        elif chunk.kind == "state":
            roles.states.append(chunk.word)
        elif chunk.kind == "particle":
            roles.particles.append(chunk.word)
    if current:
        roles.groups.append((current, None))
    return roles


def _add_pp(roles: Roles, chunk: Chunk, current: list[NounPhrase]) -> list[NounPhrase]:
    word = chunk.word
    if word in lx.SOURCE_PREPOSITIONS:
        roles.sources.append(chunk)
    elif word in lx.UNSUPPORTED_PREPOSITIONS:
        roles.unsupported.append(chunk)
    elif word in lx.WITH_PREPOSITIONS:
        roles.withs.append(chunk)
    elif current:
        roles.groups.append((current, chunk))
        return []
    elif roles.groups and roles.groups[-1][1] is not None and roles.groups[-1][0]:
        nps, previous = roles.groups[-1]  # "the block in the bowl to the plate": the first PP describes
        assert previous is not None
        nps[-1].filters.append(previous)
        roles.groups[-1] = (nps, chunk)
    else:
        roles.groups.append(([], chunk))
    return current


class Interpreter:
    """Turns clauses into goal stages for one scene."""

    def __init__(self, grounder: Grounder, scene: Scene) -> None:
        self.grounder = grounder
        self.scene = scene

    def stages(self, clauses: list[Clause]) -> list[tuple[Clause, list[Predicate]]]:
        """Goal predicates per clause, in execution order, with empty and negated clauses dropped."""
        by_text = sorted(clauses, key=lambda c: c.position)
        for previous, clause in itertools.pairwise(by_text):
            _fill_ellipsis(previous, clause)
        goals = {id(c): self.clause_goals(c) for c in by_text}
        return [(c, goals[id(c)]) for c in clauses if goals[id(c)]]

    def clause_goals(self, clause: Clause) -> list[Predicate]:
        """The goal predicates one clause asks for.

        A negated clause gives none (with a note in the scene), a verbless one is read as a state description, and a
        subject without objects ("the drawer should be opened") becomes the object of the action.
        """
        if clause.negated:
            self.scene.notes.append(f"skipped {clause.text!r}: it says what not to do")
            return []
        roles = clause_roles(clause.chunks)
        subject = clause_roles(clause.subject)
        if clause.verb is None:
            return self._state_description(clause, subject)
        if subject.nps and not roles.nps:  # "the green block goes in the drawer", "the drawer should be opened"
            roles.groups = _merge_subject(subject.nps, roles.groups)
            roles.subject_is_object = True
        return self._action(clause, roles, self._skill_class(clause, roles))

    def _skill_class(self, clause: Clause, roles: Roles) -> str:
        assert clause.verb is not None
        match = self.grounder.verb(clause.verb)
        self.scene.groundings.append({"phrase": clause.verb_text, "skill": match.label,
                                      "by": f"{match.exemplar!r} {match.score:.2f}"})
        if match.label == "neg":
            raise PlanningError(f"cannot do {clause.verb_text!r}: it is not one of the robot's skills",
                                clause.verb_text)
        if match.label == "unknown":
            if "stacked" in roles.particles:
                return "stack"
            if roles.states:
                return "open" if roles.states[-1] == "open" else "close"  # "yank the drawer open"
            if roles.directions and roles.nps:
                return "push"
            if roles.dests:
                self.scene.notes.append(f"read {clause.verb_text!r} as 'put' because it names a destination")
                return "place"
            raise PlanningError(f"cannot ground the action {clause.verb_text!r} in {clause.text!r}", clause.verb_text)
        return match.label

    def _state_description(self, clause: Clause, roles: Roles) -> list[Predicate]:
        """Goals said as states: "the drawer should be open", "red block in the bowl"."""
        if roles.states:
            return self._action(clause, roles, "open" if roles.states[-1] == "open" else "close")
        if roles.dests:
            return self._action(clause, roles, "place")
        if roles.directions and roles.nps:
            return self._action(clause, roles, "push")
        raise PlanningError(f"cannot ground {clause.text!r}: it asks for no action the robot has", clause.text)

    def _action(self, clause: Clause, roles: Roles, skill: str) -> list[Predicate]:
        skill = self._refine(clause, roles, skill)
        if roles.unsupported and skill != "reach":
            chunk = roles.unsupported[0]
            raise PlanningError(f"cannot ground {chunk.text!r}: only in/on places are known", chunk.text)
        for chunk in roles.sources:  # "out of the drawer": names a place, and narrows what is meant
            if chunk.np is not None:
                self.objects(clause, [chunk.np], "any", role="source")
                for np in roles.nps:
                    np.filters.append(chunk)
        return GOAL_MAKERS[skill](self, clause, roles)

    def _refine(self, clause: Clause, roles: Roles, skill: str) -> str:
        """Let the clause's structure override the verb's default skill."""
        nps = roles.nps
        if "stacked" in roles.particles and skill in ("place", "stack", "pick"):
            return "stack"  # "put the blocks on top of each other"
        if roles.states and (not nps or all(np.pronoun or self._is_drawer(np) for np in nps)):
            return "open" if roles.states[-1] == "open" else "close"
        if skill == "pick" and roles.dests:
            static = all(d.word not in lx.DIRECTIONAL_PREPOSITIONS for d in roles.dests)
            return "pick" if static and clause.verb in PURE_PICK and self._as_filters(roles) else "place"
        if skill == "place" and not roles.dests and roles.directions and not set(roles.directions) <= {"back", "away"}:
            return "push"
        if skill == "place" and (not nps or any(self._is_self(np) for np in nps)) and roles.dests:
            return "reach"
        if skill == "reach" and roles.subject_is_object and roles.dests:
            return "place"  # "the block goes in the bowl"
        if skill == "push" and nps and all(self._is_drawer(np) for np in nps):  # "slide the drawer out": open
            return "open" if clause.verb in ("pull", "drag") or "out" in roles.particles else "close"
        if skill == "push" and roles.dests and not roles.directions:
            return "place"
        return skill

    def _as_filters(self, roles: Roles) -> bool:
        for nps, dest in roles.groups:
            if dest is not None and nps:
                nps[-1].filters.append(dest)
        roles.groups = [(nps, None) for nps, _dest in roles.groups if nps]
        return True

    def _is_drawer(self, np: NounPhrase) -> bool:
        if np.pronoun is not None:
            return False
        match = self.grounder.noun_type(np)
        return match is not None and match.label == "drawer"

    def _is_self(self, np: NounPhrase) -> bool:
        return np.pronoun is None and (m := self.grounder.noun_type(np)) is not None and m.label == "self"

    def objects(self, clause: Clause, nps: list[NounPhrase], slot: str, role: str = "object") -> list[str]:
        """Resolve noun phrases to scene objects for `slot`, without repeats; record them in the discourse as `role`."""
        found: list[str] = []
        for np in nps:
            found += [o for o in resolve_np(self.grounder, np, slot, self.scene) if o not in found]
        self.scene.discourse.add(found, role, clause.position)
        return found

    def movables(self, clause: Clause, nps: list[NounPhrase], exclude: tuple[str, ...] = ()) -> list[str]:
        """Like `objects`, for things the action moves; PlanningError when a phrase names something fixed in place."""
        found: list[str] = []
        for np in nps:
            objects = resolve_np(self.grounder, np, "movable", self.scene, exclude)
            fixed = [o for o in objects if o not in BLOCKS and o != "mug"]
            if fixed:
                raise PlanningError(f"cannot move {np.text!r}: the {fixed[0]} is fixed in place", np.text)
            found += [o for o in objects if o not in found]
        self.scene.discourse.add(found, "object", clause.position)
        return found

    def destination(self, clause: Clause, dest: Chunk, exclude: tuple[str, ...] = ()) -> str:
        """The place a destination phrase names; a bare "inside" means the last container mentioned."""
        slot = _SLOT_OF_PREP.get(lx.LOCATION_PREPOSITIONS.get(dest.word, "to"), "target")
        if dest.np is None:
            targets = self.scene.discourse.resolve(NounPhrase(dest.word, pronoun="there"), slot, exclude)
        else:
            targets = resolve_np(self.grounder, dest.np, slot if dest.np.pronoun else "target", self.scene, exclude)
        if len(targets) != 1 or targets[0] not in PLACE_TARGETS:
            raise PlanningError(f"cannot put anything {dest.text!r}: only the bowl, drawer, plate, table or a "
                                "block can hold things", dest.text)
        self.scene.discourse.add(targets, "dest", clause.position)
        return targets[0]
