"""`MultiModalExtractor`: the stable-baselines3 features extractor behind every learned skill policy.

Image normalisation: the extractor scales images itself (uint8 / 255, depth / the space's far plane),
so it must be used with `normalize_images=False` in the policy kwargs; `policy_kwargs()` sets that.
Doing it here rather than in SB3 keeps one code path for policies, pretraining and analysis, and SB3
only normalises uint8 images anyway (it would leave depth untouched). Both image layouts work: SB3's
`VecTransposeImage` hands the policy channel-first `rgb_*` spaces, the raw env channel-last ones, and
the layout is read from whichever space the extractor is built with.

Example:
    >>> from stable_baselines3 import PPO
    >>> model = PPO("MultiInputPolicy", env, policy_kwargs=policy_kwargs(fusion="attention"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from perception.checkpoint import load_encoders
from perception.encoders import GoalEncoder, TouchEncoder, VectorEncoder, VisionEncoder
from perception.fusion import fused_dim, make_fusion
from perception.layout import ModalityLayout, read_layout


def build_encoders(
    layout: ModalityLayout,
    token_dim: int = 128,
    cnn_width: int = 32,
    touch_grid: tuple[int, int, int] | None = (2, 4, 4),
) -> nn.ModuleDict:
    """One encoder per modality, keyed by `layout.token_names` (the order fusion uses)."""
    encoders: dict[str, nn.Module] = {}
    for camera in layout.cameras:
        encoders[f"camera_{camera.name}"] = VisionEncoder(camera, token_dim, cnn_width)
    if layout.touch:
        encoders["touch"] = TouchEncoder(*layout.touch, token_dim=token_dim, grid=touch_grid)
    for key, size in layout.vectors:
        encoders[f"vector_{key}"] = VectorEncoder(key, size, token_dim)
    if layout.goal:
        encoders["goal"] = GoalEncoder(*layout.goal, token_dim=token_dim)
    assert tuple(encoders) == layout.token_names, "encoder order must match the layout's token order"
    return nn.ModuleDict(encoders)


class MultiModalExtractor(BaseFeaturesExtractor):
    """Encode every modality of a Dict observation into a token and fuse them.

    Args:
        observation_space: a flat Dict space (see `perception.layout.read_layout` for how keys are read).
        token_dim: size of each modality's token.
        fusion: `concat` (tokens side by side) or `attention` (goal token attends to the senses).
        cnn_width: channels of the first conv layer of each camera encoder.
        touch_grid: (fingers, rows, cols) of the taxel grids at the start of `touch`, or None for a plain MLP.
        pretrained: a checkpoint from `embodia pretrain-perception` to initialise matching encoders from.
        freeze_pretrained: keep the loaded encoders fixed during RL.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        token_dim: int = 128,
        fusion: str = "concat",
        cnn_width: int = 32,
        touch_grid: tuple[int, int, int] | None = (2, 4, 4),
        pretrained: str | Path | None = None,
        freeze_pretrained: bool = False,
    ) -> None:
        layout = read_layout(observation_space)
        n_tokens = len(layout.token_names)
        super().__init__(observation_space, features_dim=fused_dim(fusion, n_tokens, token_dim))
        self.layout = layout
        self.fusion_mode = fusion
        self.encoders = build_encoders(layout, token_dim, cnn_width, touch_grid)
        query = layout.token_names.index("goal") if layout.goal else None
        self.fusion = make_fusion(fusion, n_tokens, token_dim, query)
        self.pretrained_loaded: list[str] = []
        self._pretrained = (pretrained, freeze_pretrained)
        if pretrained is not None:
            self.pretrained_loaded = load_encoders(self.encoders, pretrained, freeze=freeze_pretrained)

    def reload_pretrained(self) -> list[str]:
        """Load the pretrained encoders again; call it once the extractor sits in its SB3 policy.

        SB3's actor-critic policies re-initialise the whole features extractor orthogonally when they are
        built (`ortho_init`, on by default), which silently overwrites what the constructor loaded. Returns
        the names loaded (none without a checkpoint).
        """
        path, freeze = self._pretrained
        if path is not None:
            self.pretrained_loaded = load_encoders(self.encoders, path, freeze=freeze)
        return self.pretrained_loaded

    def tokens(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, n_tokens, token_dim): one token per modality, before fusion."""
        return torch.stack([encoder(observations) for encoder in self.encoders.values()], dim=1)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features of a batch of Dict observations: one token per modality, fused."""
        return self.fusion(self.tokens(observations))


def policy_kwargs(**extractor_kwargs: Any) -> dict[str, Any]:
    """`policy_kwargs` for SB3's `MultiInputPolicy` using this extractor (and no SB3 image scaling)."""
    return {
        "features_extractor_class": MultiModalExtractor,
        "features_extractor_kwargs": extractor_kwargs,
        "normalize_images": False,
    }
