"""Actor workers: each env worker holds a copy of the policy and collects its part of a rollout on its own.

Why: in SB3's collector every env steps in lock-step with the learner. On a 2-core machine the learner's
share of each vector step (a policy forward and the rollout-buffer bookkeeping) leaves the workers idle
about a quarter of the time, and every reset (about 16 ms) of one env stalls the others. Here
(`vec_env: actors`) the learner sends each worker the rollout's policy weights once; the worker then acts
with them, steps its env and streams (action, value, log-prob, transition) records back, running ahead of
the learner by as many records as its pipe holds. The learner files the records into the rollout buffer
step by step, so callbacks, GAE and the update see what SB3's collector would give them: one policy for
the whole rollout, the same data layout.

What differs from lock-step collection: each worker samples its actions from its own torch generator,
seeded from (run seed, step count, worker rank) at each rollout start, so runs are reproducible and
resumable at checkpoints, independent of timing, but not bit-identical to a `split` or `subproc` run.
"""

from __future__ import annotations

import io
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnvObs

from agent.policy_io import architecture, build_policy
from experiments.common.errors import InputError
from experiments.training.vec import CheckedSubprocVecEnv, _IdleWorkPipe, find_layer, run_worker, vec_env_step

RECORDS_PER_MESSAGE = 16
"""Steps a worker sends per message: fewer wake-ups of the learner (3 processes share 2 cores)."""


@dataclass
class ActorRecords:
    """The workers' policy outputs for one vector step (one row per env, in env order)."""

    actions: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray


def rollout_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed a worker samples its actions from during the rollout that starts at `step`."""
    return int(np.random.SeedSequence([seed, step, rank, 0xAC7]).generate_state(1)[0])


def _policy_step(policy: Any, obs: dict[str, np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray, np.ndarray]:
    """(raw actions, actions clipped to the action space, values, log-probs) for one env's observation."""
    with torch.no_grad():
        tensor, _ = policy.obs_to_tensor(obs)
        actions, values, log_probs = policy(tensor)
    actions = actions.cpu().numpy()
    return actions, clip_actions(policy, actions), values.cpu().numpy().reshape(-1), log_probs.cpu().numpy()


def clip_actions(policy: Any, actions: np.ndarray) -> np.ndarray:
    """What SB3's collector sends to the env for a Box action space."""
    if not isinstance(policy.action_space, gym.spaces.Box):
        return actions
    if policy.squash_output:
        return policy.unscale_action(actions)
    return np.clip(actions, policy.action_space.low, policy.action_space.high)


class _ActorPipe(_IdleWorkPipe):
    """A worker's pipe end that runs "rollout" commands itself; SB3's worker loop sees every other command.

    It learns the env's current observation from the answers SB3's loop sends to "step" and "reset".
    """

    def __init__(self, pipe: Any, spare_worlds: int) -> None:
        super().__init__(pipe, spare_worlds)
        self.policy: Any = None
        self.obs: Any = None
        self._last_command: str | None = None

    def recv(self) -> Any:
        while True:
            cmd, data = super().recv()
            if cmd != "rollout":
                self._last_command = cmd
                return cmd, data
            self._rollout(*data)

    def send(self, message: Any) -> None:
        if self._last_command in ("step", "reset"):
            self.obs = message[0]
        super().send(message)

    def _rollout(self, blob: tuple[str, bytes, bytes], n_steps: int, seed: int) -> None:
        """Act, step and stream `n_steps` records in chunks of `RECORDS_PER_MESSAGE`."""
        if self.obs is None:
            raise RuntimeError("actor worker asked for a rollout before its env was reset")
        self.policy = _load_policy(self.policy, blob)
        torch.manual_seed(seed)
        chunk: list[tuple] = []
        for step in range(n_steps):
            actions, clipped, values, log_probs = _policy_step(self.policy, self.obs)
            self.obs, reward, done, info, reset_info = vec_env_step(self.env, clipped[0])
            chunk.append((actions[0], values[0], log_probs[0], self.obs, reward, done, info, reset_info))
            if len(chunk) == RECORDS_PER_MESSAGE or step == n_steps - 1:
                self.pipe.send(chunk)
                chunk = []


