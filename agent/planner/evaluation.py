"""Scoring a planner on a set of instructions with expected goals or refusals.

A case is a JSON object: ``instruction``; either ``goal`` (a list of ``[predicate, *args]``; the plan's
goal must equal it as a set, or equal ``alt_goal``) or ``refuse`` (a PlanningError is expected whose
phrase contains this text); optional ``objects`` (ids present, default all), ``facts`` (start state),
and ``skip`` (a reason the case is kept for the record but not scored). A goal case also needs a plan
that the symbolic checker accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InputError, PlanningError
from agent.planner.plan import Planner
from agent.skills import OBJECTS, Predicate
from agent.symbolic import SymbolicState, check_plan


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of cases (blank lines allowed); raises ValueError naming a bad line."""
    cases = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{number}: not valid JSON ({error.msg})") from error
        if not isinstance(case, dict) or "instruction" not in case or not ({"goal", "refuse"} & set(case)):
            raise InputError(f"{path}:{number}: a case needs 'instruction' and 'goal' or 'refuse', got {line[:80]}")
        cases.append(case)
    return cases


@dataclass
class CaseResult:
    """Outcome of one case: passed or not, and what the planner produced."""

    instruction: str
    passed: bool
    got: str
    expected: str


@dataclass
class EvalReport:
    """Accuracy over the scored cases, with every failure listed."""

    results: list[CaseResult] = field(default_factory=list)
    skipped: int = 0

    @property
    def accuracy(self) -> float:
        """Fraction of judged cases that passed (0 when none were judged); skipped cases do not count."""
        return sum(r.passed for r in self.results) / max(len(self.results), 1)

    @property
    def failures(self) -> list[CaseResult]:
        """The cases that did not pass, for the report's details."""
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """One line for the terminal: cases passed out of judged, accuracy, and how many were skipped."""
        passed = sum(r.passed for r in self.results)
        return f"{passed}/{len(self.results)} correct ({self.accuracy:.1%}), {self.skipped} skipped"


def _goal_set(items: Iterable[Sequence[str]]) -> frozenset[Predicate]:
    return frozenset(Predicate(item[0], tuple(item[1:])) for item in items)


def run_case(planner: Planner, case: Mapping[str, Any]) -> CaseResult:
    """Plan one case and judge it."""
    instruction = case["instruction"]
    objects = case.get("objects", list(OBJECTS))
    facts = case.get("facts")
    expected = f"refuse {case['refuse']!r}" if "refuse" in case else str(sorted(map(str, _goal_set(case["goal"]))))
    try:
        plan = planner.plan(instruction, objects, facts)
    except PlanningError as error:
        ok = "refuse" in case and str(case["refuse"]).lower() in error.phrase.lower()
        return CaseResult(instruction, ok, f"refused {error.phrase!r}: {error}", expected)
    got_goal = frozenset(plan.goal)
    got = f"{sorted(map(str, got_goal))} via {[str(c) for c in plan.steps]}"
    if "refuse" in case:
        return CaseResult(instruction, False, got, expected)
    wanted = [_goal_set(case["goal"])] + ([_goal_set(case["alt_goal"])] if "alt_goal" in case else [])
    start = SymbolicState.initial(objects) if facts is None else SymbolicState.from_facts(facts, objects)
    valid = check_plan(start, plan.steps, plan.stages)
    if not valid.valid:
        got += f" INVALID: {valid.reason}"
    return CaseResult(instruction, got_goal in wanted and valid.valid, got, expected)


def evaluate(planner: Planner, cases: Iterable[Mapping[str, Any]]) -> EvalReport:
    """Run every case that is not marked ``skip``."""
    report = EvalReport()
    for case in cases:
        if case.get("skip"):
            report.skipped += 1
            continue
        report.results.append(run_case(planner, case))
    return report
