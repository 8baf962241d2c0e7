"""What happens between PPO rollouts: evaluation, checkpoints, metrics and the seeded env reset.

Exact resumption rests on one rule: at every checkpoint boundary (every `checkpoint_every` steps, and at
step 0) the session first evaluates and saves, then re-seeds and resets all training envs with seeds
derived from (run seed, step). An uninterrupted run and a run killed and resumed from that checkpoint
therefore continue from the same env states, the same RNG states, the same weights and optimizer: the
resumed run reproduces the uninterrupted one bit for bit (tests/test_train_resume.py checks this after
a real SIGKILL).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from experiments.common.jsonio import write_json
from experiments.training.checkpoint import capture_rng, prune_checkpoints, restore_rng, save_checkpoint
from experiments.training.config import TrainConfig
from experiments.training.env import find_vec_normalize
from experiments.training.policy_eval import evaluate, model_predictor, summarize

logger = logging.getLogger(__name__)


class RunPaths:
    """The files of one run folder (`runs/<name>/`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.checkpoints = self.root / "checkpoints"
        self.tb = self.root / "tb"
        self.metrics = self.root / "metrics.json"
        self.policy = self.root / "policy.safetensors"
        self.card = self.root / "policy.json"
        self.report = self.root / "report.md"
        self.plots = self.root / "plots"
        self.videos = self.root / "videos"
        self.embeddings = self.root / "embeddings.npz"
        self.workers = self.root / "workers"
        self.eval = self.root / "eval.json"
        self.commands = self.root / "command.txt"


@dataclass
class SessionState:
    """Run-level bookkeeping that travels inside checkpoints."""

    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    bc: dict[str, Any] | None = None
    grounding: dict[str, Any] | None = None


def boundary_seed(seed: int, step: int) -> int:
    """The seed of the env reset at a checkpoint boundary (envs get seed, seed+1, ...)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0] % (2**31 - 1024))


class TrainingSession:
    """Owns the model, envs and run folder for the duration of `model.learn`.

    Args:
        config: the run's config.
        paths: the run folder.
        model: the PPO model (fresh or loaded).
        eval_env: a single, in-process env for evaluations.
        state: bookkeeping (restored from a checkpoint when resuming).
        resume: the checkpoint's saved state when resuming (RNG states are restored at its step).
    """

    def __init__(self, config: TrainConfig, paths: RunPaths, model: Any, eval_env: Any, state: SessionState,
                 resume: tuple[int, dict[str, Any]] | None = None) -> None:
        self.config, self.paths, self.model, self.eval_env, self.state = config, paths, model, eval_env, state
        self._resume = resume
        self._started = time.perf_counter()
        self._elapsed_at_start = state.elapsed_s
        self.checkpoint_every = config.rounded(config.checkpoint_every)
        self.eval_every = config.rounded(config.eval_every)
        self.last_checkpoint = resume[0] if resume else -1

    @property
    def elapsed_s(self) -> float:
        """Wall-clock seconds of training, including those of earlier sessions of a resumed run."""
        return self._elapsed_at_start + time.perf_counter() - self._started

    def at_boundary(self, step: int) -> None:
        """Called before each rollout: resume, evaluate, checkpoint and re-seed as due."""
        if self._resume is not None and step == self._resume[0]:
            self._restore(self._resume[1])
            self._resume = None
        else:
            if step > 0 and step % self.eval_every == 0:
                self.evaluate(step)
            if step > 0 and step % self.checkpoint_every == 0:
                self.checkpoint(step)
        if step % self.checkpoint_every == 0:
            self._reseed(step)

    def finish(self) -> None:
        """After the last rollout: final evaluation and checkpoint (unless they exist already)."""
        step = int(self.model.num_timesteps)
        if not self.state.history or self.state.history[-1]["step"] != step:
            self.evaluate(step)
        if self.last_checkpoint != step:
            self.checkpoint(step)

    def evaluate(self, step: int) -> dict[str, Any]:
        """Evaluate the current policy on the eval env and record it at `step`.

        The result (eval success and its interval, plus the recent rollout success and reward) is appended to the
        history, logged to TensorBoard, written to metrics.json and returned.
        """
        outcomes = evaluate(self.eval_env, model_predictor(self.model), self.config.eval_episodes)
        summary = summarize(outcomes)
        successes = list(self.model.ep_success_buffer or [])
        rewards = [info["r"] for info in (self.model.ep_info_buffer or [])]
        entry = {"step": step, "elapsed_s": round(self.elapsed_s, 2), "eval_success": summary["rate"],
                 "eval_ci95": summary["ci95"], "eval_episodes": summary["episodes"],
                 "eval_mean_steps": summary["mean_steps"],
                 "rollout_success": float(np.mean(successes)) if successes else None,
                 "rollout_reward": float(np.mean(rewards)) if rewards else None}
        self.state.history.append(entry)
        self.model.logger.record("eval/success_rate", summary["rate"])
        self.model.logger.record("eval/mean_steps", summary["mean_steps"])
        self.write_metrics()
        logger.info("step %d: eval success %.2f", step, summary["rate"])
        return entry

    def checkpoint(self, step: int) -> Path:
        """Save a resumable checkpoint at `step` (model, normalisation, RNG and history) and return its path.

        Older checkpoints beyond `keep_checkpoints` are pruned, and metrics.json is rewritten to match.
        """
        saved = {"rng": capture_rng(), "ep_info_buffer": list(self.model.ep_info_buffer or []),
                 "ep_success_buffer": list(self.model.ep_success_buffer or []), "history": self.state.history,
                 "elapsed_s": self.elapsed_s, "bc": self.state.bc, "grounding": self.state.grounding}
        path = save_checkpoint(self.paths.checkpoints, step, self.config, self.model,
                               find_vec_normalize(self.model.get_env()), saved)
        prune_checkpoints(self.paths.checkpoints, self.config.keep_checkpoints)
        self.last_checkpoint = step
        self.write_metrics()
        return path

    def _restore(self, saved: dict[str, Any]) -> None:
        restore_rng(saved["rng"])
        window = self.model._stats_window_size
        self.model.ep_info_buffer = deque(saved["ep_info_buffer"], maxlen=window)
        self.model.ep_success_buffer = deque(saved["ep_success_buffer"], maxlen=window)

    def _reseed(self, step: int) -> None:
        env = self.model.get_env()
        env.seed(boundary_seed(self.config.seed, step))
        self.model._last_obs = env.reset()
        self.model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)

    def write_metrics(self, extra: dict[str, Any] | None = None) -> None:
        """Rewrite the run's metrics.json (history, elapsed time, BC and grounding results), plus `extra` fields."""
        data = {"task": self.config.task, "obs_mode": self.config.obs_mode, "seed": self.config.seed,
                "bc_warmstart": self.config.bc_warmstart, "requested_steps": self.config.total_steps,
                "steps": int(self.model.num_timesteps),
                "elapsed_s": round(self.elapsed_s, 2), "history": self.state.history, "bc": self.state.bc,
                "grounding": self.state.grounding,
                **(extra or {})}
        write_json(self.paths.metrics, data, indent=1)


class BoundaryCallback(BaseCallback):
    """Hands each rollout start to the session."""

    def __init__(self, session: TrainingSession) -> None:
        super().__init__()
        self.session = session

    def _on_rollout_start(self) -> None:
        self.session.at_boundary(int(self.model.num_timesteps))

    def _on_step(self) -> bool:
        return True


class UpdateThreadsCallback(BaseCallback):
    """`update` torch threads while PPO updates, `collect` threads while it collects rollouts.

    SB3 calls `_on_rollout_end` just before `train()` and `_on_rollout_start` just after it.
    """

    def __init__(self, collect: int, update: int) -> None:
        super().__init__()
        self.collect, self.update = collect, update

    def _on_rollout_end(self) -> None:
        torch.set_num_threads(self.update)

    def _on_rollout_start(self) -> None:
        torch.set_num_threads(self.collect)

    def _on_training_end(self) -> None:
        torch.set_num_threads(self.collect)

    def _on_step(self) -> bool:
        return True


class ProgressCallback(BaseCallback):
    """A tqdm bar over environment steps with the recent success rate and the last evaluation."""

    def __init__(self, session: TrainingSession, total: int, enabled: bool = True) -> None:
        super().__init__()
        self.session, self.total, self.enabled = session, total, enabled
        self.bar: Any = None
        self._shown = 0

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=int(self.model.num_timesteps), unit="step", file=sys.stderr,
                        desc=f"train {self.session.config.task}", disable=not self.enabled, mininterval=1.0,
                        dynamic_ncols=True)
        self._shown = int(self.model.num_timesteps)

    def _on_step(self) -> bool:
        now = int(self.model.num_timesteps)
        self.bar.update(now - self._shown)
        self._shown = now
        return True

    def _on_rollout_end(self) -> None:
        successes = list(self.model.ep_success_buffer or [])
        history = self.session.state.history
        postfix = {"success": f"{np.mean(successes):.2f}" if successes else "-"}
        if history:
            postfix["eval"] = f"{history[-1]['eval_success']:.2f}"
        self.bar.set_postfix(postfix, refresh=False)

    def _on_training_end(self) -> None:
        self.bar.close()
