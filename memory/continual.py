"""Continual learning for one SB3 policy trained on a sequence of tasks: naive, replay, EWC.

The strategies act through the policy's optimizer: before every optimizer step (PPO's or behaviour
cloning's) the active strategy adds the gradient of its own loss (a behaviour-cloning loss on stored
demonstrations of earlier tasks for replay, the Fisher-weighted distance to earlier optima for EWC).
That keeps stock stable-baselines3 PPO untouched while the extra term is optimised jointly with it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from memory.errors import InputError

logger = logging.getLogger(__name__)

STRATEGIES = ("naive", "replay", "ewc")
Observation = dict[str, np.ndarray]


@dataclass
class Demonstrations:
    """(observation, action) pairs of one task: stacked dict observations and actions."""

    task: str
    observations: dict[str, np.ndarray]
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)

    def sample(self, rng: np.random.Generator, size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """A random minibatch (with replacement) of observations and actions."""
        index = rng.integers(0, len(self), size=min(size, len(self)))
        return {k: v[index] for k, v in self.observations.items()}, self.actions[index]


def stack_demonstrations(task: str, pairs: Sequence[tuple[Observation, np.ndarray]]) -> Demonstrations:
    """Stack (observation, action) pairs into one task's `Demonstrations`; ValueError when there are none."""
    if not pairs:
        raise InputError(f"no demonstrations collected for task {task!r}")
    keys = pairs[0][0].keys()
    observations = {k: np.stack([obs[k] for obs, _ in pairs]) for k in keys}
    return Demonstrations(task, observations, np.stack([a for _, a in pairs]).astype(np.float32))


def behaviour_cloning_loss(policy: ActorCriticPolicy, observations: dict[str, np.ndarray], actions: np.ndarray
                           ) -> torch.Tensor:
    """Negative log-likelihood of expert actions under the policy (clipped to the action box first)."""
    obs_tensor, _ = policy.obs_to_tensor(observations)
    target = torch.as_tensor(np.clip(actions, -1.0, 1.0), device=policy.device)
    distribution = policy.get_distribution(obs_tensor)
    return -distribution.log_prob(target).mean()