def _actor_worker(pipe: Any, parent_pipe: Any, env_fn_wrapper: CloudpickleWrapper, spare_worlds: int) -> None:
    """SB3's worker loop, plus rollouts collected with the worker's own copy of the policy."""
    torch.set_num_threads(1)
    run_worker(_ActorPipe(pipe, spare_worlds), parent_pipe, env_fn_wrapper)


def _load_policy(policy: Any, blob: tuple[str, bytes, bytes]) -> Any:
    """The worker's policy: built from its architecture (JSON) the first time, then given the weights each rollout.

    Nothing is unpickled: the architecture is the shipped policy files' JSON (`agent.policy_io`) and the weights a
    `weights_only` state dict, so a worker runs no code it is sent.
    """
    kind, arch, weights = blob
    if kind == "policy":
        policy = build_policy(json.loads(arch))
    elif policy is None:
        raise RuntimeError("actor worker got weights before a policy")
    policy.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
    policy.set_training_mode(False)
    return policy


class ActorWorkers(CheckedSubprocVecEnv):
    """`CheckedSubprocVecEnv` whose workers can collect a rollout with their own policy copy (`vec_env: actors`).

    Used as a plain VecEnv (`step`, `reset`) it behaves exactly like `CheckedSubprocVecEnv`; `ActorPPO`
    collects with `begin_rollout` and `step_actors`.
    """

    worker_loop = staticmethod(_actor_worker)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._outstanding: list[int] = []
        self._received: list[deque[tuple]] = []
        self._has_policy: list[bool] = []
        super().__init__(*args, **kwargs)
        self._outstanding = [0] * len(self.remotes)
        """Rollout steps each worker still owes (received or not)."""
        self._received: list[deque[tuple]] = [deque() for _ in self.remotes]
        """Records received but not yet handed out, per worker."""
        self._has_policy = [False] * len(self.remotes)

    def begin_rollout(self, policy: Any, n_steps: int, seed: int, step: int) -> None:
        """Start every worker on `n_steps` steps with `policy`'s current weights.

        Worker k samples its actions from `rollout_seed(seed, step, k)`.
        """
        self.drain()
        seeds = [rollout_seed(seed, step, self.first_rank + rank) for rank in range(len(self.remotes))]
        weights = io.BytesIO()
        torch.save(policy.state_dict(), weights)
        arch: bytes | None = None
        for rank, seed in enumerate(seeds):
            if self._has_policy[rank]:
                blob = ("weights", b"", weights.getvalue())
            else:
                arch = arch if arch is not None else json.dumps(architecture(policy)).encode()
                blob = ("policy", arch, weights.getvalue())
            self._send(rank, ("rollout", (blob, n_steps, seed)), "rollout")
            self._has_policy[rank] = True
            self._outstanding[rank] = n_steps

    def step_actors(self) -> tuple[VecEnvObs, np.ndarray, np.ndarray, tuple, ActorRecords]:
        """Collect the workers' next rollout step.

        Returns SB3's (obs, rewards, dones, infos) plus the actions, values and log-probs the workers' policies
        produced.
        """
        records = []
        for rank in range(len(self.remotes)):
            if self._outstanding[rank] <= 0:
                raise RuntimeError(f"actor worker {self.first_rank + rank} has no rollout step outstanding; "
                                   f"call begin_rollout first")
            if not self._received[rank]:
                self._received[rank].extend(self._receive(rank, "rollout"))
            records.append(self._received[rank].popleft())
            self._outstanding[rank] -= 1
        actions, values, log_probs, obs, rewards, dones, infos, reset_infos = zip(*records, strict=True)
        self.reset_infos = list(reset_infos)
        return (_stack(obs, self.observation_space), np.array(rewards, dtype=np.float64), np.array(dones), infos,
                ActorRecords(np.stack(actions), np.array(values, dtype=np.float32),
                             np.array(log_probs, dtype=np.float32)))

    def drain(self) -> None:
        """Receive what is left of an abandoned rollout, so the next answer is the next command's."""
        for rank, left in enumerate(self._outstanding):
            left -= len(self._received[rank])
            while left > 0:
                left -= len(self._receive(rank, "rollout"))
            self._received[rank].clear()
            self._outstanding[rank] = 0

    def step_async(self, actions: np.ndarray) -> None:
        """Step as a plain VecEnv, after draining any abandoned rollout so the workers' answers stay in order."""
        self.drain()
        super().step_async(actions)

    def reset(self) -> VecEnvObs:
        """Reset every env, after draining any abandoned rollout so the workers' answers stay in order."""
        self.drain()
        return super().reset()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """Read an env attribute from the workers, after draining any abandoned rollout."""
        self.drain()
        return super().get_attr(attr_name, indices)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an env attribute in the workers, after draining any abandoned rollout."""
        self.drain()
        super().set_attr(attr_name, value, indices)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        """Call an env method in the workers, after draining any abandoned rollout."""
        self.drain()
        return super().env_method(method_name, *method_args, indices=indices, **method_kwargs)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        """Whether the workers' envs are wrapped in `wrapper_class`, after draining any abandoned rollout."""
        self.drain()
        return super().env_is_wrapped(wrapper_class, indices)

    def close(self) -> None:
        """Stop the workers; a worker that died mid-rollout is not drained but terminated by the close below."""
        if not self.closed:
            try:
                self.drain()
            except Exception:  # a dead worker: close below terminates it
                pass
        super().close()


