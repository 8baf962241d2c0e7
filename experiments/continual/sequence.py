"""`embodia continual`: one language-conditioned PPO policy trained through a task sequence.

Each task phase follows the single-task training recipe of `embodia train` (RESULTS.md): the task's
config file gives its shaping, grounding and behaviour-cloning settings; the phase pretrains the object
attention on the task's sentences, clones the scripted expert's demonstrations, then runs PPO with a
learning rate that decays linearly over the phase. One model, with one set of input statistics pooled
over every task of the sequence, is carried from phase to phase. The strategy (naive, replay, EWC)
decides what, if anything, protects earlier tasks; its loss is added to every optimizer step of the
phase, the cloning steps included. All tasks are evaluated at fixed step intervals, and from-scratch
single-task references (the same phase alone, on a fresh model) give forward transfer, as in
Continual World.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from experiments.common.errors import InputError
from experiments.common.io import atomic_write
from experiments.training.config import TrainConfig, load_config, parse_assignments
from experiments.training.language import EmbeddingTable, all_texts
from experiments.training.policy_eval import eval_skill_text_fraction
from memory.continual import Demonstrations, attach, make_strategy
from memory.continual_metrics import Curve
from perception.checkpoint import load_weights
from perception.layout import GOAL_KEY
from perception.text import TextEncoder

logger = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "embodia.continual_checkpoint/2"
"""`checkpoint.pt`: state_dicts, the strategy's `state_dict`, and plain-data run state (no pickled objects)."""
EVAL_SEED = 10_000
SHARED_MODEL_FIELDS = ("net_arch", "token_dim", "fusion", "object_heads", "log_std_init", "obs_mode", "gamma")
"""Fields that shape the one model every phase trains; they come from the first task's config."""


@dataclass(frozen=True)
class ContinualConfig:
    """Budgets and hyper-parameters of a continual-learning run (everything else: the tasks' configs)."""

    tasks: tuple[str, ...] = ("reach", "push", "pick", "open")
    """the task sequence, trained in this order"""
    strategy: str = "naive"
    """naive | replay | ewc"""
    steps_per_task: int = 10_240
    """PPO environment steps per task (after its warm starts)"""
    eval_every: int = 5_120
    """evaluate every task after this many steps of a phase (and once before any training)"""
    eval_episodes: int = 20
    """episodes per task per evaluation"""
    bc_episodes: int = 200
    """expert episodes per task: its warm start, the replay memory and EWC's Fisher states"""
    replay_weight: float = 1.0
    ewc_weight: float = 1000.0
    n_envs: int = 1
    seed: int = 0
    encoder: str = "minilm"
    settings: tuple[str, ...] = ()
    """KEY=VALUE overrides applied to every task's config (as `embodia train --set`)"""


@dataclass
class RunState:
    """What a run has measured so far (saved after every phase, so runs resume by phase)."""

    evaluations: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    phases_done: int = 0
    phase_minutes: list[float] = field(default_factory=list)


def task_configs(config: ContinualConfig) -> dict[str, TrainConfig]:
    """Each task's training config (`experiments/configs/<task>.yaml`) with the run's budget and seed.

    The fields that shape the model are taken from the first task, so one network fits every phase.
    """
    settings = parse_assignments(list(config.settings))
    first = load_config(config.tasks[0], settings)
    shared = {name: getattr(first, name) for name in SHARED_MODEL_FIELDS}
    overrides = {"total_steps": config.steps_per_task, "n_envs": config.n_envs, "seed": config.seed,
                 "encoder": config.encoder, "bc_episodes": config.bc_episodes}
    return {task: load_config(task, {**settings, **shared, **overrides}) for task in config.tasks}


def embedding_table(tasks: tuple[str, ...], encoder: TextEncoder, source: str) -> EmbeddingTable:
    """Every sentence of every task in the sequence, embedded once."""
    texts = list(dict.fromkeys(text for task in tasks for text in all_texts(task)))
    return EmbeddingTable.build(encoder, texts, source=source)


def pooled_statistics(configs: dict[str, TrainConfig], table: EmbeddingTable) -> dict[str, np.ndarray]:
    """Input statistics of every task's random-action states together (the extractor's standardisation)."""
    from experiments.training.env import input_statistics

    per_task = [input_statistics(c, table) for c in configs.values()]
    return {key: per_task[0][key] if key == GOAL_KEY else np.concatenate([s[key] for s in per_task])
            for key in per_task[0]}


