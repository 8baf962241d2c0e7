"""The memory-instruction benchmark: a chain passes with the store and is refused honestly without it."""

from __future__ import annotations

import pytest

from experiments.memory_bench.cases import MemoryCase, memory_cases
from experiments.memory_bench.runner import run_case


def test_the_benchmark_has_at_least_30_cases_in_4_kinds() -> None:
    cases = memory_cases()
    assert len(cases) >= 30 and {c.kind for c in cases} == {"relative", "back", "repeat", "question"}
    assert all(c.setup and (c.expect or c.answer) for c in cases)


@pytest.fixture(scope="module")
def session():
    from experiments.kitchen.episodes import open_session
    from experiments.kitchen.factory import AgentOptions

    session = open_session(AgentOptions(planner="grounded", encoder="hashing", skills="scripted", max_replans=2))
    yield session
    session.close()


@pytest.mark.parametrize("case", [
    MemoryCase("relative", ("put the red block in the drawer", "put the green block in the bowl"),
               "move the block you put in the bowl to the plate", ("on(green_block, plate)",), seed=1),
    MemoryCase("question", ("put the mug on the plate",), "where did you put the mug?",
               answer="I put the mug on the plate", seed=2),
])
def test_a_chain_passes_with_the_store_and_is_refused_without(session, case: MemoryCase) -> None:
    with_store = run_case(session, case, True, "hashing")
    assert with_store["setup_ok"] and with_store["passed"], with_store
    without = run_case(session, case, False, "hashing")
    assert without["refused"] and "I do not remember" in without["error"] and not without["passed"]
