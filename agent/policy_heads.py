"""A binned action head: per action dimension, a categorical over evenly spaced values (RT-1 style).

Why: the place students regress their labeller's action with a Gaussian, whose mean is the average of the labels
seen near a state. Where the label jumps (which side of a block to put a mug down on, which free table spot is
nearest to a block carried over the bowl) that average is neither side: traced, the shipped state place_on
hovered over its goal or let go on what stood between the two sides (9 of its 13 failures from the card's chain
starts). A categorical per dimension keeps both sides as separate bins and its mode picks one.

The label is spread over the two bins around it (a two-hot target, as in MuZero's value head), so the loss is
a cross-entropy that still sees where between two bin centres the label lies, and the mode reads the argmax bin
refined by its two neighbours' probabilities: a continuous action, not a bin centre. Sampled actions are bin
centres, whose two-hot log-probability is the categorical's own, so PPO's ratios stay exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from torch import nn

from agent.errors import InputError

MIN_BINS = 3


class BinnedDistribution(Distribution):
    """Independent categoricals over `bins` values in [-1, 1], one per action dimension."""

    def __init__(self, action_dim: int, bins: int) -> None:
        super().__init__()
        if bins < MIN_BINS:
            raise InputError(f"a binned action head needs at least {MIN_BINS} bins per dimension, got {bins}")
        self.action_dim = action_dim
        self.bins = bins
        self.logits: torch.Tensor | None = None

    def centres(self, like: torch.Tensor) -> torch.Tensor:
        """The bins' values, on `like`'s device and dtype."""
        return torch.linspace(-1.0, 1.0, self.bins, device=like.device, dtype=like.dtype)

    def proba_distribution_net(self, latent_dim: int) -> nn.Module:
        """The layer giving the logits of every dimension's bins, flattened."""
        return nn.Linear(latent_dim, self.action_dim * self.bins)

    def proba_distribution(self, action_logits: torch.Tensor) -> BinnedDistribution:
        """Take a batch of flattened logits (batch, dim * bins)."""
        self.logits = action_logits.reshape(-1, self.action_dim, self.bins)
        return self

    def _log_probs(self) -> torch.Tensor:
        if self.logits is None:
            raise RuntimeError("call proba_distribution(logits) first")
        return torch.log_softmax(self.logits, dim=-1)

    def two_hot(self, actions: torch.Tensor) -> torch.Tensor:
        """(batch, dim, bins) weights: each action split between the two bins around it (clipped to [-1, 1])."""
        position = (actions.clamp(-1.0, 1.0) + 1.0) / 2.0 * (self.bins - 1)
        lower = position.floor().clamp(max=self.bins - 2)
        upper_weight = (position - lower).unsqueeze(-1)
        lower_index = lower.long().unsqueeze(-1)
        weights = torch.zeros(*actions.shape, self.bins, device=actions.device, dtype=actions.dtype)
        weights.scatter_(-1, lower_index, 1.0 - upper_weight)
        weights.scatter_add_(-1, lower_index + 1, upper_weight)
        return weights

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Minus the two-hot cross-entropy, summed over dimensions (the categorical's log-probability at a centre)."""
        actions = actions.reshape(-1, self.action_dim)
        return (self.two_hot(actions) * self._log_probs()).sum(dim=(-1, -2))

    def entropy(self) -> torch.Tensor:
        """Sum of the dimensions' categorical entropies."""
        log_probs = self._log_probs()
        return -(log_probs.exp() * log_probs).sum(dim=(-1, -2))

    def sample(self) -> torch.Tensor:
        """A bin centre per dimension, drawn from its categorical."""
        log_probs = self._log_probs()
        index = torch.distributions.Categorical(logits=log_probs).sample()
        return self.centres(log_probs)[index]

    def mode(self) -> torch.Tensor:
        """The most probable bin, refined by its neighbours: their probability-weighted mean value."""
        probs = self._log_probs().exp()
        best = probs.argmax(dim=-1, keepdim=True)
        window = torch.cat([best - 1, best, best + 1], dim=-1)
        inside = (window >= 0) & (window < self.bins)
        window = window.clamp(0, self.bins - 1)
        weights = probs.gather(-1, window) * inside
        values = self.centres(probs)[window]
        return (weights * values).sum(-1) / weights.sum(-1)

    def actions_from_params(self, action_logits: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Actions (mode or sample) for these logits."""
        self.proba_distribution(action_logits)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, action_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled actions for these logits and their log-probabilities."""
        actions = self.actions_from_params(action_logits)
        return actions, self.log_prob(actions)


class BinnedActorCriticPolicy(MultiInputActorCriticPolicy):
    """SB3's multi-input actor-critic with the Gaussian action head replaced by `BinnedDistribution`.

    Everything else (features extractor, heads, critic) is the stock policy's. `log_std` stays, as a buffer, not a
    parameter: the learned-skill provider adds Gaussian noise of that size around the mode when it retries a failed
    call, as it does for a Gaussian policy.
    """

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Any,
                 action_bins: int = 41, **kwargs: Any) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise InputError(f"a binned action head needs a flat Box action space, got {action_space}")
        if not (action_space.low == -1).all() or not (action_space.high == 1).all():
            raise InputError(f"a binned action head covers [-1, 1]; the action space is [{action_space.low}, "
                             f"{action_space.high}]")
        self.action_bins = int(action_bins)
        self._binned = BinnedDistribution(int(action_space.shape[0]), self.action_bins)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        """SB3's `_build` with the binned head (the stock one refuses a distribution it does not know)."""
        self.action_dist = self._binned
        self._build_mlp_extractor()
        self.action_net = self.action_dist.proba_distribution_net(self.mlp_extractor.latent_dim_pi)
        self.register_buffer("log_std", torch.full((self._binned.action_dim,), float(self.log_std_init)))
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            gains = {self.features_extractor: np.sqrt(2), self.mlp_extractor: np.sqrt(2), self.action_net: 0.01,
                     self.value_net: 1}
            if not self.share_features_extractor:  # as SB3 does
                del gains[self.features_extractor]
                gains.update({self.pi_features_extractor: np.sqrt(2), self.vf_features_extractor: np.sqrt(2)})
            for module, gain in gains.items():
                module.apply(lambda m, g=gain: self.init_weights(m, gain=g))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(self.action_net(latent_pi))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "action_bins": self.action_bins}
