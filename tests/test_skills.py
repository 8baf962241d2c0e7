"""The planning domain: argument checks, text forms, facts, preconditions/effects and the plan checker."""

from __future__ import annotations

import pytest

from agent import skills
from agent.skills import OBJECTS, Predicate, SkillCall, call_text
from agent.symbolic import SymbolicState, applicable_calls, apply_call, check_plan, precondition_failure


def calls(*items: str) -> list[SkillCall]:
    """``calls("pick red_block", "place bowl")`` -> skill calls."""
    return [SkillCall(text.split()[0], tuple(text.split()[1:])) for text in items]


def test_initial_state_matches_the_domain() -> None:
    state = SymbolicState.initial()
    assert state.objects == frozenset(OBJECTS)
    assert all(state.location(x) == ("on", "table") for x in skills.MOVABLE)
    assert state.holding is None and not state.drawer_open


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda: SkillCall("fly", ("mug",)), "unknown skill 'fly'"),
        (lambda: SkillCall("pick", ("bowl",)), "object of pick"),
        (lambda: SkillCall("place", ("mug",)), "target of place"),
        (lambda: SkillCall("push", ("red_block", "up")), "direction"),
        (lambda: SkillCall("pick", ("red_block", "bowl")), "takes 1 argument"),
        (lambda: Predicate("in", ("red_block", "plate")), "container of in"),
        (lambda: Predicate("on", ("red_block", "red_block")), "cannot be on itself"),
        (lambda: Predicate("inside", ("red_block", "bowl")), "unknown predicate"),
    ],
)
def test_domain_rejects_bad_calls_and_predicates(bad, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bad()


def test_call_texts_read_like_instructions() -> None:
    assert SkillCall("pick", ("red_block",)).text == "pick up the red block"
    assert call_text("place", ["drawer"]) == "put it in the drawer"
    assert call_text("place", ["green_block"]) == "put it on the green block"
    assert call_text("push", ["mug", "backward"]) == "push the mug towards you"
    assert call_text("push", ["mug", "forward"]) == "push the mug away from you"


def test_json_round_trip_is_strict() -> None:
    call = SkillCall("push", ("mug", "left"))
    assert SkillCall.from_json(call.to_json()) == call
    assert Predicate.from_json({"predicate": "open", "args": ["drawer"]}) == Predicate("open", ("drawer",))
    with pytest.raises(ValueError, match="exactly the keys"):
        SkillCall.from_json({"skill": "pick", "args": ["mug"], "extra": 1})
    with pytest.raises(TypeError, match="JSON list"):
        SkillCall.from_json({"skill": "pick", "args": "mug"})


def test_facts_round_trip_and_most_specific_location_wins() -> None:
    facts = [["on", "red_block", "table"], ["in", "red_block", "drawer"], ["on", "green_block", "red_block"],
             ["open", "drawer"], ["holding", "mug"], ["on", "bowl", "table"]]
    state = SymbolicState.from_facts(facts)
    assert state.location("red_block") == ("in", "drawer")
    assert state.location("green_block") == ("on", "red_block")
    assert state.holding == "mug" and state.drawer_open
    assert state.inside_drawer("green_block")
    again = SymbolicState.from_facts(state.to_facts(), OBJECTS)
    assert again == state
    with pytest.raises(ValueError, match="unknown support 'fridge'"):
        SymbolicState.from_facts([["in", "red_block", "fridge"]])


@pytest.mark.parametrize("fact", [["touching", "red_block", "bowl"], ["inside", "red_block", "bowl"],
                                  ["open", "drawer", "wide"], ["gripper_empty", "mug"]])
def test_facts_outside_the_domain_are_refused_not_skipped(fact: list[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown fact .*expected one of in\(x, y\)"):
        SymbolicState.from_facts([fact])
    # an unseen object with nothing remembered may be in the closed drawer (the plan will look there first);
    # with the drawer open there is nowhere hidden to look, so it is assumed on the table
    assert SymbolicState.from_facts([["unknown", "red_block"]]).location("red_block") == ("in", "drawer")
    opened = SymbolicState.from_facts([["unknown", "red_block"], ["open", "drawer"]])
    assert opened.location("red_block") == ("on", "table")


def test_objects_missing_from_the_scene_are_absent() -> None:
    state = SymbolicState.initial(["red_block", "bowl"])
    assert state.objects == {"red_block", "bowl", "table"}
    assert precondition_failure(state, SkillCall("pick", ("mug",))) == "mug is not in the scene"
    assert "open" not in {c.skill for c in applicable_calls(state)}


def test_preconditions_follow_the_table() -> None:
    start = SymbolicState.from_facts([["on", "green_block", "red_block"], ["in", "blue_block", "drawer"]])
    assert "on top of red_block" in precondition_failure(start, SkillCall("pick", ("red_block",)))
    assert "closed drawer" in precondition_failure(start, SkillCall("pick", ("blue_block",)))
    assert "empty" in precondition_failure(start, SkillCall("place", ("bowl",)))
    assert "on top of red_block" in precondition_failure(start, SkillCall("push", ("red_block",  "left")))
    assert precondition_failure(start, SkillCall("close", ("drawer",))) == "the drawer is already closed"
    holding = apply_call(start, SkillCall("pick", ("yellow_block",)))
    assert "empty gripper" in precondition_failure(holding, SkillCall("open", ("drawer",)))
    assert precondition_failure(holding, SkillCall("place", ("drawer",))) == "the drawer is closed"
    assert "on top of red_block" in precondition_failure(holding, SkillCall("place", ("red_block",)))
    assert precondition_failure(holding, SkillCall("place", ("yellow_block",))) == "cannot place yellow_block on itself"
    assert precondition_failure(holding, SkillCall("reach", ("bowl",))) is None


def test_effects() -> None:
    state = SymbolicState.initial()
    state = apply_call(state, SkillCall("reach", ("mug",)))
    assert state.near == "mug"
    state = apply_call(state, SkillCall("push", ("red_block", "left")))
    assert ("red_block", "left") in state.pushed and state.near is None
    state = apply_call(state, SkillCall("pick", ("red_block",)))
    assert state.holding == "red_block" and state.location("red_block") is None and not state.pushed
    state = apply_call(state, SkillCall("place", ("green_block",)))
    assert state.location("red_block") == ("on", "green_block") and state.holding is None
    with pytest.raises(ValueError, match="not applicable: something is on top of green_block"):
        apply_call(state, SkillCall("pick", ("green_block",)))


def test_checker_accepts_valid_plans_and_names_the_first_problem() -> None:
    start = SymbolicState.initial()
    goal = [(Predicate("in", ("yellow_block", "drawer")),), (Predicate("closed", ("drawer",)),)]
    good = calls("open drawer", "pick yellow_block", "place drawer", "close drawer")
    assert check_plan(start, good, goal).valid
    missing_open = calls("pick yellow_block", "place drawer")
    result = check_plan(start, missing_open, goal)
    assert not result.valid and result.reason == "step 2 place(drawer): the drawer is closed"
    short = calls("open drawer", "pick yellow_block", "place drawer")
    assert "goal stage 2 (closed(drawer)) is never reached" in check_plan(start, short, goal).reason


def test_checker_requires_stages_in_order() -> None:
    start = SymbolicState.initial()
    stages = [(Predicate("open", ("drawer",)),), (Predicate("closed", ("drawer",)),)]
    assert check_plan(start, calls("open drawer", "close drawer"), stages).valid
    assert not check_plan(start, calls("open drawer"), stages).valid
