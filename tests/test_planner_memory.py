"""SayCan-style scoring and the memory hooks: each hook must change the plan or its scores."""

from __future__ import annotations

import pytest

from agent.planner import (
    CausalAffordance,
    GroundedPlanner,
    LanguageScorer,
    MemoryFact,
    PlannerMemory,
    SkillStats,
    SkillStatsAffordance,
    ValueFunctionAffordance,
    as_memory,
)
from agent.skills import OBJECTS, SkillCall
from agent.symbolic import SymbolicState
from perception.text import HashingTextEncoder


class FakeValue:
    """A stand-in for a learned critic: high value for one object, low for the others."""

    def __init__(self, favourite: str) -> None:
        self.favourite = favourite
        self.calls: list[str] = []

    def value(self, call: SkillCall, state: SymbolicState) -> float:
        self.calls.append(str(call))
        return 0.9 if self.favourite in call.args else 0.2


@pytest.fixture(scope="module")
def encoder() -> HashingTextEncoder:
    return HashingTextEncoder()


def first_pick(plan) -> str:
    return next(str(c) for c in plan.steps if c.skill == "pick")


def test_language_scores_are_a_distribution_that_prefers_matching_text(encoder) -> None:
    scorer = LanguageScorer(encoder)
    calls = [SkillCall("pick", ("red_block",)), SkillCall("pick", ("mug",)), SkillCall("open", ("drawer",))]
    scores = scorer.scores("pick up the mug", calls)
    assert sum(scores) == pytest.approx(1.0)
    assert max(range(3), key=lambda i: scores[i]) == 1
    assert scorer.scores("anything", []) == []


def test_value_function_affordance_changes_the_choice_and_shows_in_the_trace(encoder) -> None:
    plain = GroundedPlanner(encoder).plan("pick up a block", OBJECTS)
    value = FakeValue("yellow_block")
    planner = GroundedPlanner(encoder, affordance=ValueFunctionAffordance(value))
    plan = planner.plan("pick up a block", OBJECTS)
    assert first_pick(plain) != "pick(yellow_block)"
    assert first_pick(plan) == "pick(yellow_block)"
    assert value.calls, "the value function was never asked"
    options = next(g["options"] for g in plan.trace.groundings if "options" in g)
    assert max(options, key=options.get) == "yellow_block"
    candidates = plan.to_json(trace=True)["trace"]["steps"][0]["candidates"]
    by_call = {c["call"]: c for c in candidates}
    assert by_call["pick(yellow_block)"]["affordance"] == pytest.approx(0.9)
    assert by_call["pick(yellow_block)"]["score"] == pytest.approx(0.9 * by_call["pick(yellow_block)"]["language"],
                                                                   abs=1e-3)


def test_value_function_orders_equally_short_plans(encoder) -> None:
    planner = GroundedPlanner(encoder, affordance=ValueFunctionAffordance(FakeValue("mug")))
    plan = planner.plan("put the mug and the red block in the bowl", OBJECTS)
    assert first_pick(plan) == "pick(mug)"
    plan = GroundedPlanner(encoder, affordance=ValueFunctionAffordance(FakeValue("red_block"))).plan(
        "put the mug and the red block in the bowl", OBJECTS)
    assert first_pick(plan) == "pick(red_block)"


def test_skill_statistics_from_memory_act_as_affordance_prior(encoder) -> None:
    planner = GroundedPlanner(encoder)
    default = first_pick(planner.plan("pick up a block", OBJECTS))
    failing = default.replace("pick(", "").rstrip(")")
    memory = {"skill_stats": {f"pick({failing})": [0, 12]}}
    changed = planner.plan("pick up a block", OBJECTS, memory=memory)
    assert first_pick(changed) != default
    candidates = {str(c.call): c for c in changed.trace.steps[0].candidates}
    assert candidates[default].affordance == pytest.approx(1 / 14)
    assert candidates[default].score < candidates[first_pick(changed)].score


def test_causal_facts_lower_the_affordance_of_what_they_hinder(encoder) -> None:
    planner = GroundedPlanner(encoder)
    default = first_pick(planner.plan("pick up a block", OBJECTS))
    obj = default[5:-1]
    memory = [MemoryFact(f"{obj}.mass", "hinders", f"pick({obj})", 0.9)]
    assert first_pick(planner.plan("pick up a block", OBJECTS, memory=memory)) != default
    model = CausalAffordance(memory)
    assert model.affordance(SkillCall("pick", (obj,)), SymbolicState.initial()) == pytest.approx(1 - 0.81)
    assert model.affordance(SkillCall("open", ("drawer",)), SymbolicState.initial()) == 1.0


def test_remembered_locations_fill_the_start_state(encoder) -> None:
    planner = GroundedPlanner(encoder)
    plain = planner.plan("put the red block in the bowl", OBJECTS)
    memory = PlannerMemory((MemoryFact("red_block", "in", "drawer", 0.8),))
    remembered = planner.plan("put the red block in the bowl", OBJECTS, memory=memory)
    assert [str(c) for c in plain] == ["pick(red_block)", "place(bowl)"]
    assert [str(c) for c in remembered] == ["open(drawer)", "pick(red_block)", "place(bowl)"]
    assert any("memory: red_block in drawer" in note for note in remembered.trace.notes)
    # current observations win over memory, and weak memories are ignored
    seen = planner.plan("put the red block in the bowl", OBJECTS, [["on", "red_block", "table"]], memory)
    assert len(seen) == 2
    weak = PlannerMemory((MemoryFact("red_block", "in", "drawer", 0.3),))
    assert len(planner.plan("put the red block in the bowl", OBJECTS, memory=weak)) == 2


def test_remembered_drawer_state(encoder) -> None:
    planner = GroundedPlanner(encoder)
    memory = [("drawer", "is", "open", 0.9)]
    assert [str(c) for c in planner.plan("put the mug in the drawer", OBJECTS, memory=memory)] == [
        "pick(mug)", "place(drawer)"]


def test_memory_input_forms_and_errors() -> None:
    assert as_memory(None) == PlannerMemory()
    memory = as_memory({"facts": [{"subject": "mug", "relation": "on", "object": "plate"}],
                        "skill_stats": {"pick": {"successes": 3, "attempts": 4}}})
    assert memory.locations() == {"mug": ("on", "plate", 1.0)}
    assert memory.skill_stats["pick"].rate == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="confidence"):
        MemoryFact("mug", "on", "plate", 1.5)
    with pytest.raises(ValueError, match="successes <= attempts"):
        SkillStats(5, 2)
    with pytest.raises(ValueError, match="extra keys"):
        as_memory({"facts": [], "stories": []})
    with pytest.raises(TypeError, match="memory fact"):
        as_memory([("mug", "on")])
    assert SkillStatsAffordance({}).affordance(SkillCall("pick", ("mug",)), SymbolicState.initial()) == 1.0
