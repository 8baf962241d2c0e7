"""`HouseholdEnv`: the gymnasium environment that joins sim, scene, robot, sensors and task.

The env is a junction: `envs.observation` assembles observations, `envs.world_pool` keeps spare worlds
for fast resets, and `envs.task_choice` picks each episode's task and a feasible layout; this module
owns the episode (reset, step, reward, interventions, rendering) and the public API.

Control runs at `CONTROL_HZ` (= 1 / (SUBSTEPS * TIMESTEP) = 24 Hz): each `step` solves IK once,
sets motor targets, and advances physics `SUBSTEPS` times. Observation keys depend on `obs_mode`
and are declared in `__init__`; the task's oracle decides success from (start, now) scene states.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs import predicates as pred
from envs.chain_starts import PrefixRunner, build_chain_start, check_start, run_skill
from envs.errors import InputError, UnknownNameError
from envs.instructions import sample_instruction
from envs.observation import OBS_MODES, object_features, observation_space, proprio
from envs.physics_limits import (
    CONTROL_HZ,
    SUBSTEPS,
    TIMESTEP,
    physics_fault,
)
from envs.robots import Panda
from envs.scene import RIGID_OBJECTS, KitchenScene
from envs.sensors import Camera, Touch, front_camera, wrist_camera
from envs.sim import PyBulletSim
from envs.state import OBJECT_IDS, SceneState
from envs.task_choice import TASK_CHOICES, check_choice, choose_task
from envs.tasks import TASK_NAMES, TaskSpec, check_success, dense_reward, preconditions, sample_task
from envs.world_pool import WorldPool

FREE_PLAY_HORIZON = 200


@dataclass(frozen=True)
class EnvSnapshot:
    """Everything needed to re-simulate exactly from one instant (see `save_state`)."""

    bullet_state: int
    elapsed: int
    spec: TaskSpec | None
    instruction: str
    start: SceneState
    gripper_command: float
    target_yaw: float
    variables: dict[str, float]
    last_obs: dict[str, np.ndarray]


class HouseholdEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A Franka Panda in a kitchen with a drawer cabinet, bowl, plate, mug and four blocks.

    Args:
        task: a task name from `TASK_NAMES`, "any" (random task per episode) or "none" (free play).
        obs_mode: "state" (proprio + privileged object poses), "rgbd" (front RGB-D) or
            "rgbd_touch" (front and wrist RGB-D plus fingertip touch).
        image_size: side of the square camera images.
        front_image_size: side of the front camera's images, when it should differ from `image_size` (the scene
            estimator reads small objects, such as the mug, from a finer front view); None means `image_size`.
        control: "ee", "ee_yaw" or "joints" (see `envs.robots`).
        render_every: re-render camera observations every k-th step (reuse the last frame in between).
        reward_type: "dense" (negative distance to goal) or "sparse" (-1 until success, then 0).
        max_steps: episode horizon; defaults to the task's own.
        render_mode: None, "rgb_array" (`render()` returns the front camera at `render_size`, for videos) or
            "human" (PyBullet's GUI window shows the kitchen live, stepped at `metadata["render_fps"]`; needs a
            display, else `envs.sim.DisplayUnavailableError` names what is missing).
        use_egl: render with the EGL plugin (GPU machines).
        start: "reset" (the plain reset distribution) or "chain" (start where a random scripted sub-chain
            leaves the scene; see `envs.chain_starts`). `reset(options={"start": ...})` overrides it per episode.
        prefix_runner: what executes a chain start's sub-chain skills, `(env, TaskSpec) -> (success, steps)`; None
            runs the scripted experts. Settable later as the `prefix_runner` attribute.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": int(CONTROL_HZ)}  # noqa: RUF012

    def __init__(
        self, task: str = "reach", obs_mode: str = "state", image_size: int = 64, control: str = "ee",
        render_every: int = 1, reward_type: str = "dense", max_steps: int | None = None,
        render_mode: str | None = None, render_size: int = 224, use_egl: bool = False, start: str = "reset",
        prefix_runner: PrefixRunner | None = None, front_image_size: int | None = None,
    ) -> None:
        check_choice("task", task, TASK_CHOICES)
        check_choice("obs_mode", obs_mode, OBS_MODES)
        check_choice("reward_type", reward_type, ("dense", "sparse"))
        check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        front_image_size = image_size if front_image_size is None else front_image_size
        if render_every < 1 or min(image_size, front_image_size) < 8:
            raise InputError(f"render_every must be >= 1 and image_size, front_image_size >= 8, got {render_every}, "
                             f"{image_size}, {front_image_size}")
        self.task_name, self.obs_mode, self.reward_type = task, obs_mode, reward_type
        self.start_mode = check_start(start)
        self.prefix_runner: PrefixRunner = prefix_runner or run_skill
        self.render_mode, self.render_every, self.max_steps = render_mode, render_every, max_steps
        self.sim = PyBulletSim(timestep=TIMESTEP, use_egl=use_egl, gui=render_mode == "human")
        self._last_frame_at = 0.0
        """perf_counter time of the last step shown in the GUI (human mode paces steps to render_fps)."""
        self.control = control
        self.scene, self.robot = self._build_world(self.sim)
        self._object_bodies = {self.sim.body_id(n): n for n in RIGID_OBJECTS}
        self._worlds = WorldPool(self._build_world, TIMESTEP, use_egl)
        """Worlds built ahead by `prepare_world`, and finished episodes' clients to rebuild them in."""
        self.resets_from_spare = 0
        """Resets that swapped in a spare world instead of rebuilding (what `prepare_world` has saved)."""
        self.cameras: list[Camera] = []
        if obs_mode != "state":
            self.cameras.append(front_camera(self.sim, front_image_size))
        if obs_mode == "rgbd_touch":
            self.cameras.append(wrist_camera(self.sim, image_size))
        self.touch = Touch(self.sim)
        self._video_camera = front_camera(self.sim, render_size)
        self.action_space = spaces.Box(-1.0, 1.0, (self.robot.action_size,), dtype=np.float32)
        self.observation_space = self._make_observation_space()
        self._spec: TaskSpec | None = None
        self._instruction = ""
        self._elapsed = 0
        self._start: SceneState | None = None
        self._state: SceneState | None = None
        """The scene as of the last step or reset (IK starts from its grasp-point position)."""
        self._last_obs: dict[str, np.ndarray] = {}
        self._images: dict[str, np.ndarray] = {}
        self._label: tuple[TaskSpec | None, str] = (None, "none")
        """The task and its `str` (see `_task_label`)."""

    def _build_world(self, sim: PyBulletSim) -> tuple[KitchenScene, Panda]:
        """Load the kitchen and the robot into an empty world."""
        return KitchenScene(sim), Panda(sim, control=self.control)

    def prepare_world(self) -> int:
        """Build the next episode's world now, in a spare client; returns how many spare worlds are ready.

        Why: rebuilding the world is most of a reset's cost (~15 of ~17 ms). A caller with time to spare
        (a vec-env worker waiting for the learner's next action) builds worlds ahead so that `reset`
        only swaps one in. Episodes are bit-identical either way: a world built in a fresh or freshly
        reset client is exactly what `reset` would build in place (tests/test_envs.py).
        """
        if self.render_mode == "human":  # the window shows the client it opened with: episodes rebuild in place
            return 0
        return self._worlds.prepare()

    @property
    def spare_worlds(self) -> int:
        """Worlds built ahead by `prepare_world` and not yet used."""
        return len(self._worlds)

    def _next_world(self) -> None:
        """An empty kitchen for the next episode: a spare world if one is ready, else rebuilt in place."""
        world = self._worlds.take()
        if world is None:
            self.sim.reset_world()
            self.scene, self.robot = self._build_world(self.sim)
            return
        spare, scene, robot = world
        self.resets_from_spare += 1
        self.sim.swap_world(spare)  # `spare` now holds the finished episode's client
        self._worlds.recycle(spare)
        scene.sim = robot.sim = self.sim
        self.scene, self.robot = scene, robot
        self._object_bodies = {self.sim.body_id(n): n for n in RIGID_OBJECTS}

    def _make_observation_space(self) -> spaces.Dict:
        sides = {camera.name: camera.width for camera in self.cameras}
        return observation_space(self.obs_mode, list(sides), sides, Touch.SIZE)

    # --------------------------------------------------------------------------------- episodes
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode (gymnasium API).

        `options` may hold variables, task, args, instruction, start and crowd (chain starts only: a place into
        the bowl, the drawer or onto the plate starts with another object there, a place on the table or a block
        with the object taken off a support; `envs.chain_starts`); any other
        key raises KeyError.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"variables", "task", "args", "instruction", "start", "crowd"}
        if unknown:
            raise UnknownNameError(
                f"unknown reset options {sorted(unknown)}; expected: variables, task, args, instruction, start, crowd")
        start_mode = check_start(options.get("start", self.start_mode))
        crowd = options.get("crowd", False)
        if not isinstance(crowd, bool) or (crowd and start_mode != "chain"):
            raise InputError(f"reset option crowd must be true or false, and true only with chain starts; got "
                             f"{crowd!r} with {start_mode!r} starts")
        overrides = self.scene.validate_variables(options.get("variables") or {})
        spec, layout = choose_task(options, self.task_name, self.scene, self.np_random)
        if spec is not None:
            overrides = {**preconditions(spec, self.np_random), **overrides}
        self._next_world()
        self.scene.apply(layout, overrides)
        self.robot.reset()
        self.sim.step(SUBSTEPS)  # let objects settle onto the table
        self._spec = spec
        self._instruction = options.get("instruction") or self._describe(spec)
        self._elapsed = 0
        self._images = {}
        state = self._state = self.scene_state()
        self._start = state
        self._last_obs = self._observe(state)
        if start_mode == "chain" and spec is not None:  # begin where a random scripted sub-chain ends
            spec, chain = build_chain_start(self, spec, self.np_random, "args" in options,
                                             runner=self.prefix_runner, crowd=crowd)
            self.set_task(spec.name, spec.args, options.get("instruction"))
            self._images = {}
            state, self._last_obs = self._start, self._observe(self._start)
            return self._last_obs, {**self._info(state, success=False, fault=False, full=True),
                                    "chain_start": chain.to_json()}
        return self._last_obs, self._info(state, success=False, fault=False, full=True)

    def _describe(self, spec: TaskSpec | None) -> str:
        return "explore the kitchen" if spec is None else sample_instruction(spec.name, spec.args, self.np_random)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Advance one control period (gymnasium API).

        Terminated on task success; truncated at the horizon or on a physics fault, when the last good observation
        is returned. Raises RuntimeError before `reset` and ValueError for a wrongly shaped or non-finite action.
        """
        if self._start is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        values = action.tolist()  # plain floats: cheaper than numpy calls on four numbers
        if not all(map(math.isfinite, values)):
            raise ValueError(f"action contains NaN or inf: {values}")
        self.robot.apply_action([min(max(v, -1.0), 1.0) for v in values], self._state.ee_position)
        self.sim.step(SUBSTEPS)
        if self.render_mode == "human":
            self._pace()
        self._elapsed += 1
        state = self._state = self.scene_state()
        fault = physics_fault(state)
        success = (not fault) and self._spec is not None and check_success(self._spec, self._start, state)
        reward = self._reward(state, success)
        truncated = fault or self._elapsed >= self.horizon
        if not fault:
            self._last_obs = self._observe(state)
        info = self._info(state, success=success, fault=fault, full=success or truncated)
        return self._last_obs, reward, bool(success), bool(truncated), info

    @property
    def horizon(self) -> int:
        """Steps before truncation: `max_steps` if set, else the task's horizon (the free-play one without a task)."""
        if self.max_steps is not None:
            return self.max_steps
        return FREE_PLAY_HORIZON if self._spec is None else self._spec.horizon

    def _reward(self, state: SceneState, success: bool) -> float:
        if self._spec is None:
            return 0.0
        if self.reward_type == "sparse":
            return 0.0 if success else -1.0
        return dense_reward(self._spec, self._start, state) + (1.0 if success else 0.0)

    # ------------------------------------------------------------------------------ observation
    def scene_state(self) -> SceneState:
        """Ground truth now (privileged: the oracle, experts and studies read it, policies do not)."""
        ee, yaw, velocity = self.robot.ee_state()
        positions, orientations, velocities = self.scene.object_states()
        joints, width = self.robot.joint_and_finger_positions()
        opening = self.scene.drawer_opening()
        return SceneState(
            names=RIGID_OBJECTS, positions=positions, orientations=orientations, velocities=velocities,
            drawer_opening=opening, drawer_position=self.scene.drawer_position(opening), ee_position=ee, ee_yaw=yaw,
            gripper_width=width, joint_positions=joints,
            finger_contacts=self.touch.finger_contacts(self._object_bodies), step=self._elapsed,
            ee_velocity=velocity,
        )

    def _observe(self, state: SceneState) -> dict[str, np.ndarray]:
        obs = {"proprio": proprio(state, self.robot.gripper_command, self._elapsed, self.horizon)}
        if self.obs_mode == "state":
            obs["objects"] = object_features(state)
        if self.cameras and (not self._images or self._elapsed % self.render_every == 0):
            for camera in self.cameras:
                rgb, depth, _ = camera.render()
                self._images[f"rgb_{camera.name}"] = rgb
                self._images[f"depth_{camera.name}"] = depth
        obs.update(self._images)
        if self.obs_mode == "rgbd_touch":
            obs["touch"] = self.touch.read()
        return obs

    def _info(self, state: SceneState, success: bool, fault: bool, full: bool) -> dict[str, Any]:
        spec = self._spec
        info: dict[str, Any] = {
            "instruction": self._instruction, "task": self._task_label(),
            "task_name": spec.name if spec else "none", "task_args": list(spec.args) if spec else [],
            "is_success": success, "physics_fault": fault, "scene_state": state, "objects": list(OBJECT_IDS),
        }
        if full:
            info["facts"] = pred.symbolic_facts(state)
            info["scene_features"] = self.scene_features(state)
        return info

    def _task_label(self) -> str:
        """`str(task)` for the info dict, formatted when the task changes rather than every step."""
        if self._label[0] is not self._spec:
            self._label = (self._spec, str(self._spec) if self._spec else "none")
        return self._label[1]

    def scene_features(self, state: SceneState | None = None) -> dict[str, float]:
        """Flat named floats (poses, drawer, gripper, physical variables): the table causal studies read."""
        state = state or self.scene_state()
        features: dict[str, float] = {}
        for name, pose in state.objects.items():
            for axis, value in zip("xyz", pose.position, strict=True):
                features[f"{name}.pos_{axis}"] = float(value)
        features.update({"drawer.opening_now": state.drawer_opening, "gripper.width": state.gripper_width,
                         "ee.x": float(state.ee_position[0]), "ee.y": float(state.ee_position[1]),
                         "ee.z": float(state.ee_position[2])})
        features.update({k: float(v) for k, v in self.scene.values.items()})
        return features

    def observation(self) -> dict[str, np.ndarray]:
        """The observation of the scene as it is now (e.g. right after `set_task`)."""
        self._images = {}
        self._state = self.scene_state()
        self._last_obs = self._observe(self._state)
        return {k: v.copy() for k, v in self._last_obs.items()}

    def facts(self) -> list[list[str]]:
        """Symbolic facts true now, in the planner's vocabulary."""
        return pred.symbolic_facts(self.scene_state())

    # ---------------------------------------------------------------------- tasks, interventions
    def variables(self) -> dict[str, float]:
        """Physical variables of the current episode and their values (poses included)."""
        return dict(sorted(self.scene.values.items()))

    def set_variables(self, values: dict[str, float]) -> None:
        """do() mid-episode: change masses, frictions, damping (or teleport objects) without a reset."""
        clean = self.scene.validate_variables(values)
        layout = {n: (self.scene.values[f"{n}.x"], self.scene.values[f"{n}.y"], self.scene.values[f"{n}.yaw"])
                  for n in RIGID_OBJECTS}
        moved = {k: v for k, v in clean.items() if k.rsplit(".", 1)[1] in ("x", "y", "yaw", "opening")}
        if moved:
            self.scene.apply(layout, {**self._dynamic_values(), **clean})
        else:
            self.scene.apply_dynamics({**self.scene.values, **clean})
        if self._state is not None:
            self._state = self.scene_state()

    def _dynamic_values(self) -> dict[str, float]:
        return {k: v for k, v in self.scene.values.items() if k.rsplit(".", 1)[1] in
                ("mass", "friction", "damping")}

    def apply_impulse(self, name: str, impulse: tuple[float, float, float]) -> None:
        """Strike an object: an impulse (N*s) delivered as a force over the next physics substep."""
        if name not in RIGID_OBJECTS:
            raise UnknownNameError(f"unknown object {name!r}; expected one of {', '.join(RIGID_OBJECTS)}")
        force = [float(j) / TIMESTEP for j in impulse]
        self.sim.apply_force(name, force)

    def set_task(self, name: str, args: tuple[str, ...] | list[str] | None = None, instruction: str | None = None
                 ) -> str:
        """Switch task without touching the scene; success is then judged from the scene as it is now."""
        check_choice("task", name, (*TASK_NAMES, "none"))
        if name == "none":
            self._spec = None
        else:
            self._spec = TaskSpec(name, tuple(args)) if args is not None else sample_task(name, self.np_random)
        self._instruction = instruction or self._describe(self._spec)
        self._elapsed = 0
        self._start = self._state = self.scene_state()
        return self._instruction

    @property
    def task(self) -> TaskSpec | None:
        """The current episode's task, or None in free play."""
        return self._spec

    @property
    def instruction(self) -> str:
        """The instruction text of the current episode."""
        return self._instruction

    @property
    def start_state(self) -> SceneState | None:
        """The scene at reset, the reference for success checks and dense rewards; None before the first reset."""
        return self._start

    def save_state(self) -> EnvSnapshot:
        """Snapshot for exact re-simulation (counterfactuals, replanning from a past step)."""
        if self._start is None:
            raise RuntimeError("call reset() before save_state()")
        return EnvSnapshot(
            self.sim.save_state(), self._elapsed, self._spec, self._instruction, self._start,
            self.robot.gripper_command, self.robot.target_yaw, dict(self.scene.values),
            {k: v.copy() for k, v in self._last_obs.items()},
        )

    def restore_state(self, snapshot: EnvSnapshot) -> dict[str, np.ndarray]:
        """Return the world to `snapshot`; returns the observation it had then."""
        if not isinstance(snapshot, EnvSnapshot):
            raise TypeError(f"expected an EnvSnapshot from save_state(), got {type(snapshot).__name__}")
        self.sim.restore_state(snapshot.bullet_state)
        self.scene.apply_dynamics(snapshot.variables)
        self._elapsed, self._spec, self._instruction = snapshot.elapsed, snapshot.spec, snapshot.instruction
        self._start = snapshot.start
        self.robot.gripper_command, self.robot.target_yaw = snapshot.gripper_command, snapshot.target_yaw
        self._last_obs = {k: v.copy() for k, v in snapshot.last_obs.items()}
        self._images = {k: v for k, v in self._last_obs.items() if k.startswith(("rgb_", "depth_"))}
        self._state = self.scene_state()
        return {k: v.copy() for k, v in self._last_obs.items()}

    # ------------------------------------------------------------------------------ rendering
    def render(self) -> np.ndarray | None:
        """The front camera at `render_size` in "rgb_array" mode; None otherwise (the GUI draws itself)."""
        if self.render_mode != "rgb_array":
            return None
        return self.video_frame()

    def video_frame(self) -> np.ndarray:
        """The front camera at `render_size`, whatever the render mode (videos recorded while the GUI shows)."""
        rgb, _, _ = self._video_camera.render()
        return rgb

    def _pace(self) -> None:
        """In human mode, hold each step to 1/render_fps of wall time so the motion looks as it would."""
        period = 1.0 / self.metadata["render_fps"]
        wait = self._last_frame_at + period - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        self._last_frame_at = time.perf_counter()

    def render_camera(self, name: str = "front", segmentation: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """RGB, depth and (optionally) segmentation of one of the observation cameras."""
        for camera in self.cameras or [self._video_camera]:
            if camera.name == name:
                return camera.render(segmentation=segmentation)
        raise UnknownNameError(f"unknown camera {name!r}; this env has: {[c.name for c in self.cameras] or ['front']}")

    def close(self) -> None:
        """Disconnect the simulator and release the worlds built ahead; the env is unusable afterwards."""
        self.sim.close()
        self._worlds.close()