def _stack(observations: tuple, space: gym.spaces.Space) -> VecEnvObs:
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([o[key] for o in observations]) for key in space.spaces}
    return np.stack(observations)


class ActorPPO(PPO):
    """SB3 PPO whose collector lets `ActorWorkers` act for their own envs (any other env: SB3's)."""

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        """Fill `rollout_buffer` as SB3's PPO does, but with the actions the workers' own policies sampled.

        An env that is not `ActorWorkers` is collected by SB3's own loop. Raises ValueError when the workers sit under
        another VecEnv wrapper (normalisation, image transposition), since the workers would see observations the
        learner does not; returns False when a callback asks training to stop, as SB3 does.
        """
        actors = find_layer(env, ActorWorkers)
        if actors is None:
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        if actors is not env:
            raise ValueError(f"vec_env 'actors' must be the model's env itself, got it wrapped in "
                             f"{type(env).__name__} (reward normalisation or image transposition would have "
                             f"to happen in the workers too); use vec_env 'split'")
        if self.use_sde:
            raise InputError("vec_env 'actors' does not support gSDE exploration")
        assert self._last_obs is not None, "no previous observation was provided"
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        actors.begin_rollout(self.policy, n_rollout_steps, self.seed or 0, self.num_timesteps)
        n_steps = 0
        new_obs, dones = self._last_obs, self._last_episode_starts
        while n_steps < n_rollout_steps:
            new_obs, rewards, dones, infos, records = actors.step_actors()
            actions = records.actions
            if isinstance(self.action_space, gym.spaces.Discrete):
                actions = actions.reshape(-1, 1)
            values = torch.as_tensor(records.values).reshape(-1, 1)
            log_probs = torch.as_tensor(records.log_probs)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                actors.drain()
                return False
            self._update_info_buffer(infos, dones)
            n_steps += 1
            for idx, done in enumerate(dones):  # time-limit bootstrapping, as SB3 does it
                if done and infos[idx].get("terminal_observation") is not None \
                        and infos[idx].get("TimeLimit.truncated", False):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with torch.no_grad():
                        terminal_value = self.policy.predict_values(terminal_obs)[0]
                    rewards[idx] += self.gamma * terminal_value
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones
        with torch.no_grad():
            values = self.policy.predict_values(obs_as_tensor(new_obs, self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True
