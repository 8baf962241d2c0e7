"""Which planner test instructions a memory changes.

A memory may change a plan where the instruction leaves a choice, never where it names its objects.

An instruction leaves a choice when, planned without memory, the planner had to pick among objects for one
of its phrases ("a block", "one of the blocks"): the trace then holds a grounding with ``options``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import PlanningError
from agent.planner.evaluation import load_cases
from agent.skills import OBJECTS

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
SETS = ("instructions", "instructions_heldout", "instructions_blind", "instructions_blind2")


@dataclass
class PlanChanges:
    """Counts of plans that differ with and without a memory, split by whether the instruction leaves a choice."""

    named: int = 0
    named_changed: list[str] = field(default_factory=list)
    choice: int = 0
    choice_changed: list[str] = field(default_factory=list)
    refused: int = 0

    def to_json(self) -> dict[str, Any]:
        """Counts plus the changed instructions, for summaries."""
        return {"named_instructions": self.named, "named_changed": len(self.named_changed),
                "named_changed_instructions": self.named_changed, "choice_instructions": self.choice,
                "choice_changed": len(self.choice_changed), "choice_changed_instructions": self.choice_changed,
                "refused_without_memory": self.refused}


def planner_cases(sets: Sequence[str] = SETS) -> list[dict[str, Any]]:
    """Every case of the planner's instruction sets (refusal cases included: they must stay refused)."""
    return [case for name in sets for case in load_cases(DATA / f"{name}.jsonl")]


def count_plan_changes(planner: Any, cases: Iterable[Mapping[str, Any]], memory: Any) -> PlanChanges:
    """Plan every case with and without `memory` and count the plans (calls in order) that differ.

    A case the planner refuses without memory must be refused with it too; that counts as unchanged.
    """
    out = PlanChanges()
    for case in cases:
        instruction = case["instruction"]
        objects, facts = case.get("objects", list(OBJECTS)), case.get("facts")
        try:
            plain = planner.plan(instruction, objects, facts)
        except PlanningError:
            out.refused += 1
            try:
                planner.plan(instruction, objects, facts, memory)
            except PlanningError:
                continue
            out.named_changed.append(instruction)
            continue
        remembered = planner.plan(instruction, objects, facts, memory)
        changed = [str(c) for c in plain.steps] != [str(c) for c in remembered.steps] or plain.goal != remembered.goal
        if any("options" in g for g in plain.trace.groundings):
            out.choice += 1
            if changed:
                out.choice_changed.append(instruction)
        else:
            out.named += 1
            if changed:
                out.named_changed.append(instruction)
    return out
