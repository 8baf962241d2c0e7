"""Adapters that let the agent loop act in the kitchen env without either package knowing the other.

`KitchenWorld` maps planner skill calls onto env tasks (`place(t)` becomes `place_in(x, t)` or
`place_on(x, t)` for the object in hand), and `ScriptedSkillPolicy` wraps the envs' scripted experts
behind the agent's `SkillPolicy` protocol.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.errors import UnrunnableCallError
from agent.skills import CONTAINERS, SkillCall
from envs.experts import ScriptedExpert, make_expert
from envs.household import HouseholdEnv
from envs.state import OBJECT_IDS
from envs.tasks import TaskSpec
from experiments.common.errors import InputError
from experiments.common.media import caption_frame


def task_for_call(call: SkillCall, held: str | None, last_picked: str | None) -> TaskSpec:
    """The env task that carries out one skill call."""
    if call.skill == "place":
        target = call.args[0]
        item = held or last_picked
        if item is None:
            raise InputError(f"cannot {call.text}: the gripper holds nothing and nothing was picked before")
        return TaskSpec("place_in" if target in CONTAINERS else "place_on", (item, target))
    return TaskSpec(call.skill, tuple(call.args))


class KitchenWorld:
    """The `SkillWorld` view of a `HouseholdEnv` (built with task="none")."""

    def __init__(self, env: HouseholdEnv, record: bool = False) -> None:
        self.env = env
        self.record = record
        self._last_picked: str | None = None
        self.last_info: dict[str, Any] = {}

    def reset(self, seed: int, variables: dict[str, float] | None = None) -> dict[str, Any]:
        """A new seeded scene, with physical `variables` (e.g. ``{"red_block.mass": 10.0}``) set by do()."""
        options: dict[str, Any] = {"task": "none"}
        if variables:
            options["variables"] = dict(variables)
        _, info = self.env.reset(seed=seed, options=options)
        self._last_picked = None
        self.last_info = info
        return info

    def objects(self) -> list[str]:
        """Every object name the planner may use in this kitchen."""
        return list(OBJECT_IDS)

    def facts(self) -> list[list[str]]:
        """The scene's symbolic facts now (e.g. ``["on", "red_block", "table"]``), what the planner plans from."""
        return self.env.facts()

    def start_skill(self, call: SkillCall) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Set the env to the task that carries out `call` and return the first (obs, info) for its policy.

        `info` holds the scene state (which scripted experts read) and is_success False; a place call places what is
        held, or else what was picked last. A call the env has no task for (a mug onto a block, a place with
        nothing held or picked) raises `UnrunnableCallError`, which the agent records as a failed step.
        """
        state = self.env.scene_state()
        try:
            spec = task_for_call(call, self.held_object(), self._last_picked)
            self.env.set_task(spec.name, spec.args, instruction=call.text)
        except ValueError as error:
            if not getattr(error, "input_error", False):
                raise
            raise UnrunnableCallError(str(error)) from error
        if call.skill == "pick":
            self._last_picked = call.args[0]
        obs = self.env.observation()
        info = {"instruction": call.text, "task": str(spec), "scene_state": state, "is_success": False}
        self.last_info = info
        return obs, info

    def held_object(self) -> str | None:
        """What the gripper holds, for the place call that follows a pick (here: the simulator's state)."""
        return self.env.scene_state().held

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One env step of the current skill (gymnasium's 5-tuple); its info is kept as `last_info`."""
        result = self.env.step(action)
        self.last_info = result[4]
        return result

    def shaping_potential(self, call: SkillCall, shaping: dict[str, float]) -> float:
        """Φ(now) of the training shaping a learned policy for `call` was trained with (see agent.policy)."""
        from experiments.training.language import shaping_potential

        state = self.env.scene_state()
        spec = task_for_call(call, self.held_object(), self._last_picked)
        return shaping_potential(spec, state, state, shaping.get("progress_reward", 0.0),
                                 shaping.get("approach_reward", 0.0))

    def observation(self) -> dict[str, np.ndarray]:
        """What the robot senses now (what a learned skill's critic is asked about before planning)."""
        return self.env.observation()

    def frame(self) -> np.ndarray | None:
        """The current camera image when recording, else None (recording off costs no rendering)."""
        return self.env.video_frame() if self.record else None


class ScriptedSkillPolicy:
    """A scripted expert as a skill policy (privileged: reads the true scene state from `info`)."""

    name = "scripted"

    def __init__(self, world: KitchenWorld) -> None:
        self._world = world
        self._expert: ScriptedExpert | None = None

    def reset(self, call: SkillCall) -> None:
        """Forget the previous skill's expert; the next `act` builds one for the task then set."""
        self._expert = None

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """The scripted expert's action for the true scene state; raises RuntimeError if no task is set."""
        if self._expert is None:
            task = self._world.env.task
            if task is None:
                raise RuntimeError("no task is set in the kitchen; call start_skill first")
            self._expert = make_expert(task)
        return self._expert.act(info["scene_state"])


class ScriptedProvider:
    """Every skill by its scripted expert."""

    def __init__(self, world: KitchenWorld) -> None:
        self._policy = ScriptedSkillPolicy(world)

    def policy_for(self, call: SkillCall) -> ScriptedSkillPolicy:
        """The one scripted policy, whatever the call: each skill's expert follows the env's current task."""
        return self._policy


def skill_caption(frame: np.ndarray, call: SkillCall, status: str, instruction: str = "") -> np.ndarray:
    """A video frame captioned with the instruction (when given), the skill call and its status."""
    return caption_frame(frame, [instruction, f"{call.text}  [{status}]"] if instruction else [call.text, status])
