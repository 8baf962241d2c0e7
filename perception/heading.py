"""Which way an object points, read from the shape of its segmented pixels (the mug's handle).

Why: the state skill policies were trained on the simulator's object rows, which carry every object's yaw, and
the place_on student leans on the mug's: behind perceived rows (yaw read as 0) it placed the mug onto the plate in
8 of 24 chain starts, and in 17 of 24 once the mug's row carried only the side its handle points to (RESULTS.md).
A mug is round but for its handle, so the handle's side shows in where its pixels lie around their median: the
back-projected points of each camera, relative to their median, binned on the table plane, are the features, and
a small head maps them to the heading's sine and cosine. Nothing privileged is read: the points come from the
estimator's own segmentation of the depth images.
"""

from __future__ import annotations

import torch
from torch import nn


def heading_feature_size(bins: int) -> int:
    """Features per object: for each camera, a bins x bins histogram and the log pixel count."""
    return 2 * (bins * bins + 1)


def camera_heading_features(labels: torch.Tensor, points: torch.Tensor, class_index: int, bins: int,
                            radius: float) -> torch.Tensor:
    """One camera's features for one class: where its points lie on the table plane around their median.

    Args:
        labels: (B, N) per-pixel class (the segmenter's argmax).
        points: (B, N, 3) world points of the pixels.
        class_index: the class whose pixels are read.
        bins: histogram cells per axis.
        radius: half-width of the histogram window (metres, around the median).

    Returns:
        (B, bins * bins + 1): the share of the class's pixels in each cell (x major), then log(1 + count) / 5
        (all zeros where the camera sees none of it).
    """
    out = torch.zeros(labels.shape[0], bins * bins + 1, dtype=torch.float32, device=points.device)
    for b in range(labels.shape[0]):
        selected = points[b][labels[b] == class_index][:, :2].float()
        if selected.shape[0] == 0:
            continue
        relative = selected - selected.median(dim=0).values
        cells = torch.floor((relative + radius) / (2 * radius) * bins).long()
        inside = ((cells >= 0) & (cells < bins)).all(dim=1)
        index = cells[inside, 0] * bins + cells[inside, 1]
        out[b, :-1] = torch.bincount(index, minlength=bins * bins).float() / selected.shape[0]
        out[b, -1] = torch.log1p(torch.tensor(float(selected.shape[0]))) / 5.0
    return out


def heading_features(front: tuple[torch.Tensor, torch.Tensor], wrist: tuple[torch.Tensor, torch.Tensor] | None,
                     class_indices: list[int], bins: int, radius: float) -> torch.Tensor:
    """Both cameras' features for every class of `class_indices`: (B, len(class_indices), heading_feature_size).

    `front` and `wrist` are (labels (B, N), points (B, N, 3)); without wrist points (an estimator without a wrist
    camera model) the wrist's half is zeros.
    """
    per_class = []
    for index in class_indices:
        parts = [camera_heading_features(*front, index, bins, radius)]
        if wrist is None:
            parts.append(torch.zeros_like(parts[0]))
        else:
            parts.append(camera_heading_features(*wrist, index, bins, radius))
        per_class.append(torch.cat(parts, dim=1))
    return torch.stack(per_class, dim=1)


class HeadingHead(nn.Module):
    """Features of one object into (sin, cos) of its heading; the vector's length says how sure the head is."""

    def __init__(self, bins: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(heading_feature_size(bins), hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., features) into (..., 2)."""
        return self.net(features)


def seen(features: torch.Tensor) -> torch.Tensor:
    """Whether any camera saw the object (its log pixel counts): (B, objects) booleans."""
    size = features.shape[-1] // 2
    return (features[..., size - 1] > 0) | (features[..., -1] > 0)
