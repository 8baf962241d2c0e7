"""The embodied loop: instruction → plan → act skill by skill → check → replan on failure.

`EmbodiedAgent` never imports the simulator. It talks to a `SkillWorld` (something that can start a
skill call, step actions, and report symbolic facts: the experiments layer adapts the kitchen env
to it) and to `SkillPolicy` objects chosen per call by a `PolicyProvider` (learned PPO skills where
they exist and are good enough, scripted experts otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agent.errors import InputError, PlanningError, UnrunnableCallError
from agent.planner.memory import with_outcomes
from agent.planner.plan import Plan, Planner
from agent.planner.search import stage_goal
from agent.skills import Predicate, SkillCall

logger = logging.getLogger(__name__)

Facts = list[list[str]]
"""Symbolic facts in the planner's vocabulary, e.g. [["in", "red_block", "bowl"], ["closed", "drawer"]]."""
CHECKABLE = {"in", "on", "open", "closed", "holding"}
"""Goal predicates that can be read off the scene's facts; `near` and `pushed` are judged by the skill's oracle."""


class SkillWorld(Protocol):
    """What the agent needs from an environment."""

    def objects(self) -> list[str]:
        """Object ids present in the scene."""
        ...

    def facts(self) -> Facts:
        """Symbolic facts true now."""
        ...

    def start_skill(self, call: SkillCall) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Make `call` the current task (judged from the scene as it is now); return obs and info.

        Raises `UnrunnableCallError` when the scene as it is cannot carry out the call (the agent then records
        a failed step and replans).
        """
        ...

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Advance one control step; `terminated` means the skill's oracle says it succeeded."""
        ...

    def frame(self) -> np.ndarray | None:
        """An RGB image for the episode video, or None when not recording."""
        ...


class SkillPolicy(Protocol):
    """Acts for one skill call at a time."""

    name: str

    def reset(self, call: SkillCall) -> None:
        """Start acting for `call`; called once before the first `act` of every skill call."""
        ...

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The next action for the current call, from the environment's observation and info."""
        ...


class EpisodeMemoryStore(Protocol):
    """A knowledge store as the loop uses it: memory for the planner before an episode, the record after it."""

    def planner_memory(self, instruction: str | None = None) -> Any:
        """What the planner may use now (remembered facts, skill statistics, past episodes)."""
        ...

    def record_episode(self, record: EpisodeRecord) -> int:
        """Store a finished episode (its steps, facts before and after, the goal it was judged against)."""
        ...


GoalReader = Callable[[str, Sequence[str], Facts, Any], tuple[tuple[Predicate, ...], ...]]
"""(instruction, objects, facts, memory) -> the instruction's grounded goal stages (`GroundedPlanner.goal_stages`)."""


class PolicyProvider(Protocol):
    """Chooses the policy for a call (and reports why, for the trace).

    A provider may also define `new_episode()` (called when `run` starts) and
    `record_outcome(call, policy_name, success)` (called after every step), e.g. to stop trusting a learned
    policy for a call it has just failed.
    """

    def policy_for(self, call: SkillCall) -> SkillPolicy:
        """The policy that will execute `call` (learned or scripted)."""
        ...


@dataclass
class StepRecord:
    """One executed skill call."""

    call: SkillCall
    policy: str
    success: bool
    steps: int
    seconds: float
    attempt: int
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The step as plain JSON types for episode logs and the knowledge store (seconds rounded to ms)."""
        return {"skill": self.call.skill, "args": list(self.call.args), "text": self.call.text,
                "policy": self.policy, "success": self.success, "steps": self.steps,
                "seconds": round(self.seconds, 3), "attempt": self.attempt, "reason": self.reason}


@dataclass
class EpisodeRecord:
    """Everything one `run` did: the plans, each step, replans with reasons, the outcome."""

    instruction: str
    plans: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    replans: list[dict[str, Any]] = field(default_factory=list)
    success: bool = False
    unmet_goals: list[list[str]] = field(default_factory=list)
    final_facts: Facts = field(default_factory=list)
    seconds: float = 0.0
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    error: str = ""
    goal: list[list[dict[str, Any]]] = field(default_factory=list)
    """The instruction's goal stages (predicate JSON) that success was judged against."""
    goal_source: str = ""
    """Where `goal` came from: "plan" (the grounded planner's own reading) or "instruction" (re-grounded)."""
    start_facts: Facts = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """The first plan's notes: ambiguity choices, defaults, what memory filled in."""
    answer: str | None = None
    """The answer when the instruction was a question (nothing was executed)."""

    def to_json(self) -> dict[str, Any]:
        """The episode as plain JSON types; `answer` appears only when the instruction was a question."""
        data = {"instruction": self.instruction, "success": self.success, "plans": self.plans,
                "steps": [s.to_json() for s in self.steps], "replans": self.replans,
                "unmet_goals": self.unmet_goals, "final_facts": self.final_facts,
                "seconds": round(self.seconds, 3), "error": self.error, "goal": self.goal,
                "goal_source": self.goal_source, "start_facts": self.start_facts, "notes": self.notes}
        if self.answer is not None:
            data["answer"] = self.answer
        return data


