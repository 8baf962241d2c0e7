"""`StandardizedExtractor`: the multimodal extractor with input standardisation and goal-driven object attention.

Why: sentence embeddings of one task's instructions share most of their direction (for the reach
sentences the mean embedding has norm ~0.66 while each dimension varies by ~0.04), so "reach the red
block" and "reach the blue block" differ by tiny amounts that a freshly initialised network barely sees.
Subtracting the mean over the task's sentences and dividing by their spread turns the differences that
matter into unit-scale features. Positions in metres get the same treatment from statistics of a few
hundred env steps. The statistics are buffers of the module, so they travel inside the saved policy and
the agent applies exactly what training applied.

Object attention (state mode): the env contract lays `objects` out as one row of `OBJECT_FEATURES`
numbers per object (position, yaw, position relative to the gripper) followed by the drawer. A concatenated
MLP has to learn "the sentence says red, so use row 0" as a multiplicative interaction, which takes PPO
hundreds of thousands of steps. Instead, each attention head turns the goal into a query over per-object
tokens (shared MLP + learned slot embedding) and returns the softmax-weighted token together with the
weighted raw row, so the chosen object's offset from the gripper reaches the policy head directly. Two
heads cover tasks that name two things (push: object and direction; place: object and container).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from perception.extractor import MultiModalExtractor
from perception.fusion import fused_dim, make_fusion
from perception.layout import GOAL_KEY

OBJECTS_KEY = "objects"
OBJECT_FEATURES = 8
N_OBJECTS = 7
"""The env contract's `objects` layout: 7 rows of 8 numbers, then 4 drawer numbers (60 in all)."""
MIN_STD_FRACTION = 0.1
"""A dimension's std is floored at this fraction of the median std (constant dimensions stay finite)."""


def _buffer_name(key: str) -> str:
    return "std_" + "".join(c if c.isalnum() else "_" for c in key)


