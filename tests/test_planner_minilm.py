"""The planner with the real MiniLM encoder (loaded once per test session).

The fast test shows what only embeddings can do: words that are in no word list of the planner
("tumbler", "worktop", "reopen") ground through MiniLM, while the hashing encoder refuses them. The slow
test measures accuracy on every instruction set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import PlanningError
from agent.planner import GroundedPlanner
from agent.planner.evaluation import evaluate, load_cases
from agent.skills import OBJECTS
from perception.text import HashingTextEncoder, TextEncoder, default_text_encoder

DATA = Path(__file__).parent / "data"
NOT_IN_ANY_WORD_LIST = [
    ("put the tumbler on the plate", ["on(mug, plate)"]),
    ("put the green block on the worktop", ["on(green_block, table)"]),
    ("reopen the drawer", ["open(drawer)"]),
]


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    return default_text_encoder("minilm")


@pytest.fixture(scope="session")
def minilm_planner(minilm: TextEncoder) -> GroundedPlanner:
    return GroundedPlanner(minilm)


@pytest.mark.parametrize(("instruction", "expected"), NOT_IN_ANY_WORD_LIST)
def test_minilm_grounds_words_no_list_contains(minilm_planner: GroundedPlanner, instruction: str,
                                               expected: list[str]) -> None:
    from agent import lexicon

    words = {w for phrases in (*lexicon.TYPE_EXEMPLARS.values(), *lexicon.VERB_EXEMPLARS.values()) for p in phrases
             for w in p.split()}
    assert not {"tumbler", "worktop", "reopen"} & words
    assert [str(p) for p in minilm_planner.plan(instruction, OBJECTS).goal] == expected
    with pytest.raises(PlanningError):
        GroundedPlanner(HashingTextEncoder()).plan(instruction, OBJECTS)


def test_minilm_refuses_things_not_in_the_scene(minilm_planner: GroundedPlanner) -> None:
    for instruction, phrase in [("put the red block in the freezer", "the freezer"),
                                ("put the pear in the bowl", "the pear"),
                                ("place the mug on the stool", "the stool")]:
        with pytest.raises(PlanningError) as caught:
            minilm_planner.plan(instruction, OBJECTS)
        assert caught.value.phrase == phrase


def test_minilm_on_a_sample_of_the_blind_set(minilm_planner: GroundedPlanner) -> None:
    cases = load_cases(DATA / "instructions_blind.jsonl")[::4]
    report = evaluate(minilm_planner, cases)
    assert report.accuracy >= 0.9, [f.instruction for f in report.failures]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["instructions", "instructions_heldout", "instructions_blind", "instructions_blind2"])
def test_minilm_accuracy_on_instruction_sets(minilm_planner: GroundedPlanner, name: str) -> None:
    report = evaluate(minilm_planner, load_cases(DATA / f"{name}.jsonl"))
    assert report.accuracy >= 0.95, report.summary() + "\n" + "\n".join(
        f"{f.instruction!r}: got {f.got}, expected {f.expected}" for f in report.failures)


def _chain_template_cases() -> list[tuple[str, str]]:
    """Every template the evaluation chains draw instructions from, each phrase of its objects and directions."""
    from envs.instructions import DIRECTION_PHRASES, OBJECT_PHRASES, TEMPLATES

    cases = []
    for task, templates in TEMPLATES.items():
        for template in templates:
            if task in ("open", "close"):
                cases.append((template, "open(drawer)" if task == "open" else "closed(drawer)"))
            elif task == "push":
                cases += [(template.format(x=x, d=d), f"pushed(red_block, {direction})")
                          for direction, phrases in DIRECTION_PHRASES.items() for d in phrases
                          for x in OBJECT_PHRASES["red_block"]]
            elif task in ("place_in", "place_on"):
                targets = ("bowl", "drawer") if task == "place_in" else ("plate", "table", "blue_block")
                relation = "in" if task == "place_in" else "on"
                cases += [(template.format(x=x, y=y), f"{relation}(mug, {target})") for target in targets
                          for y in OBJECT_PHRASES[target] for x in OBJECT_PHRASES["mug"]]
    return cases


def test_every_chain_template_grounds_to_the_task_it_was_drawn_for(minilm_planner: GroundedPlanner) -> None:
    """The chains score the agent on these sentences; "slide the drawer out" once grounded as closing it, and with
    the drawer closed the agent did nothing and called it done."""
    wrong = []
    for text, expected in _chain_template_cases():
        stages = minilm_planner.goal_stages(text)
        got = [f"{p.predicate}({', '.join(p.args)})" for stage in stages for p in stage]
        if got != [expected]:
            wrong.append((text, got, expected))
    assert wrong == []
