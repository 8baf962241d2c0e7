"""`embodia continual`: one language-conditioned PPO policy trained through a task sequence.

Every task phase is the same for all strategies: behaviour-cloning warm start from the scripted expert's
demonstrations of that task, then PPO on the task's dense reward. The strategy (naive, replay, EWC)
decides what, if anything, protects earlier tasks. All tasks are evaluated at fixed step intervals, and
from-scratch single-task references give forward transfer, as in Continual World.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from envs.experts import make_expert
from envs.household import HouseholdEnv
from experiments.io import atomic_write, atomic_write_text
from memory.continual import Demonstrations, attach, behaviour_clone, make_strategy, stack_demonstrations
from memory.continual_metrics import Curve
from perception.extractor import policy_kwargs
from perception.goal_wrapper import GoalEmbeddingWrapper
from perception.text import TextEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContinualConfig:
    """Budgets and hyper-parameters of a continual-learning run."""

    tasks: tuple[str, ...] = ("reach", "push", "pick", "open")
    """the task sequence, trained in this order"""
    strategy: str = "naive"
    """naive | replay | ewc"""
    steps_per_task: int = 15_000
    """PPO environment steps per task"""
    eval_every: int = 5_000
    """evaluate every task after this many steps (and at each phase start)"""
    eval_episodes: int = 10
    """episodes per task per evaluation"""
    demo_episodes: int = 20
    """expert episodes recorded per task (warm start, replay memory, EWC Fisher states)"""
    bc_epochs: int = 30
    """behaviour-cloning passes over a task's demonstrations at the start of its phase"""
    replay_weight: float = 1.0
    ewc_weight: float = 100.0
    seed: int = 0


@dataclass
class RunState:
    """What a run has measured so far (saved after every phase, so runs resume by phase)."""

    evaluations: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    phases_done: int = 0


def make_env(task: str, encoder: TextEncoder) -> GoalEmbeddingWrapper:
    return GoalEmbeddingWrapper(HouseholdEnv(task=task, obs_mode="state"), encoder)


def collect_demonstrations(task: str, episodes: int, seed: int, encoder: TextEncoder) -> Demonstrations:
    """(observation with goal, expert action) pairs from successful expert episodes."""
    env = make_env(task, encoder)
    pairs = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        expert = make_expert(env.unwrapped.task)
        trajectory = []
        for _ in range(env.unwrapped.horizon):
            action = expert.act(info["scene_state"])
            trajectory.append(({k: v.copy() for k, v in obs.items()}, action))
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        if info["is_success"]:
            pairs.extend(trajectory)
    env.close()
    return stack_demonstrations(task, pairs)


def success_rate(model: PPO, env: GoalEmbeddingWrapper, episodes: int, seed: int) -> float:
    wins = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        for _ in range(env.unwrapped.horizon):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        wins += bool(info["is_success"])
    return wins / episodes


class _EvaluateAll(BaseCallback):
    """Evaluates every task each `every` steps of the current phase, on held-out seeds."""

    def __init__(self, evaluate, every: int, offset: int) -> None:
        super().__init__()
        self._evaluate, self._every, self._offset = evaluate, every, offset
        self._next = every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._evaluate(self._offset + self._next)
            self._next += self._every
        return True


