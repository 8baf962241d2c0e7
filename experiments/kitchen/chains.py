"""CALVIN-style long-horizon evaluation: chains of instructions run in sequence without a reset.

Each next instruction is drawn from those whose goal is not yet true and that are feasible in the scene
as it is *now* (after the previous instructions ran), so chains stay meaningful whatever happened
before; with the seed fixed, the simulator and the draw are both deterministic. A chain stops at its
first failed instruction, as in CALVIN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.errors import PlanningError
from agent.loop import EmbodiedAgent
from envs.instructions import sample_instruction
from envs.state import BLOCKS, MOVABLE
from envs.tasks import DIRECTIONS
from experiments.common.stats import wilson_interval
from experiments.kitchen.world import KitchenWorld

PushCheck = Callable[[str, str], bool]


@dataclass(frozen=True)
class ChainTask:
    """One instruction of a chain, with the env task it corresponds to."""

    task: str
    args: tuple[str, ...]
    instruction: str


def _facts(facts: list[list[str]]) -> set[tuple[str, ...]]:
    return {tuple(f) for f in facts}


def candidate_tasks(facts: list[list[str]], push_ok: PushCheck) -> list[tuple[str, tuple[str, ...]]]:
    """Instructions whose goal is not yet true and whose preconditions hold (the planner may add steps)."""
    now = _facts(facts)
    drawer_open = ("open", "drawer") in now
    supports = {f[2] for f in now if f[0] == "on"}
    in_drawer = {f[1] for f in now if f[0] == "in" and f[2] == "drawer"}
    free = [x for x in MOVABLE if x not in supports and x not in in_drawer]
    options: list[tuple[str, tuple[str, ...]]] = [("close", ("drawer",)) if drawer_open else ("open", ("drawer",))]
    for x in free:
        for container in ("bowl", "drawer"):
            if ("in", x, container) not in now:
                options.append(("place_in", (x, container)))
        if ("on", x, "plate") not in now:
            options.append(("place_on", (x, "plate")))
        if x in BLOCKS:
            options += [("place_on", (x, y)) for y in BLOCKS if y != x and y not in supports and y not in in_drawer
                        and ("on", y, "table") in now and ("on", x, y) not in now]
            if ("on", x, "table") in now:
                options += [("push", (x, d)) for d in DIRECTIONS if push_ok(x, d)]
    return options


def draw_task(facts: list[list[str]], push_ok: PushCheck, rng: np.random.Generator) -> ChainTask:
    """A random task that can be done from the scene in `facts`, with a sampled instruction sentence for it."""
    options = candidate_tasks(facts, push_ok)
    task, args = options[int(rng.integers(len(options)))]
    return ChainTask(task, args, sample_instruction(task, args, rng))


@dataclass
class ChainResult:
    """One seeded chain of tasks in one scene: the tasks drawn, whether each succeeded, and their records."""
    seed: int
    tasks: list[ChainTask] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        """How many tasks succeeded in a row from the start of the chain (a chain ends at its first failure)."""
        count = 0
        for ok in self.successes:
            if not ok:
                break
            count += 1
        return count


def run_chain(agent: EmbodiedAgent, world: KitchenWorld, seed: int, length: int) -> ChainResult:
    """Run one chain of `length` instructions from a fresh scene; stop at the first failure."""
    from envs.task_choice import push_path_clear  # the env's own clearance test

    world.reset(seed=seed)
    rng = np.random.default_rng(seed + 7919)
    result = ChainResult(seed)

    def push_ok(name: str, direction: str) -> bool:
        scene = world.env.scene_state()
        layout = {n: (*scene.position(n)[:2], 0.0) for n in scene.objects}
        return push_path_clear(layout, name, direction)

    for _ in range(length):
        task = draw_task(getattr(world, "true_facts", world.facts)(), push_ok, rng)  # the harness draws from truth
        trace_start = len(getattr(world, "trace", ()))
        try:
            record = agent.run(world, task.instruction).to_json()
        except PlanningError as error:  # a refused instruction fails this link of the chain
            record = {"instruction": task.instruction, "success": False, "error": f"refused: {error}"}
        if hasattr(world, "oracle_verdict"):  # perceived success checks: the oracle scores them for the report
            record["oracle_success"] = world.oracle_verdict(task.task, task.args)
            record["perception"] = world.trace[trace_start:]  # perceived vs true facts at every plan and check
        result.tasks.append(task)
        result.successes.append(bool(record["success"]))
        result.records.append(record)
        if not record["success"]:
            break
    return result


def summarise(results: list[ChainResult], length: int) -> dict[str, Any]:
    """Success rate at each chain position (with Wilson intervals) and the average completed length."""
    n = len(results)
    positions = []
    for k in range(1, length + 1):
        wins = sum(r.completed >= k for r in results)
        low, high = wilson_interval(wins, n)
        positions.append({"position": k, "success_rate": wins / n, "ci95": [low, high]})
    per_task: dict[str, list[int]] = {}
    for result in results:
        for task, ok in zip(result.tasks, result.successes, strict=False):
            per_task.setdefault(task.task, [0, 0])
            per_task[task.task][0] += int(ok)
            per_task[task.task][1] += 1
    summary = {"chains": n, "length": length, "positions": positions,
               "average_completed_length": sum(r.completed for r in results) / n,
               "per_task": {t: {"successes": s, "attempts": a, "rate": s / a} for t, (s, a) in per_task.items()}}
    verdicts = [(bool(r["success"]), bool(r["oracle_success"])) for res in results for r in res.records
                if "oracle_success" in r]
    if verdicts:  # perceived success checks, scored by the oracle
        summary["perception_verdicts"] = {
            "instructions": len(verdicts), "agree": sum(a == b for a, b in verdicts),
            "false_success": sum(a and not b for a, b in verdicts),
            "false_failure": sum(b and not a for a, b in verdicts)}
        leading = [_leading(r.records) for r in results]
        summary["oracle_completed_length"] = sum(leading) / n
        summary["oracle_positions"] = []
        for k in range(1, length + 1):
            wins = sum(count >= k for count in leading)
            low, high = wilson_interval(wins, n)
            summary["oracle_positions"].append({"position": k, "success_rate": wins / n, "ci95": [low, high]})
    return summary


def _leading(records: list[dict[str, Any]]) -> int:
    """Instructions in a row the oracle accepts (the chain itself stops where perception saw a failure)."""
    count = 0
    for record in records:
        if not record.get("oracle_success"):
            break
        count += 1
    return count
