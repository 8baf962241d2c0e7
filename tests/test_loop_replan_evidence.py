"""A failed step counts as evidence at once: the replan of an open choice moves to another object."""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.loop import EmbodiedAgent
from agent.planner import GroundedPlanner
from agent.planner.memory import as_memory, with_outcomes
from agent.skills import OBJECTS, SkillCall
from agent.symbolic import SymbolicState, apply_call
from perception.text import HashingTextEncoder


class SymbolicWorld:
    """A world without physics: every call succeeds (its effects applied symbolically) except `broken` ones."""

    def __init__(self, broken: set[str]) -> None:
        self.state = SymbolicState.initial(OBJECTS)
        self.broken = broken
        self.call: SkillCall | None = None

    def objects(self) -> list[str]:
        return list(OBJECTS)

    def facts(self) -> list[list[str]]:
        return self.state.to_facts()

    def start_skill(self, call: SkillCall) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.call = call
        return {}, {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        assert self.call is not None
        if str(self.call) in self.broken:
            return {}, 0.0, False, True, {}
        self.state = apply_call(self.state, self.call)
        return {}, 0.0, True, False, {}

    def frame(self) -> None:
        return None


class Idle:
    name = "idle"

    def reset(self, call: SkillCall) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return np.zeros(4, dtype=np.float32)


class Provider:
    def policy_for(self, call: SkillCall) -> Idle:
        return Idle()


def _picked(record) -> list[str]:
    return [step.call.args[0] for step in record.steps if step.call.skill == "pick"]


def test_a_failed_pick_sends_the_replan_of_an_open_choice_to_another_block() -> None:
    planner = GroundedPlanner(HashingTextEncoder())
    first = planner.plan("pick up a block", OBJECTS).steps[0]
    assert first.skill == "pick"
    world = SymbolicWorld(broken={str(first)})
    record = EmbodiedAgent(planner, Provider(), max_replans=1).run(world, "pick up a block")
    picked = _picked(record)
    assert picked[0] == first.args[0]
    assert len(picked) == 2 and picked[1] != picked[0], record.to_json()
    assert record.success, record.to_json()


def test_with_outcomes_lowers_a_failed_call_and_raises_a_successful_one() -> None:
    memory = with_outcomes(None, [("pick(red_block)", False), ("pick(blue_block)", True)])
    assert memory.skill_stats["pick(red_block)"].attempts == 1
    assert memory.skill_stats["pick(red_block)"].successes == 0
    assert memory.skill_stats["pick"].attempts == 2
    assert with_outcomes(memory, []) is memory
    assert as_memory(None).skill_stats == {}
