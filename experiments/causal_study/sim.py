"""The simulator bridge for causal studies: run one unit in the kitchen and measure its outcome.

A *unit* is one seeded scene (layout from the seed) with some physical variables set through the
environment (`reset(options={"variables": ...})` is a real do()). Its outcome is measured by a fixed
procedure: the scripted expert pushing an object (`push_distance`) or a fixed-impulse strike
(`strike_distance`), both reported as the object's displacement along the push direction once it
has settled, or the scripted expert picking it (`lift_height`: how far above its start the object is
once the grasp has held it for a moment; near 0 when it slipped out or was too heavy to lift).
Because `save_state()` / `restore_state()` re-simulate exactly, the same unit can be replayed under
another value of the treatment: a ground-truth counterfactual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from envs.experts import make_expert
from envs.household import HouseholdEnv
from envs.state import BLOCKS
from envs.tasks import DIRECTIONS, push_progress
from experiments.causal_study.config import OUTCOMES

EXPERT_STEP_LIMIT = 150
SETTLE_STEPS = 12
STRIKE_STEPS = 40
IDLE_ACTION = np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32)


@dataclass(frozen=True)
class UnitResult:
    """The outcome of one unit and whether the physics stayed sane while measuring it."""

    outcome: float
    fault: bool
    steps: int


@dataclass(frozen=True)
class Counterfactuals:
    """One unit's factual result and its replays under each treatment value (see `run_with_counterfactuals`)."""

    factual: UnitResult
    restored: list[UnitResult]
    rebuilt: list[UnitResult]
    restored_factual: UnitResult
    rebuilt_factual: UnitResult

    @property
    def fault(self) -> bool:
        """True if any run of this unit hit a physics fault."""
        runs = [self.factual, *self.restored, *self.rebuilt, self.restored_factual, self.rebuilt_factual]
        return any(r.fault for r in runs)


class KitchenUnits:
    """Runs units of a study in one `HouseholdEnv` (reset per unit; snapshots live until the next reset).

    Args:
        outcome: "push_distance" (scripted expert push), "strike_distance" (impulse of `impulse` N*s) or
            "lift_height" (scripted expert pick).
        target: the object pushed, struck or picked (a block).
        direction: push direction, one of `envs.tasks.DIRECTIONS`.
        impulse: strike impulse for "strike_distance".
    """

    def __init__(self, outcome: str, target: str, direction: str = "left", impulse: float = 0.05) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
        if target not in BLOCKS:
            raise ValueError(f"the pushed object must be a block ({', '.join(BLOCKS)}), got {target!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")
        if not impulse > 0:
            raise ValueError(f"impulse must be positive, got {impulse}")
        self.outcome, self.target, self.direction, self.impulse = outcome, target, direction, impulse
        self.env = HouseholdEnv(task="push")

    def variable_names(self) -> list[str]:
        """Every variable the scene accepts (for validating study arguments)."""
        return self.env.scene.variable_names()

    def reset(self, seed: int, variables: Mapping[str, float]) -> None:
        """Start a unit: the seeded layout, with `variables` set by do() at reset."""
        task, args = ("pick", [self.target]) if self.outcome == "lift_height" else ("push", [self.target,
                                                                                              self.direction])
        self.env.reset(seed=seed, options={"variables": dict(variables), "task": task, "args": args})

    def measure(self) -> UnitResult:
        """Run the outcome procedure from the current state and return the displacement."""
        env = self.env
        start = env.scene_state()
        fault, steps = False, 0
        if self.outcome in ("push_distance", "lift_height"):
            expert = make_expert(env.task)
            while not expert.done and steps < EXPERT_STEP_LIMIT and not fault:
                _, _, _, _, info = env.step(expert.act(env.scene_state()))
                fault, steps = bool(info["physics_fault"]), steps + 1
        else:
            unit = DIRECTIONS[self.direction]
            env.apply_impulse(self.target, (self.impulse * unit[0], self.impulse * unit[1], 0.0))
        for _ in range(STRIKE_STEPS if self.outcome == "strike_distance" else SETTLE_STEPS):
            if fault:
                break
            _, _, _, _, info = env.step(IDLE_ACTION)
            fault, steps = bool(info["physics_fault"]), steps + 1
        if self.outcome == "lift_height":
            rise = env.scene_state().position(self.target)[2] - start.position(self.target)[2]
            return UnitResult(float(rise), fault, steps)
        along, _ = push_progress(start, env.scene_state(), self.target, self.direction)
        return UnitResult(float(along), fault, steps)

    def run(self, seed: int, variables: Mapping[str, float]) -> UnitResult:
        """A fresh unit: reset, then measure."""
        self.reset(seed, variables)
        return self.measure()

    def run_with_counterfactuals(
        self, seed: int, variables: Mapping[str, float], treatment: str, values: list[float]
    ) -> Counterfactuals:
        """Factual run, then the same unit replayed under each treatment value, two ways.

        `restored`: `restore_state()` to the snapshot saved at the unit's start, do() via
        `set_variables`, measure again. `rebuilt`: the unit rebuilt from its seed (`reset` recreates the
        world, so it is bit-exact), then the same do() and measurement. Both start from the same
        state; the rebuilt replay is exact, while a restore after contact-rich motion can inherit
        solver caches from the run before it. A replay under the factual value checks each way.
        """
        self.reset(seed, variables)
        snapshot = self.env.save_state()
        factual = self.measure()
        settings = [*values, variables[treatment]]
        restored = []
        for value in settings:
            self.env.restore_state(snapshot)
            self.env.set_variables({treatment: float(value)})
            restored.append(self.measure())
        rebuilt = []
        for value in settings:
            self.reset(seed, variables)
            self.env.set_variables({treatment: float(value)})
            rebuilt.append(self.measure())
        return Counterfactuals(factual, restored[:-1], rebuilt[:-1], restored[-1], rebuilt[-1])

    def close(self) -> None:
        """Release the simulator."""
        self.env.close()
