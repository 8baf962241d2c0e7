"""Where things are, from pixels: a per-pixel object segmenter and the front camera's geometry.

Why this design: a network that regresses every object's location from a whole image learns each training
layout by heart (RESULTS.md: 99.97% on training frames, 68% on held-out ones). Telling which pixel shows
which object is a local question (colour and shape within a few pixels), so a small fully convolutional net
learns it from every pixel of every frame and transfers to layouts it never saw. The depth image then says
where those pixels are in the world: with the fixed front camera's pose (eye, target, field of view) each
pixel's metric depth back-projects to a 3-D point. Relations (in the bowl, on the plate, on a block, in the
drawer, held) are read from those positions by a small classifier over relative geometry, which does not
care where on the table the scene was laid out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class PinholeCamera:
    """A static pinhole camera given the way a renderer's look-at is: eye, target, up and vertical field of view."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_degrees: float
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def rays(self, size: int) -> np.ndarray:
        """(size, size, 3) world vectors per pixel, scaled so that ``eye + depth * ray`` is the pixel's point.

        Depth is the metric distance along the optical axis (what the env's depth images hold), so each ray
        has unit length along that axis; row 0 is the top of the image.
        """
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (self.eye, self.target, self.up))
        forward = target - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        true_up = np.cross(right, forward)
        half = np.tan(np.radians(self.fov_degrees) / 2.0)
        rows, cols = np.mgrid[0:size, 0:size]
        x = (2.0 * (cols + 0.5) / size - 1.0) * half
        y = (1.0 - 2.0 * (rows + 0.5) / size) * half
        return (forward + x[..., None] * right + y[..., None] * true_up).astype(np.float32)


def wrist_rays(proprio: torch.Tensor, offsets: tuple[float, ...], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eye (B, 3) and per-pixel rays (B, size, size, 3) of the camera riding on the grasp point.

    The wrist camera moves with the hand, but its pose follows from what proprioception already reports: the
    grasp point (proprio 0:3) and the hand's yaw (sin, cos at proprio 3:5). The hand points down, so its frame
    is x = (cos yaw, sin yaw, 0), z = (0, 0, -1), y = z x x; the camera's eye and target sit at fixed offsets in
    that frame and its up vector is the hand's x axis. ``eye + depth * ray`` is each pixel's world point (a tilt
    of the hand away from straight down, which the controller does not command, is not modelled).

    Args:
        proprio: (B, >= 5) proprioception.
        offsets: eye offset (3), target offset (3) in the grasp-point frame, and vertical field of view (degrees).
        size: side of the square image.
    """
    p = proprio[:, 0:3].double()
    sin, cos = proprio[:, 3].double(), proprio[:, 4].double()
    zero = torch.zeros_like(sin)
    x = torch.stack([cos, sin, zero], -1)
    z = torch.stack([zero, zero, -torch.ones_like(sin)], -1)
    y = torch.linalg.cross(z, x)
    eye = p + offsets[0] * x + offsets[1] * y + offsets[2] * z
    target = p + offsets[3] * x + offsets[4] * y + offsets[5] * z
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, x), dim=-1)
    up = torch.linalg.cross(right, forward)
    half = float(np.tan(np.radians(offsets[6]) / 2.0))
    steps = (torch.arange(size, dtype=torch.float64, device=proprio.device) + 0.5) / size
    cols = (2.0 * steps - 1.0) * half  # left to right
    rows = (1.0 - 2.0 * steps) * half  # top to bottom
    rays = (forward[:, None, None] + cols[None, None, :, None] * right[:, None, None]
            + rows[None, :, None, None] * up[:, None, None])
    return eye.float(), rays.float()


def fall_back_to_wrist(front_counts: torch.Tensor, front_centres: torch.Tensor, wrist_counts: torch.Tensor,
                       wrist_centres: torch.Tensor, min_front: float, min_wrist: float) -> torch.Tensor:
    """Class centres from the front camera, or from the wrist camera where the front one barely sees a class.

    The front camera's median is the better one wherever it sees enough (a fixed, calibrated view of the whole
    table; the wrist camera often sees only part of the bowl or the plate, whose median is then off-centre), so
    the wrist's only stands in where the arm hides a class from the front camera.
    """
    use_wrist = (front_counts < min_front) & (wrist_counts >= min_wrist)
    return torch.where(use_wrist.unsqueeze(-1), wrist_centres, front_centres)


class SegmenterNet(nn.Module):
    """Per-pixel class logits from one RGB-D image, at full resolution.

    3x3 convolutions with dilations 1, 2 and 4 (the default) see about 15 pixels around each pixel: enough to
    tell a block's face from its shadow or the bowl's rim, cheap enough to train on two CPU threads. (A fourth
    layer with dilation 8 was tried and segmented the mug worse: RESULTS.md.) The fifth input
    channel is each pixel's height above the table where the camera's pose is known (the front camera; zero
    for the wrist camera): the white mug and the white arm look alike, but the mug stands on the table.

    With `cameras` > 1 the convolutions are shared but every camera has its own batch-norm statistics. One set,
    trained on alternating front and wrist batches, keeps running statistics of neither camera: the front image
    (with its height channel) and the wrist image (height zero) are normalised with the mix at run time, and the
    segmenter that labelled the mug's wrist pixels with recall 1.00 on batch statistics found 8% of them with the
    running ones (RESULTS.md, 2026-12-06 fifth session).
    """

    def __init__(self, classes: int, width: int = 16, channels: int = 5,
                 dilations: tuple[int, ...] = (1, 2, 4), cameras: int = 1) -> None:
        super().__init__()
        self.cameras = cameras
        if cameras == 1:  # the layout of the first checkpoints, which still load
            layers: list[nn.Module] = []
            for dilation in dilations:
                layers += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(width),
                           nn.ReLU()]
                channels = width
            self.body = nn.Sequential(*layers, nn.Conv2d(width, classes, 1))
            return
        convs, norms = [], []
        for dilation in dilations:
            convs.append(nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation))
            norms.append(nn.ModuleList(nn.BatchNorm2d(width) for _ in range(cameras)))
            channels = width
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, image: torch.Tensor, camera: int = 0) -> torch.Tensor:
        """(B, channels, H, W) normalised RGB-D (+ height) from camera number `camera` into (B, classes, H, W)."""
        if self.cameras == 1:
            return self.body(image)
        x = image
        for conv, norms in zip(self.convs, self.norms, strict=True):
            x = torch.relu(norms[camera](conv(x)))
        return self.head(x)


def class_statistics(logits: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel count and median world point of every class under the per-pixel argmax.

    The median, not the mean: a few stray pixels of a class elsewhere in the image (a reflection on the
    arm, a shadow) would drag a mean across the table, while they barely move a median.

    Args:
        logits: (B, C, H, W) segmentation logits.
        points: (B, H, W, 3) world points of the pixels.

    Returns:
        counts (B, C) and median points (B, C, 3) (zeros for a class with no pixel).
    """
    labels = logits.argmax(1).flatten(1)  # (B, H*W)
    flat = points.flatten(1, 2)  # (B, H*W, 3)
    counts, medians = [], []
    for index in range(logits.shape[1]):
        mask = (labels == index).unsqueeze(-1)
        counts.append(mask.sum((1, 2)).float())
        median = torch.where(mask, flat, torch.nan).nanmedian(dim=1).values
        medians.append(torch.nan_to_num(median, nan=0.0))
    return torch.stack(counts, 1), torch.stack(medians, 1)


