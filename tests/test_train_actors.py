"""`vec_env: actors`: workers act with their own policy copies; the rollouts must be PPO's all the same."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from experiments.training.actors import ActorPPO, ActorWorkers
from experiments.training.config import TrainConfig
from experiments.training.env import build_vec_env
from experiments.training.language import EmbeddingTable, all_texts
from experiments.training.train import new_model
from experiments.training.vec import CrashNoteWrapper, EnvWorkerError, crash_note_path
from perception.text import HashingTextEncoder


@pytest.fixture(scope="module")
def table() -> EmbeddingTable:
    return EmbeddingTable.build(HashingTextEncoder(), all_texts("reach"), "hashing")


class RolloutAudit(BaseCallback):
    """At each rollout end (before the update): does the buffer hold what the learner's policy says?"""

    def __init__(self) -> None:
        super().__init__()
        self.log_prob_error: list[float] = []
        self.value_error: list[float] = []
        self.actions: list[np.ndarray] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        policy = self.model.policy
        flat = {key: torch.as_tensor(value.reshape(-1, *value.shape[2:])) for key, value in buffer.observations.items()}
        actions = torch.as_tensor(buffer.actions.reshape(-1, buffer.actions.shape[-1]))
        with torch.no_grad():
            values, log_probs, _ = policy.evaluate_actions(flat, actions)
        self.log_prob_error.append(float(np.abs(log_probs.numpy() - buffer.log_probs.reshape(-1)).max()))
        self.value_error.append(float(np.abs(values.numpy().reshape(-1) - buffer.values.reshape(-1)).max()))
        self.actions.append(buffer.actions.copy())


def _train(table: EmbeddingTable, seed: int, steps: int = 384) -> tuple[RolloutAudit, dict[str, torch.Tensor]]:
    config = TrainConfig(task="reach", encoder="hashing", n_envs=2, vec_env="actors", n_steps=64, batch_size=64,
                         n_epochs=2, seed=seed, spare_worlds=2, net_arch=(32, 32), token_dim=16)
    venv = build_vec_env(config, table)
    try:
        assert isinstance(venv, ActorWorkers)
        model = new_model(config, venv, None, table)
        assert isinstance(model, ActorPPO)
        audit = RolloutAudit()
        model.learn(steps, callback=audit)
        assert len(model.ep_info_buffer) > 0, "episodes should have ended during the run"
        return audit, {k: v.clone() for k, v in model.policy.state_dict().items()}
    finally:
        venv.close()


def test_actor_rollouts_are_what_the_learners_policy_gives(table) -> None:
    """Every worker's log-probs and values match the learner's policy on the same observations and actions,
    rollout after rollout (the weights reach the workers after each update); runs are reproducible."""
    audit, weights = _train(table, seed=3)
    assert len(audit.log_prob_error) == 3  # 384 steps = 3 rollouts of 2 x 64
    assert max(audit.log_prob_error) < 1e-4 and max(audit.value_error) < 1e-4, (audit.log_prob_error,
                                                                                 audit.value_error)
    again, weights_again = _train(table, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(audit.actions, again.actions, strict=True))
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    other, _ = _train(table, seed=4)
    assert not np.array_equal(audit.actions[0], other.actions[0])
    actions = audit.actions[0]  # (steps, envs, action size)
    assert not np.array_equal(actions[:, 0], actions[:, 1]), "the two workers should sample different noise"


def test_stopping_mid_rollout_leaves_the_workers_usable(table) -> None:
    config = TrainConfig(task="reach", encoder="hashing", n_envs=2, vec_env="actors", n_steps=32, batch_size=32,
                         spare_worlds=0)
    venv = build_vec_env(config, table)

    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 5

    try:
        model = new_model(config, venv, None, table)
        model.learn(64, callback=StopAt())
        assert model.num_timesteps == 10  # stopped on the 5th vector step of the first rollout
        obs = venv.reset()  # the rest of the abandoned rollout is drained first
        assert obs["proprio"].shape[0] == 2
        assert venv.get_attr("task_name") == ["reach", "reach"]
    finally:
        venv.close()


def test_actors_refuse_what_their_workers_cannot_do() -> None:
    with pytest.raises(ValueError, match="obs_mode 'state'"):
        TrainConfig(task="reach", vec_env="actors", obs_mode="rgbd")
    with pytest.raises(ValueError, match="normalize_reward"):
        TrainConfig(task="reach", vec_env="actors", normalize_reward=True)


def test_a_crash_inside_an_actor_rollout_names_the_worker(tmp_path) -> None:
    """Pendulum workers (a Dict observation, the project's policy kind: workers rebuild it from JSON, never a
    pickle); worker 1 raises on its 3rd step."""
    from agent.policy_features import StandardizedExtractor

    def make(rank: int):
        def build() -> gym.Env:
            env = gym.make("Pendulum-v1")
            box = env.observation_space
            calls = {"n": 0}

            def observe(obs):
                calls["n"] += 1
                if rank == 1 and calls["n"] >= 3:
                    raise FloatingPointError("simulated physics blow-up")
                return {"proprio": obs}

            env = gym.wrappers.TransformObservation(env, observe, gym.spaces.Dict({"proprio": box}))
            return CrashNoteWrapper(env, crash_note_path(tmp_path, rank))

        return build

    venv = ActorWorkers([make(0), make(1)], note_dir=tmp_path, timeout=30)
    try:
        model = ActorPPO("MultiInputPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu",
                         policy_kwargs={"features_extractor_class": StandardizedExtractor})
        started = time.monotonic()
        with pytest.raises(EnvWorkerError, match=r"worker 1 .*simulated physics blow-up"):
            model.learn(64)
        assert time.monotonic() - started < 20
    finally:
        venv.close()


def test_actor_workers_refuse_a_policy_they_cannot_rebuild_without_pickle(tmp_path) -> None:
    from agent.errors import InputError

    venv = ActorWorkers([lambda: gym.make("Pendulum-v1")], note_dir=tmp_path, timeout=30)
    try:
        model = ActorPPO("MlpPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu")
        with pytest.raises(InputError, match="features extractor FlattenExtractor is not one a policy file may name"):
            model.learn(16)
    finally:
        venv.close()
