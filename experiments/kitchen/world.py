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
from envs.predicates import REST_SPEED
from envs.state import OBJECT_IDS
from envs.tasks import TaskSpec
from experiments.common.errors import InputError
from experiments.common.media import caption_frame

PLACE_TASKS = ("place_in", "place_on")
LOOK_OPEN_STEPS = 5
"""Control steps the hand first stays where it let go, open (the experts' own "release" phase lasts 5): rising at
once, a finger that still touches the object could drag it along."""
LOOK_HEIGHT = 0.25
"""After a place judged done, the open hand rises to this grasp-point height (m) before the place is judged again."""
LOOK_STILL_FRAMES = 3
"""Consecutive control steps on which the placed object must be at rest before the second judgement."""
LOOK_MAX_STEPS = 25
"""Control steps the second look may take (rise and wait) before it judges what it sees."""


def rise_action(obs: dict[str, np.ndarray], step: int) -> np.ndarray:
    """Step `step` of a second look: the hand open and still, then straight up, then still again.

    Still for `LOOK_OPEN_STEPS`, then up to `LOOK_HEIGHT` (the grasp point's height is proprio[2]).
    """
    rise = 1.0 if step >= LOOK_OPEN_STEPS and float(obs["proprio"][2]) < LOOK_HEIGHT else 0.0
    return np.array([0.0, 0.0, rise, 1.0], dtype=np.float32)


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
    """The `SkillWorld` view of a `HouseholdEnv` (built with task="none").

    With `look_again` (the default), a place the oracle judges done is judged a second time once the open hand
    has stayed still, risen out of the way, and the object has rested a few steps (`LOOK_*`). The oracle's test
    (`envs.tasks.check_success`) needs the object at rest, but a block let go from high can pause on its target
    and then tip off, and the hand leaving can disturb it; the instruction is done only if the place survives
    that. `look_again=False` skips the second look (`--no-look-again`); the env's test still waits for rest.
    """

    def __init__(self, env: HouseholdEnv, record: bool = False, look_again: bool = True) -> None:
        self.env = env
        self.record = record
        self.look_again = look_again
        self._last_picked: str | None = None
        self._skill_start: Any = None
        self._call_key: tuple[str, ...] | None = None
        self.last_info: dict[str, Any] = {}
        self.oracle_steps: dict[tuple[str, ...], bool] = {}
        """The oracle's verdict at the last step of each skill call, by (skill, *args): the referee's push test."""

    def reset(self, seed: int, variables: dict[str, float] | None = None) -> dict[str, Any]:
        """A new seeded scene, with physical `variables` (e.g. ``{"red_block.mass": 10.0}``) set by do()."""
        options: dict[str, Any] = {"task": "none"}
        if variables:
            options["variables"] = dict(variables)
        _, info = self.env.reset(seed=seed, options=options)
        self._last_picked = None
        self.oracle_steps = {}
        self.last_info = info
        return info

    def objects(self) -> list[str]:
        """Every object name the planner may use in this kitchen."""
        return list(OBJECT_IDS)

    def facts(self) -> list[list[str]]:
        """The scene's symbolic facts now (e.g. ``["on", "red_block", "table"]``), what the planner plans from."""
        return self.env.facts()

    def true_facts(self) -> list[list[str]]:
        """The oracle's facts (for scoring and for drawing the next instruction of an evaluation chain)."""
        return self.env.facts()

    def oracle_verdict(self, task: str, args: tuple[str, ...]) -> bool:
        """Whether the oracle says an instruction (an env task) is accomplished now: the evaluation's referee.

        It scores the task the chain drew, not the goal the agent read from the sentence, so a misread
        instruction ("slide the drawer out" grounded as closing it, an empty plan with the drawer shut) fails.
        """
        truth = {tuple(f) for f in self.true_facts()}
        if task == "open":
            return ("open", "drawer") in truth
        if task == "close":
            return ("closed", "drawer") in truth
        if task in ("place_in", "place_on"):
            return ("in" if task == "place_in" else "on", *args) in truth
        if task == "push":
            return self.oracle_steps.get(("push", *args), False)
        raise ValueError(f"no oracle verdict for task {task!r}")

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
        self._skill_start = state
        self._call_key = (call.skill, *call.args)
        obs = self.env.observation()
        info = {"instruction": call.text, "task": str(spec), "scene_state": state, "is_success": False}
        self.last_info = info
        return obs, info

    def held_object(self) -> str | None:
        """What the gripper holds, for the place call that follows a pick (here: the simulator's state)."""
        return self.env.scene_state().held

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One env step of the current skill (gymnasium's 5-tuple); its info is kept as `last_info`.

        A place the oracle calls done is looked at again (see the class docstring); if it no longer holds, the
        step ends the skill as a failure (truncated, with a `failure_reason`).
        """
        obs, reward, terminated, truncated, info = self.env_step(action)
        task = self.env.task
        if terminated and self.look_again and task is not None and task.name in PLACE_TASKS:
            obs, info, placed = self._oracle_look(obs, info)
            if not placed:
                info = {**info, "is_success": False,
                        "failure_reason": "the placed object did not stay once it came to rest"}
                self.last_info = info
                terminated, truncated = False, True
        if self._call_key is not None:
            self.oracle_steps[self._call_key] = bool(terminated)
        return obs, reward, terminated, truncated, info

    def env_step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One plain env step, kept as `last_info` (no second look)."""
        result = self.env.step(action)
        self.last_info = result[4]
        return result

    def _oracle_look(self, obs: dict[str, np.ndarray], info: dict[str, Any]
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any], bool]:
        """Raise the open hand, wait for the placed object to rest, and ask the oracle's place test again."""
        from envs.tasks import check_success

        task = self.env.task
        name, still = task.args[0], 0
        for step in range(LOOK_MAX_STEPS):
            action = rise_action(obs, step)
            obs, _, _, _, info = self.env_step(action)
            if info.get("physics_fault"):
                return obs, info, False
            state = self.env.scene_state()
            speed = float(np.linalg.norm(state.velocities[state.names.index(name)]))
            still = still + 1 if speed < REST_SPEED else 0
            if step >= LOOK_OPEN_STEPS and action[2] == 0.0 and still >= LOOK_STILL_FRAMES:
                break
        return obs, info, check_success(task, self._skill_start, self.env.scene_state())

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
