"""CALVIN-style long-horizon evaluation: chains of instructions run in sequence without a reset.

Each next instruction is drawn from those whose goal is not yet true and that are feasible in the scene
as it is *now* (after the previous instructions ran), so chains stay meaningful whatever happened
before; with the seed fixed, the simulator and the draw are both deterministic. A chain stops at its
first failed instruction, as in CALVIN: failed as the agent judges it (it cannot know better), while the oracle
referees the task the chain drew, and the result counts the instructions it accepts in a row. The agent's own
verdict can be wrong both ways: perception misreads, and a misread sentence makes the agent pursue another goal.
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


def _in_a_row(verdicts: list[bool]) -> int:
    count = 0
    for ok in verdicts:
        if not ok:
            break
        count += 1
    return count


@dataclass
class ChainResult:
    """One seeded chain of tasks in one scene: the tasks drawn, the verdicts on each, and their records.

    `successes` are the agent's own verdicts (what it judged from its facts: the oracle's or perception's,
    against the goal it read from the sentence); the chain goes on while the agent believes it succeeded.
    `verified` are the referee's: the oracle's test of the task the chain drew. The result is `completed`.
    """
    seed: int
    tasks: list[ChainTask] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        """How many drawn tasks the referee accepts in a row from the start of the chain."""
        return _in_a_row(self.verified)

    @property
    def believed(self) -> int:
        """How many tasks the agent believed done in a row (the chain ends at its first believed failure)."""
        return _in_a_row(self.successes)


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
        task = draw_task(world.true_facts(), push_ok, rng)  # the harness draws from truth
        trace_start = len(getattr(world, "trace", ()))
        try:
            record = agent.run(world, task.instruction).to_json()
        except PlanningError as error:  # a refused instruction fails this link of the chain
            record = {"instruction": task.instruction, "success": False, "error": f"refused: {error}"}
        # the referee: the oracle scores the task drawn, whatever goal the agent read or perceived as met
        record["oracle_success"] = world.oracle_verdict(task.task, task.args)
        if hasattr(world, "trace"):
            record["perception"] = world.trace[trace_start:]  # perceived vs true facts at every plan and check
        result.tasks.append(task)
        result.successes.append(bool(record["success"]))
        result.verified.append(bool(record["oracle_success"]))
        result.records.append(record)
        if not record["success"]:
            break
    return result


def _positions(counts: list[int], length: int) -> list[dict[str, Any]]:
    n = len(counts)
    rows = []
    for k in range(1, length + 1):
        wins = sum(count >= k for count in counts)
        low, high = wilson_interval(wins, n)
        rows.append({"position": k, "success_rate": wins / n, "ci95": [low, high]})
    return rows


def summarise(results: list[ChainResult], length: int) -> dict[str, Any]:
    """The referee's success rate at each chain position (Wilson intervals) and average completed length.

    Also per-task rates, and the agent's own verdicts against the referee's (false successes and failures).
    """
    n = len(results)
    per_task: dict[str, list[int]] = {}
    for result in results:
        for task, ok in zip(result.tasks, result.verified, strict=True):
            per_task.setdefault(task.task, [0, 0])
            per_task[task.task][0] += int(ok)
            per_task[task.task][1] += 1
    verdicts = [(mine, true) for r in results for mine, true in zip(r.successes, r.verified, strict=True)]
    return {"chains": n, "length": length,
            "positions": _positions([r.completed for r in results], length),
            "average_completed_length": sum(r.completed for r in results) / n,
            "per_task": {t: {"successes": s, "attempts": a, "rate": s / a} for t, (s, a) in per_task.items()},
            "agent_verdicts": {"instructions": len(verdicts), "agree": sum(a == b for a, b in verdicts),
                               "false_success": sum(a and not b for a, b in verdicts),
                               "false_failure": sum(b and not a for a, b in verdicts)},
            "agent_positions": _positions([r.believed for r in results], length),
            "agent_completed_length": sum(r.believed for r in results) / n}
