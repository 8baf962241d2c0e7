"""Continual learning: Continual World metrics by hand, and strategies that really protect old tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from memory.continual import EWC, Replay, attach, behaviour_cloning_loss, make_strategy
from memory.continual_metrics import Curve, summarise


def test_metrics_match_hand_computation() -> None:
    tasks = ["a", "b", "c"]
    curves = {
        "a": Curve((0, 10, 20, 30), (0.0, 1.0, 0.5, 0.25)),
        "b": Curve((0, 10, 20, 30), (0.0, 0.0, 0.8, 0.8)),
        "c": Curve((0, 10, 20, 30), (0.0, 0.0, 0.0, 1.0)),
    }
    references = {t: Curve((0, 10), (0.0, 0.5)) for t in tasks}
    result = summarise(curves, references, tasks, steps_per_task=10)
    assert result["average_performance"] == pytest.approx((0.25 + 0.8 + 1.0) / 3)
    assert result["forgetting"] == {"a": pytest.approx(0.75), "b": pytest.approx(0.0)}
    assert result["average_forgetting"] == pytest.approx(0.375)
    # AUC_a over [0,10] = 0.5, AUC_b over [10,20] = 0.4, AUC_c over [20,30] = 0.5; reference AUC = 0.25.
    assert result["forward_transfer"] == {"a": pytest.approx((0.5 - 0.25) / 0.75),
                                          "b": pytest.approx((0.4 - 0.25) / 0.75),
                                          "c": pytest.approx((0.5 - 0.25) / 0.75)}


def test_curves_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="increase"):
        Curve((10, 0), (0.1, 0.2))
    with pytest.raises(ValueError, match="matching"):
        Curve((0, 1), (0.1,))
    with pytest.raises(ValueError, match="unknown continual-learning strategy"):
        make_strategy("dropout")


@pytest.fixture()
def policy():
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, policy_kwargs={"net_arch": [32]}, device="cpu")
    return model.policy


class _BoxDemos:
    """Box-observation demonstrations for the Pendulum test policy.

    Each task lives in its own half of observation space (as a language goal would separate tasks), and
    wants its own constant action, so a policy can in principle keep both.
    """

    def __init__(self, task: str, target: float) -> None:
        side = 1.0 if target > 0 else -1.0
        rng = np.random.default_rng(0 if side > 0 else 1)
        self.task = task
        self.observations = rng.uniform(-1, 1, size=(256, 3)).astype(np.float32)
        self.observations[:, 0] = side * rng.uniform(0.5, 1.0, size=256)
        self.actions = np.full((256, 1), target, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.actions)

    def sample(self, rng, size):
        index = rng.integers(0, len(self), size=size)
        return self.observations[index], self.actions[index]


def _train_on(policy, demos, steps: int = 150) -> None:
    rng = np.random.default_rng(0)
    for _ in range(steps):
        observations, actions = demos.sample(rng, 64)
        loss = behaviour_cloning_loss(policy, observations, actions)
        policy.optimizer.zero_grad()
        loss.backward()
        policy.optimizer.step()


def _old_task_error(policy, demos) -> float:
    with torch.no_grad():
        actions, _, _ = policy(torch.as_tensor(demos.observations), deterministic=True)
    return float((actions.numpy() - demos.actions).__abs__().mean())


@pytest.mark.parametrize("strategy_name", ["replay", "ewc"])
def test_strategy_forgets_less_than_naive(strategy_name: str) -> None:
    """Learn task A (action +1), then task B (action -1): the strategy keeps A better than naive does."""
    errors = {}
    for name in ("naive", strategy_name):
        torch.manual_seed(0)
        env = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
        policy = PPO("MlpPolicy", env, n_steps=64, seed=0, learning_rate=3e-3, policy_kwargs={"net_arch": [32]},
                     device="cpu").policy
        strategy = make_strategy(name, seed=0, **({"weight": 2000.0} if name == "ewc" else {}))
        attach(policy, strategy)
        task_a, task_b = _BoxDemos("a", 0.8), _BoxDemos("b", -0.8)
        _train_on(policy, task_a)
        assert _old_task_error(policy, task_a) < 0.3, "task A should be learned first"
        strategy.end_task(policy, task_a)
        _train_on(policy, task_b)
        errors[name] = _old_task_error(policy, task_a)
    assert errors[strategy_name] < 0.5 * errors["naive"], errors


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away(policy) -> None:
    ewc = EWC(weight=1.0)
    ewc.end_task(policy, _BoxDemos("a", 0.5))
    assert float(ewc.extra_loss(policy)) == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.1)
    assert float(ewc.extra_loss(policy)) > 0.0


def test_replay_has_no_loss_before_any_task_and_one_after(policy) -> None:
    replay = Replay()
    assert replay.extra_loss(policy) is None
    replay.end_task(policy, _BoxDemos("a", 0.5))
    assert float(replay.extra_loss(policy)) > 0.0


def test_attach_adds_the_strategy_gradient_and_detaches(policy) -> None:
    calls = []

    class Spy:
        def extra_loss(self, p):
            calls.append(1)
            return sum((q * 0).sum() for q in p.parameters())

    detach = attach(policy, Spy())
    _train_on(policy, _BoxDemos("a", 0.1), steps=3)
    assert len(calls) == 3
    detach()
    _train_on(policy, _BoxDemos("a", 0.1), steps=2)
    assert len(calls) == 3
