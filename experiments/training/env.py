"""Building the training and evaluation environments of a run from its config.

Wrapper stack, inside out: `HouseholdEnv` → `LanguageTaskWrapper` (arguments and sentence per episode)
→ `GoalEmbeddingWrapper` (the sentence's embedding as the `goal` observation, from the run's
`EmbeddingTable`) → SB3 `Monitor` (episode returns) → `CrashNoteWrapper` (worker crash reports).
Several envs run in `CheckedSubprocVecEnv` worker processes (or, with `vec_env: split`, env 0 in the
learner's process and the rest in workers); optionally `VecNormalize` scales rewards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from experiments.training.config import TrainConfig
from experiments.training.language import EmbeddingTable, LanguageTaskWrapper, ProgressShaping
from experiments.training.vec import (
    CheckedSubprocVecEnv,
    CrashNoteWrapper,
    SplitVecEnv,
    crash_note_path,
    default_start_method,
    find_layer,
)
from perception.goal_wrapper import GoalEmbeddingWrapper
from perception.layout import GOAL_KEY


def make_env(config: TrainConfig, table: EmbeddingTable, *, slim_info: bool = True, render: bool = False,
             skill_text_fraction: float | None = None, shaping: bool = False) -> gym.Env:
    """One fully wrapped env (no Monitor): what the policy sees during training and evaluation.

    `shaping` adds the training-only reward shaping (`progress_reward`, `approach_reward`), never used to
    evaluate.
    """
    from envs.household import HouseholdEnv

    env = HouseholdEnv(task=config.task, obs_mode=config.obs_mode, image_size=config.image_size,
                       reward_type=config.reward_type, render_mode="rgb_array" if render else None,
                       start=config.start)
    fraction = config.skill_text_fraction if skill_text_fraction is None else skill_text_fraction
    env = LanguageTaskWrapper(env, config.task, skill_text_fraction=fraction,
                              start_held_fraction=config.start_held_fraction, slim_info=slim_info)
    if shaping and (config.progress_reward > 0 or config.approach_reward > 0):
        env = ProgressShaping(env, config.progress_reward, config.approach_reward)
    return GoalEmbeddingWrapper(env, table)


def env_factory(config: TrainConfig, table: EmbeddingTable, rank: int, note_dir: Path | None
                ) -> Callable[[], gym.Env]:
    """A picklable constructor for worker `rank` (what SubprocVecEnv sends to the process)."""

    def build() -> gym.Env:
        import torch

        torch.set_num_threads(1)  # workers only step physics; leave the cores to PPO
        env = Monitor(make_env(config, table, shaping=True))
        return CrashNoteWrapper(env, crash_note_path(note_dir, rank)) if note_dir is not None else env

    return build


def build_vec_env(config: TrainConfig, table: EmbeddingTable, note_dir: Path | None = None,
                  start_method: str | None = None, vecnormalize: VecNormalize | None = None) -> VecEnv:
    """`n_envs` training envs: in-process for one, one worker process each for more.

    With `normalize_reward`, the envs are wrapped in `vecnormalize` (restored statistics) or a fresh one.
    """
    fns = [env_factory(config, table, rank, note_dir if config.n_envs > 1 else None) for rank in range(config.n_envs)]
    if config.n_envs == 1:
        venv: VecEnv = DummyVecEnv(fns)
    else:
        if note_dir is not None:
            note_dir.mkdir(parents=True, exist_ok=True)
        from experiments.training.actors import ActorWorkers

        kind = {"split": SplitVecEnv, "subproc": CheckedSubprocVecEnv, "actors": ActorWorkers}[config.vec_env]
        venv = kind(fns, timeout=config.worker_timeout, note_dir=note_dir,
                    start_method=start_method or default_start_method(), spare_worlds=config.spare_worlds)
    if not config.normalize_reward:
        return venv
    if vecnormalize is not None:
        vecnormalize.set_venv(venv)
        return vecnormalize
    return VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=config.gamma)


def find_vec_normalize(venv: VecEnv) -> VecNormalize | None:
    """The VecNormalize layer of a wrapped vec env, if any."""
    return find_layer(venv, VecNormalize)


def input_statistics(config: TrainConfig, table: EmbeddingTable) -> dict[str, np.ndarray]:
    """Samples of every 1-D input (proprio, objects; goal from the sentence table) for standardisation.

    `config.statistics_steps` random-action steps, seeded from the run seed (a fresh run is reproducible).
    """
    env = make_env(config, table)
    rng = np.random.default_rng([config.seed, 0xDA7A])
    samples: dict[str, list[np.ndarray]] = {}
    try:
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        for _ in range(config.statistics_steps):
            for key in ("proprio", "objects"):
                if key in obs:
                    samples.setdefault(key, []).append(obs[key])
            obs, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            if terminated or truncated:
                obs, _ = env.reset(seed=int(rng.integers(2**31)))
    finally:
        env.close()
    stats = {key: np.stack(values) for key, values in samples.items()}
    stats[GOAL_KEY] = table.encode(table.texts)
    return stats