def behaviour_clone(policy: ActorCriticPolicy, demos: Demonstrations, epochs: int, batch_size: int,
                    rng: np.random.Generator, min_steps: int = 1000) -> float:
    """Pre-train the actor on demonstrations (a warm start); returns the last minibatch loss.

    Runs `epochs` passes over the data but at least `min_steps` gradient steps: a few hundred expert
    transitions would otherwise give only a handful of updates.
    """
    loss_value = float("nan")
    steps = max(min_steps, epochs * len(demos) // batch_size)
    for _ in range(steps):
        observations, actions = demos.sample(rng, batch_size)
        loss = behaviour_cloning_loss(policy, observations, actions)
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        policy.optimizer.step()
        loss_value = float(loss.detach())
    return loss_value


class Strategy:
    """Base class: no extra loss (naive fine-tuning)."""

    name = "naive"

    def extra_loss(self, policy: ActorCriticPolicy) -> torch.Tensor | None:
        """A term added to the PPO loss at every update, or None to add nothing (naive fine-tuning)."""
        return None

    def end_task(self, policy: ActorCriticPolicy, demos: Demonstrations) -> None:
        """Called when training on a task finishes, with demonstrations of that task."""

    def state_dict(self) -> dict[str, Any]:
        """What the strategy carries between tasks, as tensors, numbers and strings only.

        A checkpoint stores this instead of the object, so it loads with `torch.load(weights_only=True)`;
        the settings (weight, batch size, seed) come from the run's config when it is rebuilt.
        """
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict` returned (for a strategy built with the same settings).

        Raises:
            ValueError: the state belongs to another strategy or is malformed.
        """
        _check_state(self.name, state, ())


def _check_state(name: str, state: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(state, dict) or state.get("name") != name:
        found = state.get("name") if isinstance(state, dict) else type(state).__name__
        raise InputError(f"saved strategy state is for {found!r}, expected {name!r}")
    missing = [key for key in keys if key not in state]
    if missing:
        raise InputError(f"saved {name} strategy state lacks {missing}")


def _generator(state: Any) -> np.random.Generator:
    """A numpy Generator in the saved bit-generator `state` (a dict of numbers)."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise InputError(f"saved random state is not a PCG64 state: {state!r:.80}")
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def _tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}


def _arrays(tensors: Any) -> dict[str, np.ndarray]:
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise InputError("saved demonstrations are not a mapping of tensors")
    return {str(key): value.numpy() for key, value in tensors.items()}


@dataclass
class Replay(Strategy):
    """Behaviour cloning on stored demonstrations of earlier tasks, mixed into every update."""

    weight: float = 1.0
    batch_size: int = 64
    seed: int = 0
    memories: list[Demonstrations] = field(default_factory=list)
    name: str = "replay"

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def extra_loss(self, policy: ActorCriticPolicy) -> torch.Tensor | None:
        """Behaviour cloning on a batch split evenly over earlier tasks' demonstrations; None before any task ended."""
        if not self.memories:
            return None
        losses = []
        per_task = max(1, self.batch_size // len(self.memories))
        for demos in self.memories:
            observations, actions = demos.sample(self._rng, per_task)
            losses.append(behaviour_cloning_loss(policy, observations, actions))
        return self.weight * torch.stack(losses).mean()

    def end_task(self, policy: ActorCriticPolicy, demos: Demonstrations) -> None:
        """Keep the finished task's demonstrations to replay during later tasks."""
        self.memories.append(demos)

    def state_dict(self) -> dict[str, Any]:
        """The stored demonstrations (as tensors) and the sampling generator's state."""
        return {"name": self.name, "rng": self._rng.bit_generator.state,
                "memories": [{"task": d.task, "observations": _tensors(d.observations),
                              "actions": torch.from_numpy(np.ascontiguousarray(d.actions))} for d in self.memories]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back the demonstrations and generator state of `state_dict`."""
        _check_state(self.name, state, ("rng", "memories"))
        memories = []
        for item in state["memories"]:
            if not isinstance(item.get("actions"), torch.Tensor):
                raise InputError("saved demonstrations hold no action tensor")
            memories.append(Demonstrations(str(item["task"]), _arrays(item["observations"]), item["actions"].numpy()))
        self._rng, self.memories = _generator(state["rng"]), memories


@dataclass
class EWC(Strategy):
    """Elastic weight consolidation: lambda/2 * sum_i F_i (theta_i - theta*_i)^2 over earlier tasks.

    The diagonal Fisher of the actor's log-likelihood is estimated on the task's demonstration states
    with actions sampled from the policy itself (the empirical Fisher of the model, not of the data).
    """

    weight: float = 100.0
    fisher_samples: int = 256
    seed: int = 0
    anchors: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = field(default_factory=list)
    name: str = "ewc"

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def extra_loss(self, policy: ActorCriticPolicy) -> torch.Tensor | None:
        """The EWC penalty lambda/2 * sum F_i (theta_i - theta*_i)^2 over earlier tasks; None until one has ended."""
        if not self.anchors:
            return None
        penalty = torch.zeros((), device=policy.device)
        parameters = dict(policy.named_parameters())
        for fisher, optimum in self.anchors:
            for name, weight in fisher.items():
                penalty = penalty + (weight * (parameters[name] - optimum[name]) ** 2).sum()
        return 0.5 * self.weight * penalty

    def end_task(self, policy: ActorCriticPolicy, demos: Demonstrations) -> None:
        """Anchor the finished task: its diagonal Fisher, from the demonstrations, and a copy of the parameters."""
        fisher = diagonal_fisher(policy, demos, self.fisher_samples, self._rng)
        optimum = {name: p.detach().clone() for name, p in policy.named_parameters()}
        self.anchors.append((fisher, optimum))

    def state_dict(self) -> dict[str, Any]:
        """The Fisher weights and optima of earlier tasks, and the sampling generator's state."""
        return {"name": self.name, "rng": self._rng.bit_generator.state,
                "anchors": [{"fisher": fisher, "optimum": optimum} for fisher, optimum in self.anchors]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back the anchors and generator state of `state_dict`."""
        _check_state(self.name, state, ("rng", "anchors"))
        anchors = []
        for item in state["anchors"]:
            fisher, optimum = item["fisher"], item["optimum"]
            if not all(isinstance(t, torch.Tensor) for t in [*fisher.values(), *optimum.values()]):
                raise InputError("saved EWC anchors hold something other than tensors")
            anchors.append((dict(fisher), dict(optimum)))
        self._rng, self.anchors = _generator(state["rng"]), anchors


def diagonal_fisher(policy: ActorCriticPolicy, demos: Demonstrations, samples: int, rng: np.random.Generator
                    ) -> dict[str, torch.Tensor]:
    """Mean squared gradient of log pi(a|s), a ~ pi(.|s), over demonstration states, per parameter."""
    observations, actions = demos.sample(rng, samples)
    obs_tensor, _ = policy.obs_to_tensor(observations)
    totals = {name: torch.zeros_like(p) for name, p in policy.named_parameters() if p.requires_grad}
    count = len(actions)
    for i in range(count):
        if isinstance(obs_tensor, dict):
            single = {k: v[i : i + 1] for k, v in obs_tensor.items()}
        else:
            single = obs_tensor[i : i + 1]
        distribution = policy.get_distribution(single)
        action = distribution.sample().detach()
        policy.zero_grad()
        distribution.log_prob(action).sum().backward()
        for name, p in policy.named_parameters():
            if p.grad is not None and name in totals:
                totals[name] += p.grad.detach() ** 2
    policy.zero_grad()
    return {name: total / count for name, total in totals.items()}


def make_strategy(name: str, seed: int = 0, **kwargs: float) -> Strategy:
    """A strategy by name: naive, replay or ewc."""
    if name == "naive":
        return Strategy()
    if name == "replay":
        return Replay(seed=seed, **kwargs)
    if name == "ewc":
        return EWC(seed=seed, **kwargs)
    raise InputError(f"unknown continual-learning strategy {name!r}; expected one of: {', '.join(STRATEGIES)}")


def attach(policy: ActorCriticPolicy, strategy: Strategy) -> Callable[[], None]:
    """Make every `policy.optimizer.step()` include the strategy's loss; returns a function that detaches it.

    The extra gradient is added after the caller's backward pass (and its gradient clipping), so the
    update is the step of (task loss + strategy loss).
    """
    optimizer = policy.optimizer
    original = optimizer.step

    def step(*args: object, **kwargs: object) -> object:
        extra = strategy.extra_loss(policy)
        if extra is not None:
            extra.backward()
        return original(*args, **kwargs)

    optimizer.step = step  # type: ignore[method-assign]

    def detach() -> None:
        optimizer.step = original  # type: ignore[method-assign]

    return detach


def snapshot(policy: ActorCriticPolicy) -> ActorCriticPolicy:
    """A frozen copy of the policy (e.g. the reference before a task)."""
    clone = copy.deepcopy(policy)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone
