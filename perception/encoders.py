"""Per-modality encoders: each turns one part of the observation into a token of `token_dim` floats.

All of them take raw observation tensors (as SB3 hands them over with `normalize_images=False`, or
straight from the env) and do their own scaling, so a checkpoint behaves the same inside and outside
a policy.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from perception.layout import CameraSpec, ImageSpec

MIN_FEATURE_MAP = 8  # stop downsampling once the smaller side reaches this many pixels


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): tames forces in newtons and other unbounded readings, ~identity near 0."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def _to_channels_first(image: torch.Tensor, spec: ImageSpec) -> torch.Tensor:
    if image.dim() != 4:
        raise ValueError(f"{spec.key}: expected a batch of images (B, ., ., .), got shape {tuple(image.shape)}")
    image = image.float() * spec.scale
    return image if spec.channels_first else image.permute(0, 3, 1, 2)


class VisionEncoder(nn.Module):
    """A small strided CNN over one camera's stacked RGB-D channels.

    The number of stride-2 layers is chosen from the image size (64 px: 3, 128 px: 4) so the last
    feature map is about 8x8 whatever the resolution. The head sees that map flattened (where things
    are) together with its global max and mean over space (what is there, wherever it is: a pattern
    such as "green inside the bowl's rim" is then learned once, not once per position).
    """

    def __init__(self, camera: CameraSpec, token_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        self.camera = camera
        height, image_width = camera.size
        n_down = max(1, math.ceil(math.log2(max(1, min(height, image_width)) / MIN_FEATURE_MAP)))
        layers: list[nn.Module] = []
        in_channels = camera.channels
        for index in range(n_down):
            out_channels = min(width * 2**index, 2 * width)
            kernel = 5 if index == 0 else 3
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride=2, padding=kernel // 2), nn.ReLU()]
            in_channels = out_channels
        self.cnn = nn.Sequential(*layers)
        with torch.no_grad():
            features = self.cnn(torch.zeros(1, camera.channels, height, image_width))
        flat = features[0].numel() + 2 * features.shape[1]
        self.head = nn.Sequential(nn.Linear(flat, token_dim), nn.ReLU())
        self.token_dim = token_dim

    def stack(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The camera's images as one (B, C, H, W) float tensor scaled to about [0, 1]."""
        parts = []
        for spec in (self.camera.rgb, self.camera.depth):
            if spec is not None:
                parts.append(_to_channels_first(observations[spec.key], spec))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """One token per sample: flattened, max- and mean-pooled CNN features of the camera stack, through the head."""
        features = self.cnn(self.stack(observations))
        pooled = [features.flatten(start_dim=1), features.amax(dim=(2, 3)), features.mean(dim=(2, 3))]
        return self.head(torch.cat(pooled, dim=1))


class TouchEncoder(nn.Module):
    """Fingertip touch: a tiny conv over the taxel grids plus an MLP over the remaining readings.

    `grid` is (fingers, rows, cols); the first fingers*rows*cols entries of the vector are read as the
    grids (the env contract: two 4x4 grids, then per-finger force/shear and contact flags). With
    `grid=None`, or a vector too short for it, the whole vector goes through an MLP.
    """

    def __init__(self, key: str, size: int, token_dim: int = 128, grid: tuple[int, int, int] | None = (2, 4, 4)):
        super().__init__()
        self.key = key
        self.size = size
        self.grid = grid if grid is not None and math.prod(grid) <= size else None
        grid_features = 0
        if self.grid is not None:
            fingers, rows, cols = self.grid
            self.conv = nn.Sequential(nn.Conv2d(fingers, 16, 3, padding=1), nn.ReLU(), nn.Flatten())
            grid_features = 16 * rows * cols
        rest = size - (math.prod(self.grid) if self.grid else 0)
        self.mlp = nn.Sequential(nn.Linear(grid_features + rest, 128), nn.ReLU(), nn.Linear(128, token_dim), nn.ReLU())
        self.token_dim = token_dim

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """One token from symlog-compressed touch readings; taxel grids go through the conv first when present."""
        touch = symlog(observations[self.key].float().reshape(-1, self.size))
        if self.grid is None:
            return self.mlp(touch)
        cells = math.prod(self.grid)
        grids = self.conv(touch[:, :cells].reshape(-1, *self.grid))
        return self.mlp(torch.cat([grids, touch[:, cells:]], dim=1))


class VectorEncoder(nn.Module):
    """An MLP for a flat float vector (proprioception, privileged object poses)."""

    def __init__(self, key: str, size: int, token_dim: int = 128, hidden: int = 128) -> None:
        super().__init__()
        self.key = key
        self.size = size
        self.mlp = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, token_dim), nn.ReLU())
        self.token_dim = token_dim

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """One token from the symlog-compressed vector, which keeps small and large readings in range."""
        return self.mlp(symlog(observations[self.key].float().reshape(-1, self.size)))


class GoalEncoder(nn.Module):
    """Projects the instruction embedding (already a unit vector) into a token."""

    def __init__(self, key: str, size: int, token_dim: int = 128) -> None:
        super().__init__()
        self.key = key
        self.size = size
        self.proj = nn.Sequential(nn.Linear(size, token_dim), nn.ReLU())
        self.token_dim = token_dim

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The goal embedding projected to a token (no symlog: it is already a unit vector)."""
        return self.proj(observations[self.key].float().reshape(-1, self.size))
