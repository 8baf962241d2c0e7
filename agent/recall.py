"""What the agent remembers of its own past episodes, and how memory fills what the scene leaves open.

The knowledge store hands the planner past episodes as `EpisodeMemory` records (instruction, the goal the
episode was judged against, skill outcomes, the scene facts before and after). From them `History` answers
the questions memory-dependent instructions ask:

* "put the red block back where it was": where was the red block before I last moved it?
* "take out the block you put in the drawer": which block did I put in the drawer?
* "do that again": what was the last thing I was asked to do, and what was its goal?
* "where did you put the mug?": where did I last put the mug?

Memory only fills what the current scene does not settle: a location the scene reports is never replaced by a
remembered one (`fill_unknowns`), and a phrase that names one object in the scene is never re-pointed by memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.skills import MOVABLE, OBJECTS, Predicate, place_relation

Location = tuple[str, str]
"""(relation, support), e.g. ``("in", "drawer")``."""


@dataclass(frozen=True)
class Move:
    """One object the agent put somewhere during an episode.

    Attributes:
        obj: The object moved.
        before: Where it was when the episode started (None when the start facts did not say).
        after: Where the agent put it (its last successful `place` in the episode).
    """

    obj: str
    before: Location | None
    after: Location


@dataclass(frozen=True)
class EpisodeMemory:
    """A past episode as the planner sees it.

    Attributes:
        instruction: What the person said.
        goal: The goal stages the episode was judged against (the instruction's grounded goal).
        steps: ``(skill, args, success)`` per executed skill call, in order.
        start_facts: Scene facts when the episode started.
        final_facts: Scene facts when it ended.
        success: Whether the instruction was accomplished.
        answer: The answer, when the instruction was a question.
        episode: The store's id for the episode (for notes), when it has one.
    """

    instruction: str
    goal: tuple[tuple[Predicate, ...], ...] = ()
    steps: tuple[tuple[str, tuple[str, ...], bool], ...] = ()
    start_facts: tuple[tuple[str, ...], ...] = ()
    final_facts: tuple[tuple[str, ...], ...] = ()
    success: bool = False
    answer: str | None = None
    episode: int | None = None

    @property
    def label(self) -> str:
        """How notes cite the episode: ``episode 3 ('put the mug in the bowl')``."""
        prefix = f"episode {self.episode}" if self.episode is not None else "a past episode"
        return f"{prefix} ({self.instruction!r})"

    def moves(self) -> list[Move]:
        """Objects the agent put somewhere, each with its start location and where it ended up."""
        start = locations_of(self.start_facts)
        held: str | None = next((f[1] for f in self.start_facts if len(f) == 2 and f[0] == "holding"), None)
        moved: dict[str, Location] = {}
        for skill, args, ok in self.steps:
            if not ok:
                continue
            if skill == "pick" and args:
                held = args[0]
            elif skill == "place" and args and held is not None:
                moved.pop(held, None)
                moved[held] = (place_relation(args[0]), args[0])
                held = None
        return [Move(obj, start.get(obj), after) for obj, after in moved.items()]

    def picked(self) -> list[str]:
        """Objects successfully picked up in the episode, in order."""
        return [args[0] for skill, args, ok in self.steps if ok and skill == "pick" and args]

    def pushed(self) -> list[tuple[str, str]]:
        """(object, direction) of successful pushes."""
        return [(args[0], args[1]) for skill, args, ok in self.steps if ok and skill == "push" and len(args) == 2]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the ``episodes`` entries of a planner memory file)."""
        return {"instruction": self.instruction, "goal": [[p.to_json() for p in stage] for stage in self.goal],
                "steps": [{"skill": s, "args": list(a), "success": ok} for s, a, ok in self.steps],
                "start_facts": [list(f) for f in self.start_facts], "final_facts": [list(f) for f in self.final_facts],
                "success": self.success, "answer": self.answer, "episode": self.episode}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EpisodeMemory:
        """Read `to_json`'s shape back; raises ValueError naming what is wrong."""
        if not isinstance(data, Mapping) or not isinstance(data.get("instruction"), str):
            raise ValueError(f"a remembered episode needs an 'instruction' string, got {data!r:.120}")
        try:
            goal = tuple(tuple(Predicate.from_json(p) for p in stage) for stage in data.get("goal", ()))
            steps = tuple((str(s["skill"]), tuple(str(a) for a in s.get("args", ())), bool(s.get("success", False)))
                          for s in data.get("steps", ()))
            start = tuple(tuple(str(x) for x in f) for f in data.get("start_facts", ()))
            final = tuple(tuple(str(x) for x in f) for f in data.get("final_facts", ()))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed remembered episode {data.get('instruction')!r}: {error}") from error
        episode = data.get("episode")
        return cls(data["instruction"], goal, steps, start, final, bool(data.get("success", False)),
                   data.get("answer"), int(episode) if episode is not None else None)


def locations_of(facts: Iterable[Sequence[str]]) -> dict[str, Location]:
    """``{obj: (relation, support)}`` from env-style facts (movables only)."""
    out: dict[str, Location] = {}
    for fact in facts:
        if len(fact) == 3 and fact[0] in ("in", "on") and fact[1] in MOVABLE:
            out[fact[1]] = (fact[0], fact[2])
    return out


@dataclass(frozen=True)
class History:
    """Past episodes, oldest first, with the look-ups memory-dependent instructions need."""

    episodes: tuple[EpisodeMemory, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.episodes)

    def newest_first(self) -> Iterator[EpisodeMemory]:
        """Episodes from the most recent back."""
        return reversed(self.episodes)

    def moves(self) -> Iterator[tuple[EpisodeMemory, Move]]:
        """Every remembered move, most recent first."""
        for episode in self.newest_first():
            for move in reversed(episode.moves()):
                yield episode, move

    def last_move(self, obj: str) -> tuple[EpisodeMemory, Move] | None:
        """The most recent time the agent put `obj` somewhere."""
        return next(((e, m) for e, m in self.moves() if m.obj == obj), None)

    def last_action(self) -> EpisodeMemory | None:
        """The most recent episode that asked for an action (questions are not actions)."""
        return next((e for e in self.newest_first() if e.answer is None and e.goal), None)


def fill_unknowns(facts: Sequence[Sequence[str]], objects: Iterable[str],
                  remembered: Mapping[str, tuple[str, str, float]]) -> tuple[list[list[str]], list[str]]:
    """Fill in where unseen objects are from memory; never replace what the scene reports.

    An object is unseen when the facts say ``["unknown", x]`` (e.g. perception cannot see into the closed
    drawer) or give it no location and it is not held. Its remembered location (``{obj: (relation, support,
    confidence)}``, e.g. `PlannerMemory.locations()`) is added; an object that is neither seen nor
    remembered keeps its ``unknown`` fact.

    Returns:
        The facts with remembered locations added (``unknown`` facts replaced), and one note per fill.
    """
    present = set(objects)
    facts = [list(f) for f in facts]
    located = {f[1] for f in facts if len(f) >= 2 and f[0] in ("in", "on", "holding")}
    unknown = [f[1] for f in facts if len(f) == 2 and f[0] == "unknown"]
    unseen = dict.fromkeys([*unknown, *(x for x in MOVABLE if x in present and x not in located)])
    out = [f for f in facts if not (len(f) == 2 and f[0] == "unknown" and f[1] in remembered)]
    notes = []
    for obj in unseen:
        if obj in located or obj not in remembered:
            continue
        relation, support, confidence = remembered[obj]
        if support == obj or support not in OBJECTS or (support not in present and support != "table"):
            continue
        out.append([relation, obj, support])
        notes.append(f"memory: {obj} {relation} {support} (not in the scene's facts; confidence {confidence:.2f})")
    return out, notes
