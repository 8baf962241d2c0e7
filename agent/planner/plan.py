"""What every planner returns (`Plan`) and the protocol planners implement (`Planner`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agent.errors import InputError, InputTypeError
from agent.skills import Predicate, SkillCall

if TYPE_CHECKING:
    from agent.planner.memory import MemoryInput


@dataclass(frozen=True)
class ScoredCall:
    """A candidate skill call with its SayCan-style scores.

    Attributes:
        call: The candidate.
        language: How well the call's text fits the instruction part being planned (0..1, sums to 1
            over the candidates of a step).
        affordance: How likely the call is to succeed now (a learned value estimate or skill statistics).
        useful: Whether the call keeps a shortest plan to the goal possible; only useful calls are chosen.
            None when it was not checked because its score was too low to be chosen anyway.
    """

    call: SkillCall
    language: float
    affordance: float
    useful: bool | None

    @property
    def score(self) -> float:
        """SayCan's combination: language score times affordance."""
        return self.language * self.affordance

    def to_json(self) -> dict[str, Any]:
        """The candidate and its scores rounded to 4 decimals, for plan traces."""
        return {
            "call": str(self.call),
            "language": round(self.language, 4),
            "affordance": round(self.affordance, 4),
            "score": round(self.score, 4),
            "useful": self.useful,
        }


@dataclass(frozen=True)
class StepTrace:
    """Why one step was chosen: the ranked candidates at that point."""

    chosen: SkillCall
    stage: int
    candidates: tuple[ScoredCall, ...]

    def to_json(self, top: int = 5) -> dict[str, Any]:
        """The chosen call and the `top` best-scoring candidates, best first."""
        ranked = sorted(self.candidates, key=lambda c: -c.score)[:top]
        return {"chosen": str(self.chosen), "stage": self.stage, "candidates": [c.to_json() for c in ranked]}


@dataclass
class PlanTrace:
    """How a plan came about: planner used, groundings, notes (fallbacks, defaults), per-step scores."""

    planner: str = "grounded"
    notes: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    """The instruction part each goal stage came from (language scores use it; so does replanning)."""
    groundings: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepTrace] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The trace as plain JSON types, for logs and reports."""
        return {
            "planner": self.planner,
            "notes": list(self.notes),
            "groundings": list(self.groundings),
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class Plan:
    """A goal (ordered stages of predicates) and the skill calls that reach it.

    Attributes:
        instruction: The text the plan was made for.
        stages: Goal predicates grouped by the instruction part that asked for them, in order; each
            stage must hold at some point, after the previous one (a later stage may undo an earlier one,
            as in "open the drawer, then close it").
        steps: The skill calls, valid under the domain's preconditions from the start state.
        step_stages: For each step, the index of the stage it works towards (used to replan from there).
        trace: Groundings, notes and SayCan scores.
        answer: The answer when the instruction was a question ("where did you put the mug?"): no goal, no steps.

    Example:
        >>> plan.to_json()  # doctest: +SKIP
        {'goal': [{'predicate': 'in', 'args': ['red_block', 'bowl']}],
         'plan': [{'skill': 'pick', 'args': ['red_block']}, {'skill': 'place', 'args': ['bowl']}]}
    """

    instruction: str
    stages: tuple[tuple[Predicate, ...], ...]
    steps: tuple[SkillCall, ...]
    step_stages: tuple[int, ...] = ()
    trace: PlanTrace = field(default_factory=PlanTrace, compare=False)
    answer: str | None = None

    def __post_init__(self) -> None:
        if self.step_stages and len(self.step_stages) != len(self.steps):
            raise ValueError(f"step_stages has {len(self.step_stages)} entries for {len(self.steps)} steps")

    @property
    def goal(self) -> tuple[Predicate, ...]:
        """All goal predicates, stage by stage."""
        return tuple(p for stage in self.stages for p in stage)

    def __iter__(self) -> Iterator[SkillCall]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def to_json(self, trace: bool = False) -> dict[str, Any]:
        """The plan JSON of the CLI; with `trace`, also the trace under ``"trace"``."""
        data: dict[str, Any] = {
            "goal": [p.to_json() for p in self.goal],
            "plan": [c.to_json() for c in self.steps],
        }
        if self.answer is not None:
            data["answer"] = self.answer
        if trace:
            data["trace"] = self.trace.to_json()
            data["stages"] = [[str(p) for p in stage] for stage in self.stages]
        return data

    def dumps(self, trace: bool = False) -> str:
        """`to_json` as a JSON string."""
        return json.dumps(self.to_json(trace=trace))

    def describe(self) -> str:
        """A readable multi-line rendering for people."""
        if self.answer is not None:
            return "\n".join([f"instruction: {self.instruction}", f"answer: {self.answer}",
                              *(f"note: {note}" for note in self.trace.notes)])
        lines = [f"instruction: {self.instruction}", "goal:"]
        lines += [f"  {i}. " + ", ".join(str(p) for p in stage) for i, stage in enumerate(self.stages, 1)]
        lines.append("plan:" if self.steps else "plan: (nothing to do, the goal already holds)")
        lines += [f"  {i}. {call}  -- {call.text}" for i, call in enumerate(self.steps, 1)]
        lines += [f"note: {note}" for note in self.trace.notes]
        return "\n".join(lines)


@runtime_checkable
class Planner(Protocol):
    """Anything that turns an instruction in a scene into a `Plan` (or raises `PlanningError`)."""

    def plan(
        self,
        instruction: str,
        objects: Sequence[str],
        facts: Sequence[Sequence[str]] | None = None,
        memory: MemoryInput = None,
    ) -> Plan:
        """Plan `instruction` for the objects present, from `facts` (the env's) or the initial state."""
        ...


def plan_from_json(data: Mapping[str, Any], instruction: str = "") -> Plan:
    """Read the plan JSON back (one stage per goal predicate); raises ValueError/TypeError on bad input."""
    if not isinstance(data, Mapping) or not {"goal", "plan"} <= set(data):
        raise InputError(f"a plan JSON object needs the keys 'goal' and 'plan', got {data!r:.200}")
    if not isinstance(data["goal"], list) or not isinstance(data["plan"], list):
        raise InputTypeError("'goal' and 'plan' must be JSON lists")
    goal = tuple((Predicate.from_json(g),) for g in data["goal"])
    steps = tuple(SkillCall.from_json(s) for s in data["plan"])
    return Plan(instruction, goal, steps)
