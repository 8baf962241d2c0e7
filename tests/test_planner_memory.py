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
    assert SkillStatsAffordance({}).affordance(SkillCall("pick", ("mug",)), SymbolicState.initial()) == 0.5


def _stats_affordance(stats: dict, call: SkillCall) -> float:
    memory = as_memory({"skill_stats": stats})
    return SkillStatsAffordance(memory.skill_stats).affordance(call, SymbolicState.initial())


@pytest.mark.parametrize("skill_record", [None, [0, 3], [5, 6]])
def test_skill_statistics_are_monotone_in_successes_and_failures(skill_record) -> None:
    """Tried and untried calls share one prior: every success raises, every failure lowers the affordance."""
    call = SkillCall("pick", ("red_block",))
    base = {} if skill_record is None else {"pick": skill_record}
    untried = _stats_affordance(base, call)
    assert untried == pytest.approx(0.5 if skill_record is None else (skill_record[0] + 1) / (skill_record[1] + 2))
    for successes in range(4):
        for attempts in range(successes, successes + 4):
            here = _stats_affordance({**base, str(call): [successes, attempts]}, call)
            one_more_success = _stats_affordance({**base, str(call): [successes + 1, attempts + 1]}, call)
            one_more_failure = _stats_affordance({**base, str(call): [successes, attempts + 1]}, call)
            assert one_more_success > here > one_more_failure
    assert _stats_affordance({**base, str(call): [1, 1]}, call) > untried > _stats_affordance(
        {**base, str(call): [0, 1]}, call)


def test_a_success_keeps_the_choice_instead_of_cycling_through_blocks(encoder) -> None:
    """Issue 18: four runs of "pick up a block" used to pick red, blue, green, yellow in turn."""
    planner = GroundedPlanner(encoder)
    stats: dict[str, list[int]] = {}
    chosen = []
    for _ in range(4):
        call = first_pick(planner.plan("pick up a block", OBJECTS, memory={"skill_stats": stats}))
        chosen.append(call)
        successes, attempts = stats.get(call, [0, 0])
        stats[call] = [successes + 1, attempts + 1]
    assert len(set(chosen)) == 1, chosen
    # ...and a failure moves the choice to another block
    failed = chosen[0]
    after_failure = first_pick(planner.plan("pick up a block", OBJECTS, memory={"skill_stats": {failed: [0, 1]}}))
    assert after_failure != failed


def test_causal_facts_only_concern_their_own_object_and_skill(encoder) -> None:
    from agent.planner.affordance import concerns

    mass_pick = MemoryFact("red_block.mass", "hinders", "pick(red_block)", 0.9)
    mass_push = MemoryFact("red_block.mass", "hinders", "push", 0.9)
    table = MemoryFact("table.friction", "hinders", "push", 0.9)
    assert concerns(mass_pick, SkillCall("pick", ("red_block",)))
    assert not concerns(mass_pick, SkillCall("pick", ("blue_block",)))
    assert not concerns(mass_pick, SkillCall("push", ("red_block", "left")))
    assert concerns(mass_push, SkillCall("push", ("red_block", "left")))
    assert not concerns(mass_push, SkillCall("push", ("blue_block", "left")))
    assert concerns(table, SkillCall("push", ("blue_block", "left")))
    assert concerns(MemoryFact("red_block.mass", "hinders", "push(red_block)", 0.9),
                    SkillCall("push", ("red_block", "right")))


def test_causal_facts_steer_the_choice_for_the_skill_the_clause_needs(encoder) -> None:
    planner = GroundedPlanner(encoder)
    default_pick = first_pick(planner.plan("put a block in the bowl", OBJECTS))
    obj = default_pick[5:-1]
    lift = [MemoryFact(f"{obj}.mass", "hinders", f"pick({obj})", 0.9, "mass decreases lift_height")]
    changed = planner.plan("put a block in the bowl", OBJECTS, memory=lift)
    assert first_pick(changed) != default_pick
    assert any(note.startswith(f"causal: {obj}.mass hinders pick({obj})") and "lift_height" in note
               for note in changed.trace.notes)
    # a finding about picking does not steer a push, and one about pushing does
    push = planner.plan("push a block to the left", OBJECTS)
    pushed = next(c for c in push.steps if c.skill == "push").args[0]
    same = planner.plan("push a block to the left", OBJECTS, memory=[MemoryFact(f"{pushed}.mass", "hinders",
                                                                              f"pick({pushed})", 0.9)])
    assert [str(c) for c in same.steps] == [str(c) for c in push.steps]
    moved = planner.plan("push a block to the left", OBJECTS, memory=[MemoryFact(f"{pushed}.mass", "hinders",
                                                                               f"push({pushed})", 0.9)])
    assert next(c for c in moved.steps if c.skill == "push").args[0] != pushed


def test_causal_facts_never_change_a_plan_whose_objects_are_named(encoder) -> None:
    planner = GroundedPlanner(encoder)
    memory = [MemoryFact(f"{b}.mass", "hinders", f"{skill}({b})", 1.0) for b in ("red_block", "mug")
              for skill in ("pick", "push")]
    for instruction in ("put the red block in the bowl", "put the mug and the red block in the bowl",
                        "push the red block to the left", "stack the red block on the green block"):
        plain = planner.plan(instruction, OBJECTS)
        assert [str(c) for c in planner.plan(instruction, OBJECTS, memory=memory).steps] == [
            str(c) for c in plain.steps], instruction