def success_rate(model: Any, env: Any, episodes: int, seed: int) -> float:
    """Deterministic-policy success over `episodes` seeded episodes."""
    wins = 0
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        wins += bool(info["is_success"])
    return wins / episodes


class _EvaluateAll(BaseCallback):
    """Evaluates every task each `every` steps of the current phase."""

    def __init__(self, evaluate: Callable[[int], None], every: int, offset: int) -> None:
        super().__init__()
        self._evaluate, self._every, self._offset = evaluate, every, offset
        self._next = every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._evaluate(self._offset + self._next)
            self._next += self._every
        return True


class _Progress(BaseCallback):
    def __init__(self, bar: Any) -> None:
        super().__init__()
        self._bar = bar

    def _on_step(self) -> bool:
        self._bar.update(self.training_env.num_envs)
        return True


class ContinualRun:
    """Trains one policy through `config.tasks` with one strategy; resumable phase by phase."""

    def __init__(self, config: ContinualConfig, encoder: TextEncoder, out: Path, progress: Any = None) -> None:
        from experiments.training.env import build_vec_env, make_env
        from experiments.training.train import new_model

        self.config, self.out, self.progress = config, out, progress
        self.configs = task_configs(config)
        torch.set_num_threads(self.configs[config.tasks[0]].torch_threads)
        torch.manual_seed(config.seed)
        self.table = embedding_table(config.tasks, encoder, config.encoder)
        self.statistics = pooled_statistics(self.configs, self.table)
        self.eval_envs = {task: make_env(c, self.table, skill_text_fraction=eval_skill_text_fraction(task))
                          for task, c in self.configs.items()}
        first = self.configs[config.tasks[0]]
        self._first_venv = build_vec_env(first, self.table)  # only to build the model; phases set their own
        self.model = new_model(first, self._first_venv, None, self.table, self.statistics)
        self.strategy = make_strategy(config.strategy, seed=config.seed, **self._strategy_kwargs())
        self._detach = attach(self.model.policy, self.strategy)
        self.state = RunState({task: [] for task in config.tasks})

    def _strategy_kwargs(self) -> dict[str, float]:
        if self.config.strategy == "replay":
            return {"weight": self.config.replay_weight}
        if self.config.strategy == "ewc":
            return {"weight": self.config.ewc_weight}
        return {}

    def evaluate(self, step: int) -> None:
        """Record the current policy's success rate on every task of the sequence at `step` (the forgetting curve)."""
        for index, (task, env) in enumerate(self.eval_envs.items()):
            rate = success_rate(self.model, env, self.config.eval_episodes, EVAL_SEED + 1000 * index)
            self.state.evaluations[task].append((step, rate))
        logger.info("%s seed %d step %d: %s", self.config.strategy, self.config.seed, step,
                    {t: v[-1][1] for t, v in self.state.evaluations.items()})

    def run(self) -> RunState:
        """Train the tasks in order, evaluating every task along the way, and return the run's state.

        Resumes after the last finished phase when a saved state exists, and saves after each phase so an interrupted
        run loses at most one phase.
        """
        self._load()
        for phase in range(self.state.phases_done, len(self.config.tasks)):
            started = time.perf_counter()
            if phase == 0:
                self.evaluate(0)  # every task before any training
            demos = self._train_phase(phase)
            self.strategy.end_task(self.model.policy, demos)
            self.state.phases_done = phase + 1
            self.state.phase_minutes.append(round((time.perf_counter() - started) / 60, 2))
            self._save()
        return self.state

    def _train_phase(self, phase: int) -> Demonstrations:
        """Warm starts, then PPO on task `phase`; returns the demonstrations the strategy keeps."""
        from experiments.training.bc import collect_expert_data, pretrain
        from experiments.training.env import build_vec_env
        from experiments.training.grounding import pretrain_grounding

        task = self.config.tasks[phase]
        config = self.configs[task]
        venv = build_vec_env(config, self.table)
        try:
            self.model.set_env(venv)
            if config.grounding_steps > 0:
                pretrain_grounding(self.model, config, self.table, self.statistics["objects"],
                                   config.grounding_steps)
            data = collect_expert_data(config, self.table, config.bc_episodes)
            pretrain(self.model, data, config, extra_loss=self.strategy.extra_loss)
            callbacks: list[BaseCallback] = [_EvaluateAll(self.evaluate, self.config.eval_every,
                                                          phase * self.config.steps_per_task)]
            if self.progress is not None:
                callbacks.append(_Progress(self.progress))
            self.model.learn(self.config.steps_per_task, callback=callbacks, reset_num_timesteps=True)
        finally:
            venv.close()
        return Demonstrations(task, data.observations, data.actions)

    def _save(self) -> None:
        atomic_write(self.out / "checkpoint.pt", lambda tmp: torch.save(
            {"format": CHECKPOINT_FORMAT, "policy": self.model.policy.state_dict(),
             "optimizer": self.model.policy.optimizer.state_dict(),
             "strategy": self.strategy.state_dict(), "state": asdict(self.state), "config": asdict(self.config),
             "task_configs": self._task_configs()}, tmp))

    def _task_configs(self) -> dict[str, dict[str, Any]]:
        return {task: dataclasses.asdict(c) for task, c in self.configs.items()}

    def _load(self) -> None:
        """Resume from `checkpoint.pt`: tensors, numbers and strings only (`torch.load(weights_only=True)`)."""
        path = self.out / "checkpoint.pt"
        if not path.exists():
            return
        try:
            saved = load_weights(path, str(path))
        except ValueError as error:
            raise InputError(f"cannot resume from {path}: {error}; remove it or use another --out") from error
        strategy = make_strategy(self.config.strategy, seed=self.config.seed, **self._strategy_kwargs())
        try:
            if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
                found = saved.get("format") if isinstance(saved, dict) else type(saved).__name__
                raise InputError(f"format {found!r}, expected {CHECKPOINT_FORMAT!r}")
            # A field added after the run was saved: the run used its default.
            if _deciding({**asdict(ContinualConfig()), **saved["config"]}) != _deciding(asdict(self.config)):
                raise InputError("it was made with a different configuration")
            # Runs saved before task configs were recorded carry none; they are taken as they are.
            if saved.get("task_configs", self._task_configs()) != self._task_configs():
                changed = sorted(t for t, c in self._task_configs().items() if saved["task_configs"].get(t) != c)
                raise InputError(f"the config files of {', '.join(changed)} changed since it was saved")
            strategy.load_state_dict(saved["strategy"])
            self.model.policy.load_state_dict(saved["policy"])
            self.model.policy.optimizer.load_state_dict(saved["optimizer"])
            state = RunState(**saved["state"])
        except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as error:
            raise InputError(f"cannot resume from {path}: {error}; remove it or use another --out") from error
        self._detach()
        self.strategy = strategy
        self._detach = attach(self.model.policy, self.strategy)
        self.state = state

    def close(self) -> None:
        """Close the training and evaluation envs."""
        self._first_venv.close()
        for env in self.eval_envs.values():
            env.close()


