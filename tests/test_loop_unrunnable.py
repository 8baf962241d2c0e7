"""A skill call the world cannot start is a failed step, not the end of the episode or of an evaluation.

Found in a learned-chain evaluation: the planner put the held mug "down" on a block, a task the kitchen does
not have, and `set_task` raised through the loop and ended the whole run at chain 22. The domain now matches
the env (only blocks stack on blocks), and whatever else the world refuses becomes a failed step to replan from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agent.errors import UnrunnableCallError
from agent.loop import EmbodiedAgent
from agent.planner import GroundedPlanner
from agent.skills import BLOCKS, OBJECTS, SkillCall
from agent.symbolic import SymbolicState, precondition_failure
from envs.household import HouseholdEnv
from experiments.kitchen.world import KitchenWorld
from perception.text import HashingTextEncoder
from tests.test_loop_replan_evidence import Provider, SymbolicWorld


@pytest.fixture(scope="module")
def planner() -> GroundedPlanner:
    return GroundedPlanner(HashingTextEncoder())


def test_only_a_block_stacks_on_a_block() -> None:
    holding_mug = SymbolicState.from_facts([["holding", "mug"]])
    assert "only a block" in (precondition_failure(holding_mug, SkillCall("place", ("blue_block",))) or "")
    assert precondition_failure(holding_mug, SkillCall("place", ("plate",))) is None
    holding_block = SymbolicState.from_facts([["holding", "red_block"]])
    assert precondition_failure(holding_block, SkillCall("place", ("blue_block",))) is None


def test_the_planner_never_puts_the_held_mug_down_on_a_block(planner: GroundedPlanner) -> None:
    for instruction in ("put the red block on the blue block", "put the green block in the drawer",
                        "stack the yellow block on the red block"):
        plan = planner.plan(instruction, OBJECTS, [["holding", "mug"]])
        first = plan.steps[0]
        assert first.skill == "place" and first.args[0] not in BLOCKS, (instruction, plan.to_json())


class RefusingWorld(SymbolicWorld):
    """Refuses the first start of each call in `refused`, as the kitchen refuses a task it does not have."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__(broken=set())
        self.refused = set(refused)

    def start_skill(self, call: SkillCall) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if str(call) in self.refused:
            self.refused.discard(str(call))
            raise UnrunnableCallError(f"no task for {call}")
        return super().start_skill(call)


def test_an_unrunnable_call_is_a_failed_step_and_the_agent_replans(planner: GroundedPlanner) -> None:
    world = RefusingWorld({"pick(red_block)"})
    record = EmbodiedAgent(planner, Provider(), max_replans=1).run(world, "put the red block in the bowl")
    first = record.steps[0]
    assert str(first.call) == "pick(red_block)" and not first.success and first.steps == 0
    assert first.reason == "cannot run: no task for pick(red_block)"
    assert record.replans and record.replans[0]["reason"] == first.reason
    assert record.success, record.to_json()


def test_with_no_replans_left_the_unrunnable_call_ends_the_episode_as_a_failure(planner: GroundedPlanner) -> None:
    world = RefusingWorld({"pick(red_block)"})
    record = EmbodiedAgent(planner, Provider(), max_replans=0).run(world, "put the red block in the bowl")
    assert not record.success and "cannot run" in record.error


def test_the_kitchen_refuses_a_place_with_nothing_to_place() -> None:
    env = HouseholdEnv(task="none")
    try:
        world = KitchenWorld(env)
        world.reset(seed=0)
        with pytest.raises(UnrunnableCallError, match="holds nothing"):
            world.start_skill(SkillCall("place", ("bowl",)))
        assert env.task is None  # nothing was half set up
    finally:
        env.close()
