"""The embodied loop: executes plans in the real kitchen, records traces, and replans after failures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from agent.loop import EmbodiedAgent
from agent.planner.plan import Plan
from agent.planner.search import GoalSearch
from agent.skills import Predicate, SkillCall
from agent.symbolic import SymbolicState
from envs.household import HouseholdEnv
from experiments.kitchen.world import KitchenWorld, ScriptedProvider, ScriptedSkillPolicy, task_for_call

GOALS = {
    "put the red block in the bowl": [Predicate("in", ("red_block", "bowl"))],
    "hide the blue block in the drawer and close it": [Predicate("in", ("blue_block", "drawer")),
                                                        Predicate("closed", ("drawer",))],
    "stack green on yellow": [Predicate("on", ("green_block", "yellow_block"))],
}


class SearchPlanner:
    """A test planner: fixed goals per instruction, plans by symbolic search from the given facts."""

    def __init__(self) -> None:
        self.calls = 0

    def plan(self, instruction: str, objects: Sequence[str], facts=None, memory=None) -> Plan:
        self.calls += 1
        goal = tuple(GOALS[instruction])
        state = SymbolicState.from_facts(facts) if facts else SymbolicState.initial(objects)
        steps = GoalSearch().shortest(state, goal)
        assert steps is not None
        return Plan(instruction, (goal,), tuple(steps), (0,) * len(steps))


class FailFirstPick(ScriptedSkillPolicy):
    """Injected fault: the first pick does nothing (the gripper stays put), later ones work."""

    name = "flaky"

    def __init__(self, world: KitchenWorld) -> None:
        super().__init__(world)
        self.failed = False
        self.current: SkillCall | None = None

    def reset(self, call: SkillCall) -> None:
        super().reset(call)
        self.current = call

    def act(self, obs, info):
        if self.current is not None and self.current.skill == "pick" and not self.failed:
            if info["scene_state"].step >= 55:
                self.failed = True
            return np.zeros(4, dtype=np.float32)
        return super().act(obs, info)


@pytest.fixture(scope="module")
def world():
    env = HouseholdEnv(task="none")
    yield KitchenWorld(env)
    env.close()


@pytest.mark.parametrize("instruction", sorted(GOALS))
def test_scripted_agent_accomplishes_instructions(world: KitchenWorld, instruction: str) -> None:
    world.reset(seed=11)
    agent = EmbodiedAgent(SearchPlanner(), ScriptedProvider(world))
    record = agent.run(world, instruction)
    assert record.success, record.to_json()
    for goal in GOALS[instruction]:
        if goal.predicate in ("in", "on", "closed"):
            assert [goal.predicate, *goal.args] in record.final_facts
    # Every step succeeds, but a stack may be judged again at rest and fail once: the oracle's "on" test first
    # holds while the let-go block is still falling, and a block landing at 0.5 m/s can slide off (seed 11).
    assert all(step.success or step.reason == "the placed object did not stay once it came to rest"
               for step in record.steps)
    assert sum(not step.success for step in record.steps) <= 1
    assert record.to_json()["plans"][0]["plan"], "the trace keeps the plan"


def test_agent_replans_after_an_injected_failure(world: KitchenWorld) -> None:
    world.reset(seed=4)
    planner = SearchPlanner()
    policy = FailFirstPick(world)

    class Provider:
        def policy_for(self, call):
            return policy

    record = EmbodiedAgent(planner, Provider(), max_replans=2).run(world, "put the red block in the bowl")
    assert policy.failed
    assert not record.steps[0].success and record.steps[0].reason.startswith("no success")
    assert len(record.replans) == 1 and record.replans[0]["after"] == "pick up the red block"
    assert planner.calls == 2
    assert record.success, record.to_json()


def test_agent_gives_up_after_max_replans(world: KitchenWorld) -> None:
    world.reset(seed=4)

    class Never(ScriptedSkillPolicy):
        name = "never"

        def act(self, obs, info):
            return np.zeros(4, dtype=np.float32)

    class Provider:
        def policy_for(self, call):
            return Never(world)

    record = EmbodiedAgent(SearchPlanner(), Provider(), max_replans=1).run(world, "put the red block in the bowl")
    assert not record.success
    assert len(record.steps) == 2 and "gave up after 1 replans" in record.error
    assert ["in", "red_block", "bowl"] in record.unmet_goals


def test_place_maps_to_the_object_in_hand() -> None:
    assert str(task_for_call(SkillCall("place", ("drawer",)), "mug", None)) == "place_in(mug, drawer)"
    assert str(task_for_call(SkillCall("place", ("plate",)), None, "red_block")) == "place_on(red_block, plate)"
    with pytest.raises(ValueError, match="holds nothing"):
        task_for_call(SkillCall("place", ("bowl",)), None, None)