def _deciding(config: dict[str, Any]) -> dict[str, Any]:
    """The fields that change what a run computes, so equivalent runs share one cache key.

    A strategy's weight matters only to that strategy, so from-scratch references (naive) are shared by runs that
    differ only in, say, the EWC weight.
    """
    unused = {"replay": "ewc_weight", "ewc": "replay_weight"}.get(config["strategy"])
    dropped = {unused} if unused else {"ewc_weight", "replay_weight"}
    return {k: v for k, v in config.items() if k not in dropped}


def curves_of(state: RunState) -> dict[str, Curve]:
    """Per-task success curves (steps, rates) of a run, the form the continual report plots and compares."""
    return {task: Curve(tuple(s for s, _ in rows), tuple(p for _, p in rows))
            for task, rows in state.evaluations.items()}


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold a lock on `folder`, so parallel invocations sharing an --out train each reference once."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_reference(task: str, config: ContinualConfig, encoder: TextEncoder, out: Path, progress: Any = None
                  ) -> Curve:
    """Task `task` alone on a fresh model with the same phase budget (the baseline of forward transfer)."""
    single = replace(config, tasks=(task,), strategy="naive")
    with _exclusive(out):
        run = ContinualRun(single, encoder, out, progress)
        try:
            state = run.run()
        finally:
            run.close()
    return curves_of(state)[task]