def relation_features(counts: torch.Tensor, centres: torch.Tensor, wrist_counts: torch.Tensor,
                      object_classes: list[int], anchor_classes: list[int], proprio: torch.Tensor,
                      drawer_p: torch.Tensor, holding_p: torch.Tensor,
                      present: torch.Tensor | None = None) -> torch.Tensor:
    """Per-object geometric features for the location classifier, (B, objects, F).

    For each object: how much of it each camera sees, where its pixels are (absolute, for the drawer's fixed
    place), where it is relative to every anchor (bowl, plate) and to every other object, and relative to the
    grasp point; plus the gripper's width and touch flags, the drawer and holding probabilities, and which
    object it is. Offsets to unseen things are zero with a presence flag of 0. `present` (B, C) says which
    classes have a centre (default: a front-camera pixel; with wrist fallback, a pixel in either camera).
    """
    batch = counts.shape[0]
    n = len(object_classes)
    present = (counts >= 1.0).float() if present is None else present.float()
    grasp = proprio[:, 0:3]
    # gripper width (8), finger touch flags (16, 17), gripper command (18), both fingers touching (20)
    body = torch.cat([proprio[:, [8, 16, 17, 18, 20]], drawer_p[:, None], holding_p[:, None]], dim=-1)
    identity = torch.eye(n, device=counts.device)
    rows = []
    for i, own in enumerate(object_classes):
        position = centres[:, own]
        seen = present[:, own:own + 1]
        parts = [torch.log1p(counts[:, own:own + 1]), torch.log1p(wrist_counts[:, own:own + 1]), seen,
                 position * seen, (grasp - position) * seen]
        for other in (*anchor_classes, *object_classes):
            both = seen * present[:, other:other + 1]
            parts += [(position - centres[:, other]) * both, present[:, other:other + 1]]
        parts += [body, identity[i].expand(batch, n)]
        rows.append(torch.cat(parts, dim=-1))
    return torch.stack(rows, dim=1)


def relation_feature_size(objects: int, anchors: int) -> int:
    """Length of one object's row of `relation_features`."""
    return 3 + 3 + 3 + 4 * (anchors + objects) + 7 + objects
