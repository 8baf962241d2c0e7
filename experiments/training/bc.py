"""Behaviour-cloning warm start: scripted-expert episodes, then the PPO policy fitted to them.

The experts act on privileged scene state; the policy sees what it will see in PPO (observation plus goal
embedding), so cloning them is plain supervised learning on (observation, expert action) pairs. The actor
is fitted by maximising the log-likelihood of the expert action under the policy's Gaussian, the critic
by regressing the expert's discounted return (skipped when rewards are normalised, since the scale is not
known yet). Afterwards the action log-std is set to `bc_log_std`: cloning shrinks it towards zero, which
would leave PPO no exploration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from experiments.common.errors import InputError
from experiments.training.config import TrainConfig
from experiments.training.env import make_env
from experiments.training.language import EmbeddingTable

logger = logging.getLogger(__name__)
BC_SEED = 2_000_000


@dataclass
class ExpertData:
    """Stacked (observation, action, return) samples from expert episodes."""

    observations: dict[str, np.ndarray]
    actions: np.ndarray
    returns: np.ndarray
    episodes: int
    successes: int

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def _discounted(rewards: list[float], gamma: float) -> list[float]:
    out, running = [], 0.0
    for reward in reversed(rewards):
        running = reward + gamma * running
        out.append(running)
    return out[::-1]


def collect_expert_data(config: TrainConfig, table: EmbeddingTable, episodes: int, seed: int = BC_SEED
                        ) -> ExpertData:
    """Run the scripted expert for `episodes` seeded episodes of the run's task and keep every step.

    With `config.bc_action_noise`, the env executes the expert's action plus Gaussian noise while the data
    keeps the expert's own action as the label (DART): states off the expert's path, labelled with how
    the expert steers back.
    """
    from envs.experts import make_expert

    env = make_env(config, table, slim_info=False, shaping=True)  # critic targets in PPO's own reward
    observations: dict[str, list[np.ndarray]] = {}
    actions: list[np.ndarray] = []
    returns: list[float] = []
    successes = 0
    noise_rng = np.random.default_rng([config.seed, seed, 0xDA27])
    try:
        for index in range(episodes):
            obs, info = env.reset(seed=seed + index)
            expert = make_expert(env.unwrapped.task)
            rewards: list[float] = []
            while True:
                action = expert.act(info["scene_state"])
                for key, value in obs.items():
                    observations.setdefault(key, []).append(value)
                actions.append(action)
                executed = action
                if config.bc_action_noise > 0:
                    noise = noise_rng.normal(0.0, config.bc_action_noise, action.shape)
                    executed = np.clip(action + noise, -1.0, 1.0).astype(np.float32)
                obs, reward, terminated, truncated, info = env.step(executed)
                rewards.append(float(reward))
                if terminated or truncated:
                    successes += int(bool(info["is_success"]))
                    break
            returns.extend(_discounted(rewards, config.gamma))
    finally:
        env.close()
    stacked = {key: np.stack(values) for key, values in observations.items()}
    return ExpertData(stacked, np.stack(actions).astype(np.float32), np.asarray(returns, np.float32), episodes,
                      successes)


def _as_policy_sees(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Expert observations in the layout of the policy's space.

    SB3 wraps the training envs in `VecTransposeImage`, so its uint8 camera images arrive channels-first while the env
    gives HxWxC.
    """
    if values.shape[1:] == tuple(shape) or values.ndim != 4:
        return values
    if values.shape[1:] == (shape[1], shape[2], shape[0]):
        return np.ascontiguousarray(values.transpose(0, 3, 1, 2))
    raise InputError(f"expert observations of shape {values.shape[1:]} do not fit the policy's {tuple(shape)}")


def pretrain(model: Any, data: ExpertData, config: TrainConfig,
             extra_loss: Callable[[Any], torch.Tensor | None] | None = None) -> dict[str, Any]:
    """Fit the model's policy to the expert data in place; returns the loss curve and timings.

    `extra_loss(policy)` is added to every minibatch's loss: continual learning uses it so that replay or
    EWC also guard earlier tasks while a new task's demonstrations are cloned.
    """
    policy = model.policy
    policy.set_training_mode(True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.bc_learning_rate)
    obs = {key: torch.as_tensor(_as_policy_sees(value, policy.observation_space[key].shape))
           for key, value in data.observations.items()}
    actions = torch.as_tensor(data.actions)
    returns = torch.as_tensor(data.returns)
    fit_value = not config.normalize_reward
    generator = torch.Generator().manual_seed(config.seed)
    curve: list[dict[str, float]] = []
    started = time.perf_counter()
    batches = -(-len(data) // config.bc_batch_size) * config.bc_epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, batches) \
        if config.bc_lr_schedule == "cosine" else None
    for epoch in range(config.bc_epochs):
        order = torch.randperm(len(data), generator=generator)
        totals = np.zeros(2)
        for start in range(0, len(data), config.bc_batch_size):
            batch = order[start : start + config.bc_batch_size]
            values, log_prob, _ = policy.evaluate_actions({k: v[batch] for k, v in obs.items()}, actions[batch])
            actor_loss = -log_prob.mean()
            value_loss = torch.nn.functional.mse_loss(values.flatten(), returns[batch]) if fit_value \
                else torch.zeros(())
            loss = actor_loss + config.vf_coef * value_loss
            extra = extra_loss(policy) if extra_loss is not None else None
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            totals += [actor_loss.item() * len(batch), value_loss.item() * len(batch)]
        curve.append({"epoch": epoch + 1, "nll": totals[0] / len(data), "value_mse": totals[1] / len(data)})
    with torch.no_grad():
        policy.log_std.fill_(config.bc_log_std)
        mean_error = _action_error(policy, obs, actions)
    policy.set_training_mode(False)
    logger.info("BC: %d samples, final nll %.3f, mean |action error| %.3f", len(data), curve[-1]["nll"], mean_error)
    return {"samples": len(data), "expert_episodes": data.episodes, "expert_successes": data.successes,
            "curve": curve, "mean_abs_action_error": mean_error, "value_fitted": fit_value,
            "seconds": time.perf_counter() - started}


def _action_error(policy: Any, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> float:
    """Mean |deterministic action − expert action| over the data (after clipping to the action box)."""
    predicted = policy._predict(obs, deterministic=True).clamp(-1.0, 1.0)
    return float((predicted - actions).abs().mean())
