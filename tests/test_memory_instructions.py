"""Memory-dependent instructions: memory fills what the scene leaves open, never what the scene settles."""

from __future__ import annotations

import pytest

from agent.errors import PlanningError
from agent.planner import GroundedPlanner, Plan, PlannerMemory
from agent.recall import EpisodeMemory, History, fill_unknowns
from agent.skills import Predicate
from perception.text import HashingTextEncoder


def episode(n: int, instruction: str, goal: list[Predicate], steps: list[tuple[str, tuple[str, ...]]],
            start: list[list[str]], final: list[list[str]]) -> EpisodeMemory:
    return EpisodeMemory(instruction, (tuple(goal),), tuple((s, a, True) for s, a in steps),
                         tuple(tuple(f) for f in start), tuple(tuple(f) for f in final), True, None, n)


RED_IN_DRAWER = episode(1, "put the red block in the drawer", [Predicate("in", ("red_block", "drawer"))],
                        [("open", ("drawer",)), ("pick", ("red_block",)), ("place", ("drawer",))],
                        [["on", "red_block", "table"], ["closed", "drawer"]],
                        [["in", "red_block", "drawer"], ["open", "drawer"]])
BLUE_IN_DRAWER = episode(2, "hide the blue block in the drawer", [Predicate("in", ("blue_block", "drawer"))],
                         [("pick", ("blue_block",)), ("place", ("drawer",))],
                         [["on", "blue_block", "table"], ["open", "drawer"]],
                         [["in", "blue_block", "drawer"], ["open", "drawer"]])
MUG_TO_PLATE = episode(3, "move the mug to the plate", [Predicate("on", ("mug", "plate"))],
                       [("pick", ("mug",)), ("place", ("plate",))],
                       [["in", "mug", "bowl"], ["open", "drawer"]], [["on", "mug", "plate"], ["open", "drawer"]])
PUSH_LEFT = episode(4, "push the green block to the left", [Predicate("pushed", ("green_block", "left"))],
                    [("push", ("green_block", "left"))], [["on", "green_block", "table"]],
                    [["on", "green_block", "table"]])
MEMORY = PlannerMemory(episodes=(RED_IN_DRAWER, MUG_TO_PLATE))
SCENE = [["in", "red_block", "drawer"], ["in", "blue_block", "drawer"], ["on", "green_block", "table"],
         ["on", "yellow_block", "table"], ["on", "mug", "plate"], ["open", "drawer"], ["gripper_empty"]]


@pytest.fixture(scope="module")
def planner() -> GroundedPlanner:
    return GroundedPlanner(HashingTextEncoder())


def goal(plan: Plan) -> list[str]:
    return [str(p) for p in plan.goal]


def test_moves_are_read_from_steps_and_start_facts() -> None:
    (move,) = MUG_TO_PLATE.moves()
    assert (move.obj, move.before, move.after) == ("mug", ("in", "bowl"), ("on", "plate"))
    history = History((RED_IN_DRAWER, MUG_TO_PLATE))
    assert history.last_move("red_block")[1].after == ("in", "drawer")
    assert history.last_action() is MUG_TO_PLATE
    assert EpisodeMemory.from_json(MUG_TO_PLATE.to_json()) == MUG_TO_PLATE
    with pytest.raises(ValueError, match="instruction"):
        EpisodeMemory.from_json({"goal": []})


def test_the_block_you_put_in_the_drawer_comes_from_memory(planner: GroundedPlanner) -> None:
    plan = planner.plan("take out the block you put in the drawer", facts=SCENE, memory=MEMORY)
    assert goal(plan) == ["holding(red_block)"], "two blocks are in the drawer; memory says which one I put there"
    assert any("memory: 'the block you put in the drawer' is red_block" in n for n in plan.trace.notes)
    later = PlannerMemory(episodes=(RED_IN_DRAWER, BLUE_IN_DRAWER))
    assert goal(planner.plan("put the block that you just put in the drawer on the plate", facts=SCENE,
                             memory=later)) == ["on(blue_block, plate)"], "the most recent one"


def test_memory_never_overrides_what_the_scene_settles(planner: GroundedPlanner) -> None:
    plan = planner.plan("take out the blue block you put in the drawer", facts=SCENE, memory=MEMORY)
    assert goal(plan) == ["holding(blue_block)"], "the phrase names the blue block: memory may not re-point it"
    assert any("kept blue_block" in n for n in plan.trace.notes)
    # a location the scene reports is never replaced by a remembered one
    remembered = {"red_block": ("in", "drawer", 0.9), "mug": ("in", "bowl", 0.9)}
    facts, notes = fill_unknowns([["on", "red_block", "table"], ["unknown", "mug"]], ["red_block", "mug", "bowl"],
                                 remembered)
    assert ["on", "red_block", "table"] in facts and ["in", "red_block", "drawer"] not in facts
    assert ["in", "mug", "bowl"] in facts and ["unknown", "mug"] not in facts
    assert len(notes) == 1 and "mug" in notes[0]


