"""Observations to perceive: a seeded kitchen, or an observation saved as a plain `.npz`.

A seeded kitchen may first run an instruction with the scripted agent (`--setup`).

The estimator sees only the `rgbd_touch` senses; the oracle's facts are kept beside them for comparison
(`--truth`), never passed to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.common.errors import InputError
from perception.scene_estimator import PRIVILEGED_KEYS, SENSES, EstimatorConfig


@dataclass
class PerceivedScene:
    """One observation and, when it came from the simulator, the oracle's facts at that instant."""

    obs: dict[str, np.ndarray]
    true_facts: list[list[str]] | None = None
    setup: dict | None = None


def seeded_scene(seed: int, config: EstimatorConfig, setup: str | None = None, encoder: str = "minilm"
                 ) -> PerceivedScene:
    """The kitchen of `seed` at the estimator's image size, after `setup` is carried out by the scripted agent."""
    from envs.household import HouseholdEnv
    from experiments.kitchen.world import KitchenWorld

    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=config.image_size,
                       front_image_size=config.front_size)
    try:
        world = KitchenWorld(env)
        world.reset(seed=seed)
        outcome = None
        if setup:
            from agent.loop import EmbodiedAgent
            from agent.planner import GroundedPlanner
            from experiments.kitchen.factory import make_encoder
            from experiments.kitchen.world import ScriptedProvider

            agent = EmbodiedAgent(GroundedPlanner(make_encoder(encoder)), ScriptedProvider(world))
            record = agent.run(world, setup)
            outcome = {"instruction": setup, "success": record.success, "error": record.error}
        obs = env.observation()
        return PerceivedScene({key: obs[key] for key in SENSES}, env.facts(), outcome)
    finally:
        env.close()


def saved_scene(path: Path) -> PerceivedScene:
    """An observation saved with `np.savez` (plain arrays, read without pickle); privileged keys are refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved observation at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            obs = {key: data[key] for key in data.files}
    except (ValueError, OSError) as error:
        raise InputError(f"{path} is not a plain-array .npz observation: {error}") from None
    privileged = [key for key in PRIVILEGED_KEYS if key in obs]
    if privileged:
        raise InputError(f"{path} carries privileged keys {privileged}; save only the senses {list(SENSES)}")
    return PerceivedScene(obs)


def save_observation(path: Path, obs: dict[str, np.ndarray]) -> Path:
    """Write the senses of `obs` as a plain `.npz` (what `saved_scene` reads)."""
    from experiments.common.io import atomic_write

    return atomic_write(path, lambda tmp: np.savez(tmp, **{key: obs[key] for key in SENSES}), suffix=".npz")
