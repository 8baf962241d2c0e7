"""Frames for perception's grounding, collected in the kitchen with the scripted experts.

This is composition-root code: it is where `envs` (the world, the experts, the ground truth) meets
`perception` (the `FrameSet` it fills). Each episode chains several expert-driven tasks (pick this,
put that in the bowl, open the drawer, ...) so the frames cover blocks in the bowl, on the plate, on
each other, in the drawer, in the gripper, with the drawer open and closed, and every recorded frame
carries the symbolic facts true at that instant. Everything is seeded by the episode seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from envs.experts import make_expert
from envs.household import HouseholdEnv
from envs.tasks import TaskSpec, valid_arguments
from experiments.common.errors import InputError
from perception.frames import FrameSet

log = logging.getLogger(__name__)

# How often each kind of task is chained next: placements change the scene the most.
TASK_WEIGHTS = {"pick": 1.0, "place_in": 3.0, "place_on": 2.0, "push": 1.0, "open": 1.0, "close": 1.0, "reach": 0.5}


@dataclass(frozen=True)
class CollectionConfig:
    """How frames are gathered."""

    obs_mode: str = "rgbd_touch"
    """which observation keys are recorded (`rgbd` or `rgbd_touch`; touch is needed for grasp detection)"""
    image_size: int = 64
    """camera resolution in pixels"""
    tasks_per_episode: int = 4
    """expert tasks chained in one episode, each starting from where the last one left the scene"""
    frame_every: int = 4
    """record every k-th control step (the env renders only those steps)"""
    action_noise: float = 0.1
    """std of Gaussian noise added to expert actions, for varied poses"""


def make_env(config: CollectionConfig) -> HouseholdEnv:
    """The kitchen configured for collection (renders only the steps that are recorded)."""
    if config.obs_mode not in ("rgbd", "rgbd_touch"):
        raise InputError(
            f"collection needs camera images: obs_mode must be rgbd or rgbd_touch, got {config.obs_mode!r}"
        )
    return HouseholdEnv(
        task="any", obs_mode=config.obs_mode, image_size=config.image_size, render_every=config.frame_every
    )


def _free_on_table(facts: list[list[str]]) -> list[str]:
    supports = {fact[2] for fact in facts if fact[0] == "on"}
    return [fact[1] for fact in facts if fact[:1] == ["on"] and fact[2] == "table" and fact[1] not in supports]


def next_task(facts: list[list[str]], rng: np.random.Generator) -> TaskSpec | None:
    """A task that makes sense from the scene described by `facts`, or None if none does."""
    drawer_open = ["open", "drawer"] in facts
    free = set(_free_on_table(facts))
    options: list[tuple[float, TaskSpec]] = []
    for name, weight in TASK_WEIGHTS.items():
        args_list = valid_arguments(name)
        if name in ("open", "close"):
            args_list = args_list if (name == "open") != drawer_open else []
        else:
            args_list = [args for args in args_list if args[0] in free]
        if name == "place_in" and not drawer_open:
            args_list = [args for args in args_list if args[1] != "drawer"]
        if name == "place_on":
            args_list = [args for args in args_list if args[1] == "plate" or args[1] in free]
        options.extend((weight / len(args_list), TaskSpec(name, args)) for args in args_list)
    if not options:
        return None
    weights = np.array([w for w, _ in options])
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][1]


def _record(frames: dict[str, list], obs: dict[str, np.ndarray], facts: list[list[str]], seed: int, task: str):
    for key, value in obs.items():
        frames.setdefault(key, []).append(value.copy())
    frames["__facts"].append(facts)
    frames["__episode"].append(seed)
    frames["__task"].append(task)


def _run_task(env: HouseholdEnv, frames: dict[str, list], seed: int, config: CollectionConfig, rng) -> bool:
    """Drive the current task with its expert, recording every k-th step; False on a physics fault."""
    base = env.unwrapped
    expert = make_expert(base.task)
    task = str(base.task)
    while True:
        action = expert.act(base.scene_state())
        action[:3] += rng.normal(0.0, config.action_noise, 3).astype(np.float32)
        obs, _, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
        if info["physics_fault"]:
            return False
        if info["scene_state"].step % config.frame_every == 0:
            _record(frames, obs, base.facts(), seed, task)
        if terminated or truncated or expert.done:
            return True


def collect_episode(env: HouseholdEnv, seed: int, config: CollectionConfig, frames: dict[str, list]) -> None:
    """One seeded episode of chained expert tasks, appended to `frames`."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    _record(frames, obs, info["facts"], seed, info["task"])
    for index in range(config.tasks_per_episode):
        if index:
            spec = next_task(env.unwrapped.facts(), rng)
            if spec is None:
                return
            env.unwrapped.set_task(spec.name, spec.args)
        if not _run_task(env, frames, seed, config, rng):
            log.warning("episode %d: physics fault during %s; episode cut short", seed, env.unwrapped.task)
            return


def collect_frames(seeds: list[int], config: CollectionConfig, progress: bool = False) -> tuple[FrameSet, spaces.Dict]:
    """Frames from one episode per seed, plus the observation space they follow."""
    if not seeds:
        raise InputError("collect_frames needs at least one episode seed")
    env = make_env(config)
    frames: dict[str, list] = {"__facts": [], "__episode": [], "__task": []}
    try:
        for seed in tqdm(seeds, desc="collect", unit="episode", disable=not progress):
            collect_episode(env, seed, config, frames)
        space = env.observation_space
    finally:
        env.close()
    facts, episode, task = frames.pop("__facts"), frames.pop("__episode"), frames.pop("__task")
    obs = {key: np.stack(values) for key, values in frames.items()}
    keep = {key: obs[key] for key in obs if key != "proprio"}  # perception aligns the senses, not proprio
    frame_space = spaces.Dict({key: space[key] for key in keep})
    return FrameSet(keep, facts, np.asarray(episode), task), frame_space
