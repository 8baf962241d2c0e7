"""Causal findings reach the planner intact and change only the choices an instruction leaves open."""

from __future__ import annotations

import pytest

from agent.planner import GroundedPlanner, MemoryFact
from agent.skills import BLOCKS
from experiments.causal_study.study import OUTCOMES
from experiments.feedback.plan_changes import count_plan_changes, planner_cases
from experiments.feedback.scenario import CHOICE_INSTRUCTIONS, deviations, world_variables
from experiments.kitchen.memory_bridge import OUTCOME_SKILLS, MemoryBridge, record_study_facts
from perception.text import HashingTextEncoder


def study_fact(subject: str, relation: str, outcome: str, effect: float, interval: tuple[float, float]) -> dict:
    return {"subject": subject, "relation": relation, "object": outcome, "effect_size": effect,
            "interval": list(interval), "level": 0.95, "n": 12, "provenance": "study:runs/test"}


@pytest.fixture(scope="module")
def planner() -> GroundedPlanner:
    return GroundedPlanner(HashingTextEncoder())


def test_every_study_outcome_concerns_a_skill() -> None:
    assert set(OUTCOMES) <= set(OUTCOME_SKILLS)
    assert OUTCOME_SKILLS["lift_height"] == "pick" and OUTCOME_SKILLS["strike_distance"] == "push"


def test_study_facts_keep_the_treatment_variable_object_and_outcome(tmp_path) -> None:
    facts = [study_fact("red_block.mass", "decreases", "lift_height", -0.37, (-0.38, -0.36)),
             study_fact("blue_block.mass", "decreases", "strike_distance", -0.031, (-0.04, -0.02)),
             study_fact("table.friction", "decreases", "push_distance", -0.02, (-0.03, -0.01)),
             study_fact("green_block.mass", "no_detected_effect", "lift_height", 0.0001, (-0.001, 0.001)),
             study_fact("table.friction", "confounds", "red_block.mass -> push_distance", 0.01, (0.005, 0.02))]
    assert record_study_facts(tmp_path / "store.sqlite", facts, HashingTextEncoder()) == 5
    bridge = MemoryBridge(tmp_path / "store.sqlite", HashingTextEncoder())
    try:
        stored = {(f.subject, f.object): f for f in bridge.store.causal_facts()}
        memory = bridge.planner_memory()
    finally:
        bridge.close()
    assert stored[("red_block.mass", "lift_height")].effect == pytest.approx(-0.37)
    assert (stored[("red_block.mass", "lift_height")].ci_low, stored[("red_block.mass", "lift_height")].ci_high) == (
        pytest.approx(-0.38), pytest.approx(-0.36))
    planner_facts = {(f.subject, f.relation, f.object): f for f in memory.causal_facts()}
    assert set(planner_facts) == {("red_block.mass", "hinders", "pick(red_block)"),
                                  ("blue_block.mass", "hinders", "push(blue_block)"),
                                  ("table.friction", "hinders", "push")}
    lift = planner_facts[("red_block.mass", "hinders", "pick(red_block)")]
    assert lift.confidence > 0.95
    assert "red_block.mass decreases lift_height by 0.37 [-0.38, -0.36] (n=12)" in lift.evidence
    assert "study:runs/test" in lift.evidence


def test_causal_knowledge_changes_no_plan_that_names_its_objects(planner) -> None:
    memory = [MemoryFact(f"{b}.mass", "hinders", f"{skill}({b})", 0.97) for b in (*BLOCKS[:3], "mug")
              for skill in ("pick", "push")] + [MemoryFact("table.friction", "hinders", "push", 0.5)]
    changes = count_plan_changes(planner, planner_cases(), memory)
    assert changes.named + changes.choice + changes.refused >= 268
    assert changes.named_changed == []
    choice = count_plan_changes(planner, [{"instruction": i} for i in CHOICE_INSTRUCTIONS], memory)
    assert choice.choice == len(CHOICE_INSTRUCTIONS) and len(choice.choice_changed) == len(CHOICE_INSTRUCTIONS)
    for instruction in CHOICE_INSTRUCTIONS:  # the only block nothing hinders
        assert any(c.args == (BLOCKS[3],) for c in planner.plan(instruction, memory=memory).steps if c.skill == "pick")


def test_scenario_worlds_are_seeded_and_only_deviations_are_studied() -> None:
    assert world_variables(3) == world_variables(3)
    variables = world_variables(3)
    assert sorted(variables.values()) == [2.0, 8.0, 10.0] and len({k.split(".")[0] for k in variables}) == 3
    nominal = {f"{b}.{p}": v for b in BLOCKS for p, v in (("mass", 0.1), ("friction", 1.0))}
    current = {**nominal, **variables}
    assert deviations(current, nominal) == {name: (0.1, value) for name, value in variables.items()}


def test_lift_height_measures_whether_the_grasp_lifts_the_block() -> None:
    from experiments.causal_study.sim import KitchenUnits

    units = KitchenUnits("lift_height", "red_block")
    try:
        light = units.run(0, {"red_block.mass": 0.1})
        heavy = units.run(0, {"red_block.mass": 10.0})
    finally:
        units.close()
    assert light.outcome > 0.3 and not light.fault
    assert abs(heavy.outcome) < 0.01


@pytest.mark.slow
def test_the_scenario_gains_with_causal_knowledge(tmp_path) -> None:
    from experiments.feedback.scenario import ScenarioConfig, run_scenario

    summary = run_scenario(ScenarioConfig(seeds=(0,), study_episodes=3, encoder="hashing", out=str(tmp_path)))
    assert summary["arms"]["with"]["rate"] > summary["arms"]["without"]["rate"]
    assert summary["plan_changes"]["named_changed"] == 0 and summary["control_choices_changed"] == 0
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "world_0" / "memory.sqlite").is_file()
