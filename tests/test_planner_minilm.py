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