class ObjectAttention(nn.Module):
    """Goal-queried attention over per-object rows; one (token_dim) token per head.

    Args:
        goal_dim: size of the (standardised) goal vector.
        token_dim: size of object tokens and of each output token.
        heads: independent queries (things the sentence can name).
        neighbours: add, per head, a token of what stands near the object that head attends to (below).

    Why neighbours: the goal's queries find the objects the sentence names (what to place, where), but not an
    unnamed block already in the bowl the place is aimed at: that one is only in the flat `objects` token, and a
    cloned place student dropped the new block onto it (RESULTS.md, twelfth session). The neighbour token pools every
    object's row and its position relative to the attended object, weighted by a learned score of that offset.
    """

    def __init__(self, goal_dim: int, token_dim: int, heads: int, neighbours: bool = False) -> None:
        super().__init__()
        self.heads, self.token_dim, self.neighbours = heads, token_dim, neighbours
        self.rows = nn.Sequential(nn.Linear(OBJECT_FEATURES, token_dim), nn.ReLU(), nn.Linear(token_dim, token_dim))
        self.slots = nn.Parameter(torch.randn(N_OBJECTS, token_dim) * 0.1)
        self.queries = nn.Linear(goal_dim, heads * token_dim)
        self.out = nn.Sequential(nn.Linear(token_dim + OBJECT_FEATURES, token_dim), nn.ReLU())
        if neighbours:
            self.near_score = nn.Sequential(nn.Linear(3, token_dim), nn.ReLU(), nn.Linear(token_dim, 1))
            self.near_value = nn.Sequential(nn.Linear(3 + OBJECT_FEATURES, token_dim), nn.ReLU(),
                                            nn.Linear(token_dim, token_dim))

    @property
    def tokens_out(self) -> int:
        """Tokens `forward` returns per sample."""
        return self.heads * (2 if self.neighbours else 1)

    def weights(self, objects: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(attention (B, heads, N_OBJECTS), object tokens, raw object rows)."""
        rows = objects[:, : N_OBJECTS * OBJECT_FEATURES].reshape(-1, N_OBJECTS, OBJECT_FEATURES)
        keys = self.rows(rows) + self.slots
        queries = self.queries(goal).view(-1, self.heads, self.token_dim)
        return torch.softmax(queries @ keys.transpose(1, 2) / self.token_dim**0.5, dim=-1), keys, rows

    def forward(self, objects: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """One token per head: each head's goal query attends over the object rows, (batch, heads, token_dim)."""
        weights, keys, rows = self.weights(objects, goal)
        attended = weights @ rows  # (B, heads, features)
        tokens = self.out(torch.cat([weights @ keys, attended], dim=-1))
        if not self.neighbours:
            return tokens
        offsets = rows[:, None, :, :3] - attended[:, :, None, :3]  # (B, heads, N_OBJECTS, 3)
        score = torch.softmax(self.near_score(offsets).squeeze(-1), dim=-1)  # (B, heads, N_OBJECTS)
        values = self.near_value(torch.cat([offsets, rows[:, None].expand(-1, self.heads, -1, -1)], dim=-1))
        near = (score[..., None] * values).sum(dim=2)  # (B, heads, token_dim)
        return torch.cat([tokens, near], dim=1)


class StandardizedExtractor(MultiModalExtractor):
    """`MultiModalExtractor` that first maps each 1-D float input x to (x - mean) / std, plus object attention.

    Statistics start as identity (mean 0, std 1) and are set once with `set_statistics` before training.

    Args:
        observation_space: the Dict observation space.
        object_heads: goal-driven attention heads over the `objects` rows (0: none; ignored without
            `objects` and `goal` keys).
        neighbour_tokens: with object attention, one more token per head: what stands near the attended object.
        **kwargs: those of `MultiModalExtractor`.
    """

    def __init__(self, observation_space: spaces.Dict, object_heads: int = 0, neighbour_tokens: bool = False,
                 **kwargs) -> None:
        super().__init__(observation_space, **kwargs)
        self.standardized: dict[str, str] = {}
        for key, space in observation_space.spaces.items():
            if len(space.shape) == 1 and np.issubdtype(space.dtype, np.floating):
                name = _buffer_name(key)
                self.register_buffer(f"{name}_mean", torch.zeros(space.shape[0]))
                self.register_buffer(f"{name}_std", torch.ones(space.shape[0]))
                self.standardized[key] = name
        self.object_attention: ObjectAttention | None = None
        spaces_ = observation_space.spaces
        if object_heads and OBJECTS_KEY in spaces_ and GOAL_KEY in spaces_:
            if spaces_[OBJECTS_KEY].shape[0] < N_OBJECTS * OBJECT_FEATURES:
                raise ValueError(f"object attention needs {N_OBJECTS}x{OBJECT_FEATURES} object features, "
                                 f"got {spaces_[OBJECTS_KEY].shape}")
            token_dim = kwargs.get("token_dim", 128)
            self.object_attention = ObjectAttention(spaces_[GOAL_KEY].shape[0], token_dim, object_heads,
                                                    neighbours=neighbour_tokens)
            n_tokens = len(self.layout.token_names) + self.object_attention.tokens_out
            query = self.layout.token_names.index("goal")
            self.fusion = make_fusion(self.fusion_mode, n_tokens, token_dim, query)
            self._features_dim = fused_dim(self.fusion_mode, n_tokens, token_dim)

    def set_statistics(self, samples: Mapping[str, np.ndarray]) -> None:
        """Set mean and std per key from (n, size) samples; keys without samples stay as they are.

        With object attention, the object rows share one mean/std per feature (pooled over objects), so a
        row's numbers mean the same whichever object it describes.
        """
        unknown = set(samples) - set(self.standardized)
        if unknown:
            raise KeyError(f"no standardised input named {sorted(unknown)}; inputs: {sorted(self.standardized)}")
        for key, values in samples.items():
            values = np.asarray(values, dtype=np.float64)
            if values.ndim != 2 or values.shape[0] < 2:
                raise ValueError(f"{key}: need (n >= 2, size) samples, got shape {values.shape}")
            mean, std = values.mean(axis=0), values.std(axis=0)
            if key == OBJECTS_KEY and self.object_attention is not None:
                size = N_OBJECTS * OBJECT_FEATURES
                rows = values[:, :size].reshape(-1, OBJECT_FEATURES)
                mean[:size], std[:size] = np.tile(rows.mean(axis=0), N_OBJECTS), np.tile(rows.std(axis=0), N_OBJECTS)
            floor = max(float(np.median(std)) * MIN_STD_FRACTION, 1e-6)
            name = self.standardized[key]
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(np.maximum(std, floor), dtype=torch.float32))

    def statistics(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The (mean, std) buffers used to standardize input `key`."""
        name = self.standardized[key]
        return getattr(self, f"{name}_mean"), getattr(self, f"{name}_std")

    def standardize(self, observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A copy of `observations` with each standardized key mapped to (x - mean) / std; other keys untouched."""
        scaled = dict(observations)
        for key in self.standardized.keys() & observations.keys():
            mean, std = self.statistics(key)
            scaled[key] = (observations[key].float() - mean) / std
        return scaled

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Policy features: standardized inputs, one token per modality plus the object-attention tokens, fused."""
        scaled = self.standardize(observations)
        tokens = self.tokens(scaled)
        if self.object_attention is not None:
            extra = self.object_attention(scaled[OBJECTS_KEY], scaled[GOAL_KEY])
            tokens = torch.cat([tokens, extra], dim=1)
        return self.fusion(tokens)


def standardized_policy_kwargs(**extractor_kwargs) -> dict:
    """`policy_kwargs` for SB3's `MultiInputPolicy` with this extractor (images scaled by the extractor)."""
    return {"features_extractor_class": StandardizedExtractor, "features_extractor_kwargs": extractor_kwargs,
            "normalize_images": False}