def test_unseen_objects_are_filled_from_memory(planner: GroundedPlanner) -> None:
    unseen = [["unknown", "red_block"], ["closed", "drawer"], ["gripper_empty"]]
    memory = PlannerMemory(facts=(), episodes=())
    from agent.planner.memory import MemoryFact

    memory = PlannerMemory(facts=(MemoryFact("red_block", "in", "drawer", 0.9),))
    plan = planner.plan("put the red block in the bowl", facts=unseen, memory=memory)
    assert [str(c) for c in plan.steps] == ["open(drawer)", "pick(red_block)", "place(bowl)"]
    answer = planner.plan("where is the red block?", facts=unseen, memory=memory).answer
    assert answer == "I cannot see the red block; I remember it in the drawer."


@pytest.mark.parametrize("instruction, expected", [
    ("put the mug back where it was", ["in(mug, bowl)"]),
    ("put it back where it was", ["in(mug, bowl)"]),
    ("return the mug to where it was", ["in(mug, bowl)"]),
    ("do the same with the green block", ["on(green_block, plate)"]),
    ("do that again", ["on(mug, plate)"]),
    ("try that again", ["on(mug, plate)"]),
    ("once more, please", ["on(mug, plate)"]),
])
def test_memory_dependent_goals(planner: GroundedPlanner, instruction: str, expected: list[str]) -> None:
    assert goal(planner.plan(instruction, facts=SCENE, memory=MEMORY)) == expected


def test_put_it_back_within_one_instruction_needs_no_memory(planner: GroundedPlanner) -> None:
    plan = planner.plan("pick up the mug and put it back", facts=SCENE)
    assert goal(plan) == ["on(mug, plate)"], "'back' after an earlier clause moved it: where it was at the start"


def test_do_that_again_repeats_a_push(planner: GroundedPlanner) -> None:
    plan = planner.plan("do that again", facts=SCENE, memory=PlannerMemory(episodes=(PUSH_LEFT,)))
    assert [str(c) for c in plan.steps] == ["push(green_block, left)"]
    assert any("repeating episode 4" in n for n in plan.trace.notes)


def test_where_did_you_put_is_an_answer_not_an_action(planner: GroundedPlanner) -> None:
    plan = planner.plan("where did you put the mug?", facts=SCENE, memory=MEMORY)
    assert plan.steps == () and plan.stages == ()
    assert plan.answer is not None and plan.answer.startswith("I put the mug on the plate (episode 3")
    assert plan.to_json()["answer"] == plan.answer and "answer:" in plan.describe()
    moved = [f if f[1:2] != ["mug"] else ["on", "mug", "table"] for f in SCENE]
    assert "It is now on the table." in planner.plan("where did you put the mug", facts=moved, memory=MEMORY).answer
    assert planner.plan("where is the green block?", facts=SCENE).answer == "The green block is on the table."


@pytest.mark.parametrize("instruction", [
    "take out the block you put in the drawer", "put the mug back where it was", "put it back where it was",
    "do that again", "do the same with the green block", "where did you put the mug?",
])
def test_without_memory_the_planner_says_it_does_not_remember(planner: GroundedPlanner, instruction: str) -> None:
    with pytest.raises(PlanningError, match=r"(I do not remember|do not remember an earlier episode)"):
        planner.plan(instruction, facts=SCENE)


def test_memory_without_the_asked_episode_is_still_honest(planner: GroundedPlanner) -> None:
    only_push = PlannerMemory(episodes=(PUSH_LEFT,))
    with pytest.raises(PlanningError, match="I do not remember which block I put in the bowl: nothing in memory"):
        planner.plan("take out the block you put in the bowl", facts=SCENE, memory=only_push)
    with pytest.raises(PlanningError, match="I do not remember moving the mug"):
        planner.plan("put the mug back where it was", facts=SCENE, memory=only_push)


def test_ordinary_instructions_are_untouched_by_memory(planner: GroundedPlanner) -> None:
    for text in ("could you put the green block in the bowl", "put the green block into the bowl after you put the "
                 "yellow block on the plate"):
        assert goal(planner.plan(text, facts=SCENE, memory=MEMORY)) == goal(planner.plan(text, facts=SCENE))
