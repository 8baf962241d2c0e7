"""What the planner may take from memory: remembered facts and skill statistics.

The knowledge store hands the planner plain data through these types, so the planner works the same
with no memory at all. Three hooks use it:

* remembered locations (``("red_block", "in", "drawer", 0.9)``) fill in the start state where the
  current scene facts say nothing (or when there are none);
* per-skill success statistics become an affordance: the same Beta prior for tried and untried calls,
  updated by each call's record, so a success raises a call's affordance and a failure lowers it (see
  `agent.planner.affordance.SkillStatsAffordance`);
* causal facts (``("red_block.mass", "hinders", "pick(red_block)", 0.8)``) scale the affordance of the
  calls they concern when the planner chooses among objects an instruction leaves open ("pick up a
  block"); the subject keeps the study's treatment variable and ``evidence`` its finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from agent.errors import InputError, InputTypeError
from agent.recall import EpisodeMemory

LOCATION_RELATIONS = ("in", "on")
STATE_RELATIONS = ("is", "state")
CAUSAL_RELATIONS = {"hinders": -1.0, "prevents": -1.0, "breaks": -1.0, "helps": 1.0, "enables": 1.0}


@dataclass(frozen=True)
class MemoryFact:
    """A remembered (subject, relation, object) triple with a confidence in [0, 1].

    `evidence` says where a fact comes from in words (for a causal fact, the study's finding, e.g.
    ``"red_block.mass decreases lift_height by 0.061 [-0.070, -0.052] (n=16)"``); traces show it.
    """

    subject: str
    relation: str
    object: str
    confidence: float = 1.0
    evidence: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.confidence) <= 1.0:
            raise InputError(f"confidence must be in [0, 1], got {self.confidence} for {self}")


@dataclass(frozen=True)
class SkillStats:
    """How often a skill (or one skill call) succeeded; keyed by ``"pick"`` or ``"pick(red_block)"``."""

    successes: int
    attempts: int

    def __post_init__(self) -> None:
        if not 0 <= self.successes <= self.attempts:
            raise InputError(f"need 0 <= successes <= attempts, got {self.successes}/{self.attempts}")

    @property
    def rate(self) -> float:
        """Posterior mean success rate under a uniform Beta(1, 1) prior (never exactly 0 or 1).

        `SkillStatsAffordance` uses the same posterior for every call, tried or not (1/2 when untried).
        """
        return (self.successes + 1) / (self.attempts + 2)


@dataclass(frozen=True)
class PlannerMemory:
    """Everything the planner may use from memory; all parts optional."""

    facts: tuple[MemoryFact, ...] = ()
    skill_stats: Mapping[str, SkillStats] = field(default_factory=lambda: MappingProxyType({}))
    episodes: tuple[EpisodeMemory, ...] = ()
    """Past episodes, oldest first (see `agent.recall`): "put it back", "do that again", "where did you put"."""

    def locations(self, min_confidence: float = 0.5) -> dict[str, tuple[str, str, float]]:
        """Most confident remembered location per object: ``{obj: (relation, support, confidence)}``."""
        best: dict[str, tuple[str, str, float]] = {}
        for fact in self.facts:
            if fact.relation in LOCATION_RELATIONS and fact.confidence >= min_confidence:
                if fact.subject not in best or fact.confidence > best[fact.subject][2]:
                    best[fact.subject] = (fact.relation, fact.object, fact.confidence)
        return best

    def drawer_state(self, min_confidence: float = 0.5) -> str | None:
        """Remembered ``"open"``/``"closed"`` for the drawer, if any."""
        for fact in sorted(self.facts, key=lambda f: -f.confidence):
            if fact.subject == "drawer" and fact.relation in STATE_RELATIONS and fact.confidence >= min_confidence:
                if fact.object in ("open", "closed"):
                    return fact.object
        return None

    def causal_facts(self) -> list[MemoryFact]:
        """Facts whose relation says a cause hinders or helps a skill call."""
        return [f for f in self.facts if f.relation in CAUSAL_RELATIONS]


MemoryInput = PlannerMemory | Sequence[Any] | Mapping[str, Any] | None


def as_memory(memory: MemoryInput) -> PlannerMemory:
    """Normalise whatever the caller passes as memory into a `PlannerMemory`.

    Accepts None, a `PlannerMemory`, a list of fact tuples, or
    ``{"facts": [...], "skill_stats": {...}, "episodes": [...]}``.
    """
    if memory is None:
        return PlannerMemory()
    if isinstance(memory, PlannerMemory):
        return memory
    if isinstance(memory, Mapping):
        unknown = set(memory) - {"facts", "skill_stats", "episodes"}
        if unknown:
            raise InputError(f"memory mapping may hold 'facts', 'skill_stats' and 'episodes', got extra keys "
                             f"{sorted(unknown)}")
        stats = {str(k): _as_stats(v) for k, v in dict(memory.get("skill_stats", {})).items()}
        episodes = tuple(e if isinstance(e, EpisodeMemory) else EpisodeMemory.from_json(e)
                         for e in memory.get("episodes", ()))
        return PlannerMemory(_as_facts(memory.get("facts", ())), MappingProxyType(stats), episodes)
    if isinstance(memory, (str, bytes)):
        raise InputTypeError("memory must be a PlannerMemory, a list of facts or a mapping, got a string")
    return PlannerMemory(_as_facts(memory))


def with_outcomes(memory: MemoryInput, outcomes: Sequence[tuple[str, bool]]) -> PlannerMemory:
    """`memory` plus skill-call outcomes seen since it was read, e.g. this episode's failed step.

    The embodied loop replans with this, so a call that has just failed scores lower at once (one failure
    moves an untried call from 1/2 to 1/3) and an open choice ("pick up a block") moves to another object
    instead of repeating the failure. `outcomes` are ``(str(call), success)`` pairs, e.g. ``("pick(red_block)",
    False)``; they add to the call's remembered record and to its bare skill's.
    """
    base = as_memory(memory)
    if not outcomes:
        return base
    counts = {key: [stats.successes, stats.attempts] for key, stats in base.skill_stats.items()}
    for call, success in outcomes:
        for key in {call, call.split("(", 1)[0]}:
            record = counts.setdefault(key, [0, 0])
            record[0] += int(bool(success))
            record[1] += 1
    stats = {key: SkillStats(successes, attempts) for key, (successes, attempts) in counts.items()}
    return PlannerMemory(base.facts, MappingProxyType(stats), base.episodes)


def _as_facts(items: Sequence[Any]) -> tuple[MemoryFact, ...]:
    facts = []
    for item in items:
        if isinstance(item, MemoryFact):
            facts.append(item)
        elif isinstance(item, Mapping):
            facts.append(MemoryFact(str(item["subject"]), str(item["relation"]), str(item["object"]),
                                    float(item.get("confidence", 1.0)), str(item.get("evidence", ""))))
        elif isinstance(item, Sequence) and len(item) in (3, 4) and not isinstance(item, str):
            confidence = float(item[3]) if len(item) == 4 else 1.0
            facts.append(MemoryFact(str(item[0]), str(item[1]), str(item[2]), confidence))
        else:
            raise InputTypeError(f"a memory fact is (subject, relation, object[, confidence]), got {item!r}")
    return tuple(facts)


def _as_stats(value: Any) -> SkillStats:
    if isinstance(value, SkillStats):
        return value
    if isinstance(value, Mapping):
        return SkillStats(int(value["successes"]), int(value["attempts"]))
    if isinstance(value, Sequence) and len(value) == 2:
        return SkillStats(int(value[0]), int(value[1]))
    raise InputTypeError(f"skill stats are (successes, attempts) or a mapping with those keys, got {value!r}")
