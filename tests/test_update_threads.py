"""The PPO update may borrow the env workers' idle cores; collection goes back to the learner's own threads."""

from __future__ import annotations

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from experiments.training.session import UpdateThreadsCallback


def test_update_runs_with_update_threads_and_collection_with_collect_threads() -> None:
    before = torch.get_num_threads()
    model = PPO("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=1, seed=0), n_steps=64, batch_size=32, n_epochs=1,
                policy_kwargs={"net_arch": [8]}, device="cpu", seed=0)
    seen = {"train": [], "collect": []}
    original_train = model.train

    def spying_train() -> None:
        seen["train"].append(torch.get_num_threads())
        original_train()

    model.train = spying_train

    class StepSpy(BaseCallback):
        def _on_step(self) -> bool:  # called after every env step of a rollout
            seen["collect"].append(torch.get_num_threads())
            return True

    try:
        torch.set_num_threads(1)
        model.learn(192, callback=[UpdateThreadsCallback(collect=1, update=2), StepSpy()])
        assert seen["train"] == [2, 2, 2] and set(seen["collect"]) == {1} and len(seen["collect"]) == 192
        assert torch.get_num_threads() == 1  # restored when training ends
    finally:
        torch.set_num_threads(before)