FrameHook = Callable[[np.ndarray, SkillCall, str], np.ndarray]


class EmbodiedAgent:
    """Plans an instruction and executes it in a `SkillWorld`, replanning after failed steps.

    Args:
        planner: turns (instruction, objects, facts, memory) into a `Plan`.
        policies: picks a policy for each skill call.
        max_replans: how many times to replan after a failed step before giving up.
        memory: anything the planner accepts as memory (remembered facts, skill statistics).
        record_every: keep every k-th frame for the episode video (0 = no video).
        caption: draws the current skill onto a frame (the experiments layer supplies it).
        before_planning: called with the world before every (re)plan, e.g. so a value-based affordance
            model sees the current observation (SayCan scores the next step against what the robot sees).
        store: a knowledge store: before each episode the planner's memory is read from it (so the episodes
            just run are remembered), and after each episode the record is written to it.
        goal_reader: grounds the instruction's own goal, which success is judged against (never a plan's own
            goal, which an LLM may have got wrong). By default the planner's `goal_stages`, or its fallback's.
    """

    def __init__(
        self, planner: Planner, policies: PolicyProvider, max_replans: int = 2, memory: Any = None,
        record_every: int = 0, caption: FrameHook | None = None,
        before_planning: Callable[[SkillWorld], None] | None = None,
        store: EpisodeMemoryStore | None = None, goal_reader: GoalReader | None = None,
    ) -> None:
        if max_replans < 0:
            raise InputError(f"max_replans must be >= 0, got {max_replans}")
        self.planner, self.policies, self.max_replans, self.memory = planner, policies, max_replans, memory
        self.record_every, self.caption = record_every, caption
        self.before_planning = before_planning
        self.store = store
        self._last_plan: Plan | None = None
        self.goal_reader = goal_reader if goal_reader is not None else _default_goal_reader(planner)

    def run(self, world: SkillWorld, instruction: str) -> EpisodeRecord:
        """Carry out `instruction`; never raises for a failed step (it is recorded), only for bad input.

        Success means the instruction's goals still in force at the end hold (a later clause may undo an
        earlier one: "open the drawer and then close it" ends with the drawer closed). With a `store`, the
        episode is written to it, refused instructions excepted.
        """
        record = EpisodeRecord(instruction)
        started = time.perf_counter()
        new_episode = getattr(self.policies, "new_episode", None)  # optional: forget per-episode choices
        if new_episode is not None:
            new_episode()
        if self.store is not None:
            self.memory = self.store.planner_memory(instruction)
        record.start_facts = world.facts()
        plan = self._plan(world, instruction)  # PlanningError propagates: the instruction itself is bad
        record.plans.append(plan.to_json(trace=True))
        record.notes = list(plan.trace.notes)
        record.answer = plan.answer
        stages = self._instruction_goal(world, instruction, plan, record)
        record.goal = [[p.to_json() for p in stage] for stage in stages]
        goals = list(stage_goal(stages, len(stages) - 1)) if stages else []
        attempt = 0
        queue = list(plan.steps)
        while True:
            while queue:
                call = queue.pop(0)
                step = self._execute(world, call, attempt, record)
                record.steps.append(step)
                if step.success:
                    continue
                if attempt >= self.max_replans:
                    record.error = f"gave up after {attempt} replans: {call.text} failed ({step.reason})"
                    break
                attempt += 1
                queue = self._replan(world, instruction, record, call.text, step.reason)
                goals = self._goals_after_replan(goals, record)
            unmet = self._unmet_now(goals, world)
            if record.error or not unmet or attempt >= self.max_replans:
                break
            attempt += 1  # every step reported success, yet the scene shows a goal unmet: close the loop
            queue = self._replan(world, instruction, record, "the last step",
                                 "goal not reached: " + ", ".join(f"{p}({', '.join(a)})" for p, *a in unmet))
            goals = self._goals_after_replan(goals, record)
            if not queue:
                break
        record.final_facts = world.facts()
        record.unmet_goals = self._unmet(goals, record)
        record.success = (bool(stages) or record.answer is not None) and not record.unmet_goals and not record.error
        record.seconds = time.perf_counter() - started
        if self.store is not None:
            self.store.record_episode(record)
        return record

    def _replan(self, world: SkillWorld, instruction: str, record: EpisodeRecord, after: str, reason: str
                ) -> list[SkillCall]:
        """A new plan from the scene as it is now, recorded in the trace; [] (and `record.error`) when none.

        The planner sees this episode's step outcomes as skill statistics, so a call that just failed is
        less likely to be chosen again where the instruction leaves a choice.
        """
        outcomes = [(str(step.call), step.success) for step in record.steps]
        self._last_plan = None
        try:
            plan = self._plan(world, instruction, with_outcomes(self.memory, outcomes))
        except PlanningError as error:
            record.error = f"replanning failed: {error}"
            return []
        record.replans.append({"after": after, "reason": reason, "facts": world.facts(),
                               "new_plan": [c.to_json() for c in plan.steps]})
        self._last_plan = plan
        record.plans.append(plan.to_json(trace=True))
        return list(plan.steps)

    def _goals_after_replan(self, goals: list[Predicate], record: EpisodeRecord) -> list[Predicate]:
        """The goals to judge by after a replan.

        When the grounded reading of the instruction is the plan's own (`goal_source == "plan"`), a replan
        reads the instruction again in the scene as it now is and may make an open choice differently
        ("pick up a block" after the red block's pick failed: the green one), so its final goals replace the
        old ones. A goal read from the instruction separately (an LLM's plan) stays as it was.
        """
        plan = self._last_plan
        if record.goal_source != "plan" or plan is None or not plan.stages:
            return goals
        record.goal = [[p.to_json() for p in stage] for stage in plan.stages]
        return list(stage_goal(plan.stages, len(plan.stages) - 1))

    @staticmethod
    def _unmet_now(goals: Sequence[Predicate], world: SkillWorld) -> list[list[str]]:
        """Goals readable off the scene's facts that do not hold now (others are judged at the end)."""
        facts = {tuple(f) for f in world.facts()}
        return [[g.predicate, *g.args] for g in goals
                if g.predicate in CHECKABLE and (g.predicate, *g.args) not in facts]

    def _instruction_goal(self, world: SkillWorld, instruction: str, plan: Plan, record: EpisodeRecord
                          ) -> tuple[tuple[Predicate, ...], ...]:
        """The goal the instruction asks for: the plan's when the grounded reading made it, else re-grounded."""
        reader = self.goal_reader
        if reader is None or getattr(reader, "__self__", None) is self.planner:
            record.goal_source = "plan"
            return plan.stages
        record.goal_source = "instruction"
        try:
            return reader(instruction, world.objects(), record.start_facts, self.memory)
        except PlanningError as error:
            record.error = f"cannot judge success: the instruction's goal could not be grounded ({error})"
            return ()

    def _plan(self, world: SkillWorld, instruction: str, memory: Any = None) -> Plan:
        if self.before_planning is not None:
            self.before_planning(world)
        return self.planner.plan(instruction, world.objects(), world.facts(),
                                 self.memory if memory is None else memory)

    def _execute(self, world: SkillWorld, call: SkillCall, attempt: int, record: EpisodeRecord) -> StepRecord:
        policy = self.policies.policy_for(call)
        policy.reset(call)
        started = time.perf_counter()
        try:
            obs, info = world.start_skill(call)
        except UnrunnableCallError as error:
            logger.info("%s cannot run: %s", call.text, error)
            return StepRecord(call, policy.name, False, 0, time.perf_counter() - started, attempt,
                              f"cannot run: {error}")
        steps, success, reason = 0, False, "ran out of steps"
        while True:
            self._record_frame(world, call, policy.name, steps, record)
            obs, _, terminated, truncated, info = world.step(policy.act(obs, info))
            steps += 1
            if terminated:
                success, reason = True, ""
                break
            if truncated:
                reason = info.get("failure_reason") or (
                    "physics fault" if info.get("physics_fault") else f"no success within {steps} steps")
                break
        self._record_frame(world, call, "done" if success else "failed", 0, record)
        logger.info("%s by %s: %s in %d steps", call.text, policy.name, "ok" if success else reason, steps)
        outcome = getattr(self.policies, "record_outcome", None)  # optional: providers that learn from failures
        if outcome is not None:
            outcome(call, policy.name, success)
        return StepRecord(call, policy.name, success, steps, time.perf_counter() - started, attempt, reason)

    def _record_frame(self, world: SkillWorld, call: SkillCall, status: str, step: int, record: EpisodeRecord
                      ) -> None:
        if not self.record_every or step % self.record_every:
            return
        frame = world.frame()
        if frame is None:
            return
        record.frames.append(self.caption(frame, call, status) if self.caption else frame)

    @staticmethod
    def _unmet(goals: Sequence[Predicate], record: EpisodeRecord) -> list[list[str]]:
        """Goals not satisfied at the end: checked on facts where possible, else by the last matching step."""
        facts = {tuple(f) for f in record.final_facts}
        unmet = []
        for goal in goals:
            key = (goal.predicate, *goal.args)
            if goal.predicate in CHECKABLE:
                if key not in facts:
                    unmet.append(list(key))
                continue
            skill = {"near": "reach", "pushed": "push"}.get(goal.predicate)
            done = [s.success for s in record.steps if s.call.skill == skill and tuple(s.call.args) == goal.args]
            if not (done and done[-1]):
                unmet.append(list(key))
        return unmet


def _default_goal_reader(planner: Any) -> GoalReader | None:
    """The planner's own `goal_stages`, else its fallback's (an LLM planner falls back to the grounded one)."""
    for candidate in (planner, getattr(planner, "fallback", None)):
        reader = getattr(candidate, "goal_stages", None)
        if callable(reader):
            return reader
    return None