class ContinualRun:
    """Trains one policy through `config.tasks` with one strategy; resumable phase by phase."""

    def __init__(self, config: ContinualConfig, encoder: TextEncoder, out: Path, progress=None) -> None:
        self.config, self.encoder, self.out, self.progress = config, encoder, out, progress
        self.eval_envs = {task: make_env(task, encoder) for task in config.tasks}
        self.strategy = make_strategy(config.strategy, seed=config.seed, **self._strategy_kwargs())
        self.state = RunState({task: [] for task in config.tasks})
        torch.manual_seed(config.seed)
        self.model = PPO("MultiInputPolicy", DummyVecEnv([lambda: make_env(config.tasks[0], encoder)]),
                         n_steps=1024, batch_size=128, n_epochs=5, learning_rate=3e-4, gamma=0.95,
                         policy_kwargs={**policy_kwargs(token_dim=64), "net_arch": [128, 128]},
                         seed=config.seed, device="cpu", verbose=0)
        self._detach = attach(self.model.policy, self.strategy)

    def _strategy_kwargs(self) -> dict[str, float]:
        if self.config.strategy == "replay":
            return {"weight": self.config.replay_weight}
        if self.config.strategy == "ewc":
            return {"weight": self.config.ewc_weight}
        return {}

    def evaluate(self, step: int) -> None:
        for index, (task, env) in enumerate(self.eval_envs.items()):
            rate = success_rate(self.model, env, self.config.eval_episodes, 10_000 + 1000 * index)
            self.state.evaluations[task].append((step, rate))
        logger.info("step %d: %s", step, {t: v[-1][1] for t, v in self.state.evaluations.items()})

    def run(self) -> RunState:
        config = self.config
        self._load()
        for phase in range(self.state.phases_done, len(config.tasks)):
            task = config.tasks[phase]
            offset = phase * config.steps_per_task
            if phase == 0:
                self.evaluate(0)  # every task before any training
            demos = collect_demonstrations(task, config.demo_episodes, config.seed * 1000 + 100 * phase, self.encoder)
            behaviour_clone(self.model.policy, demos, config.bc_epochs, 128, np.random.default_rng(config.seed))
            self.model.set_env(DummyVecEnv([lambda task=task: make_env(task, self.encoder)]))
            callback = _EvaluateAll(self.evaluate, config.eval_every, offset)
            self.model.learn(config.steps_per_task, callback=[callback, *self._progress_callback()],
                             reset_num_timesteps=True)
            self.strategy.end_task(self.model.policy, demos)
            self.state.phases_done = phase + 1
            self._save()
        return self.state

    def _progress_callback(self) -> list[BaseCallback]:
        if self.progress is None:
            return []
        bar = self.progress

        class _Bar(BaseCallback):
            def _on_step(self) -> bool:
                bar.update(1)
                return True

        return [_Bar()]

    def _save(self) -> None:
        atomic_write(self.out / "checkpoint.pt", lambda tmp: torch.save(
            {"policy": self.model.policy.state_dict(), "optimizer": self.model.policy.optimizer.state_dict(),
             "strategy": self.strategy, "state": asdict(self.state), "config": asdict(self.config)}, tmp))

    def _load(self) -> None:
        path = self.out / "checkpoint.pt"
        if not path.exists():
            return
        try:
            saved = torch.load(path, weights_only=False)
            if saved["config"] != asdict(self.config):
                raise ValueError("it was made with a different configuration")
            self.model.policy.load_state_dict(saved["policy"])
            self.model.policy.optimizer.load_state_dict(saved["optimizer"])
        except (ValueError, KeyError, RuntimeError, EOFError) as error:
            raise ValueError(f"cannot resume from {path}: {error}; remove it or use another --out") from error
        self._detach()
        self.strategy = saved["strategy"]
        self._detach = attach(self.model.policy, self.strategy)
        self.state = RunState(**saved["state"])

    def close(self) -> None:
        for env in self.eval_envs.values():
            env.close()


def curves_of(state: RunState) -> dict[str, Curve]:
    return {task: Curve(tuple(s for s, _ in rows), tuple(p for _, p in rows))
            for task, rows in state.evaluations.items()}


def run_reference(task: str, config: ContinualConfig, encoder: TextEncoder, out: Path, progress=None) -> Curve:
    """Task `task` alone from scratch with the same budget (the baseline of forward transfer)."""
    single = ContinualConfig(**{**asdict(config), "tasks": (task,), "strategy": "naive"})
    run = ContinualRun(single, encoder, out, progress)
    try:
        state = run.run()
    finally:
        run.close()
    return curves_of(state)[task]


def write_results(out: Path, config: ContinualConfig, results: dict[str, Any]) -> None:
    atomic_write_text(out / "results.json", json.dumps({"config": asdict(config), **results}, indent=2))
