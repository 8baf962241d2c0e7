"""Training of the segmenting scene estimator (arch "segment"), in two stages.

Stage 1 trains the per-pixel segmenter on random crops of the collector's segmentation masks (both
cameras), then the drawer and holding branch on whole frames. Stage 2 freezes both, computes every frame's
relation features once in evaluation mode (what inference will see, batch norm included), and trains the
relation classifier alone on them: many cheap epochs on a few hundred numbers per frame instead of images.
Nothing is selected on held-out data: the last epoch is what is saved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from envs.sensors import WRIST_CAMERA
from experiments.common.errors import InputError
from experiments.scene_estimation.training_common import (
    MASK_KEYS,
    accumulate,
    estimator_losses,
    frame_tensors,
    load_training_frames,
    optimise,
    save_trained,
    visible_labels,
)
from perception.scene_estimator import FRONT, WRIST, EstimatorConfig, SceneEstimator, SceneEstimatorNet

if TYPE_CHECKING:
    from experiments.scene_estimation.training_common import TrainConfig

log = logging.getLogger(__name__)


def _class_weights(frames: dict[str, np.ndarray], classes: int) -> torch.Tensor:
    """Inverse square-root pixel frequency: background covers ~95% of a frame, a block ~0.3%."""
    counts = sum(np.bincount(frames[key].ravel(), minlength=classes) for key in MASK_KEYS).astype(np.float64)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1.0) / counts.sum())
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _segment_loss(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                  weights: torch.Tensor) -> torch.Tensor:
    return sum(F.cross_entropy(outputs[f"segment_{key.removeprefix('seg_')}"], batch[key].long(), weight=weights)
               for key in MASK_KEYS)


def train_segment(folders: Sequence[Path], out: Path, config: TrainConfig, progress: bool = False) -> dict[str, Any]:
    """Train arch "segment" on the frames under `folders`; save weights and card; return the card."""
    frames, meta = load_training_frames(folders, masks=True)
    image_size, front_size = int(frames["rgb_wrist"].shape[1]), int(frames["rgb_front"].shape[1])
    locations = tuple(meta["locations"])
    estimator_config = EstimatorConfig(objects=tuple(meta["objects"]), locations=locations, image_size=image_size,
                                       front_image_size=front_size if front_size != image_size else 0,
                                       input_size=config.input_size, width=config.width, arch="segment",
                                       keypoints=config.keypoints, segment_classes=tuple(meta["segment_classes"]),
                                       segment_dilations=tuple(config.segment_dilations),
                                       segment_camera_norms=config.segment_camera_norms,
                                       relation_dropout=config.relation_dropout,
                                       wrist_camera=WRIST_CAMERA if config.wrist_points else ())
    net = SceneEstimatorNet(estimator_config)
    frames["visible"] = visible_labels(frames, meta["min_visible_pixels"], locations.index("held"))
    weights = _class_weights(frames, len(estimator_config.segment_classes))
    n = len(frames["location"])
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, Any]] = []
    started = time.perf_counter()

    if config.reuse_perception:
        _reuse_perception(net, Path(config.reuse_perception))
        history.append({"stage": "reused", "from": config.reuse_perception})
    else:
        _train_segmenter(net, frames, weights, config, rng, history, started, progress)
        _train_flags(net, frames, config, rng, history, started, progress)
    _train_relations(net, frames, config, rng, history, started, progress)
    return save_trained(net, estimator_config, folders, n, config, history, out)


def _reuse_perception(net: SceneEstimatorNet, path: Path) -> None:
    """Copy a checkpoint's segmenter and drawer/holding branch into `net` (its relation classifier stays fresh)."""
    source = SceneEstimator.load(path)
    if (source.config.segment_classes, source.config.objects, source.config.locations, source.config.front_size,
            source.config.image_size) != (net.config.segment_classes, net.config.objects, net.config.locations,
                                          net.config.front_size, net.config.image_size):
        raise InputError(f"{path} was trained on other classes, objects, locations or image sizes than these frames")
    own = net.state_dict()
    reused = {key: value for key, value in source.net.state_dict().items()
              if not key.startswith(("relations.", "feature_")) and key in own}
    if set(reused) != {key for key in own if not key.startswith(("relations.", "feature_"))}:
        raise InputError(f"{path} has another segmenter or drawer/holding layout than --arch segment builds here")
    net.load_state_dict({**own, **reused})


def _train_flags(net: SceneEstimatorNet, frames: dict[str, np.ndarray], config: TrainConfig,
                 rng: np.random.Generator, history: list[dict[str, Any]], started: float, progress: bool) -> None:
    """Stage 1b: the drawer and holding branch on whole frames (the segmenter is not touched)."""
    from tqdm import tqdm

    n = len(frames["location"])
    flag_parameters = [p for name, p in net.named_parameters()
                       if not name.startswith(("segmenter.", "relations."))]
    optimiser = torch.optim.AdamW(flag_parameters, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * ((n + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    for epoch in range(config.epochs):
        net.train()
        totals: dict[str, float] = {}
        order = rng.permutation(n)
        for start in tqdm(range(0, n, config.batch_size), desc=f"drawer and holding, epoch {epoch + 1}",
                          disable=not progress, leave=False):
            batch = frame_tensors(frames, np.sort(order[start:start + config.batch_size]))
            flags = net._flags(batch)
            losses = {"drawer": F.binary_cross_entropy_with_logits(flags[:, 0], batch["drawer_open"].float()),
                      "holding": F.binary_cross_entropy_with_logits(flags[:, 1], batch["holding"].float())}
            loss = losses["drawer"] + losses["holding"]
            optimise(optimiser, schedule, loss)
            accumulate(totals, losses, len(batch["location"]))
        row = {"stage": "flags", "epoch": epoch + 1, **{k: round(v / n, 5) for k, v in totals.items()},
               "seconds": round(time.perf_counter() - started, 1)}
        history.append(row)
        log.info("epoch %s", row)


def _train_relations(net: SceneEstimatorNet, frames: dict[str, np.ndarray], config: TrainConfig,
                     rng: np.random.Generator, history: list[dict[str, Any]], started: float, progress: bool) -> None:
    """Stage 2: the relation classifier alone, on features of the frozen, evaluation-mode segmenter."""
    n = len(frames["location"])
    centre = torch.tensor(net.config.position_centre)
    scale = torch.tensor(net.config.position_scale)
    net.eval()
    features, centres = _relation_inputs(net, frames, config.batch_size * 2, progress)
    flat = features.reshape(-1, features.shape[-1])
    net.feature_mean.copy_(flat.mean(0))
    net.feature_std.copy_(flat.std(0).clamp(min=1e-3))
    optimiser = torch.optim.AdamW(net.relations.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch_size = 512
    steps = config.relation_epochs * ((n + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    labels = {key: torch.from_numpy(np.ascontiguousarray(frames[key]))
              for key in ("location", "visible", "position", "drawer_open", "holding")}
    for epoch in range(config.relation_epochs):
        net.relations.train()
        totals = {}
        order = torch.from_numpy(rng.permutation(n))
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            outputs = net.relate(features[index], centres[index])
            batch = {key: value[index] for key, value in labels.items()}
            unused = {"drawer": torch.zeros(len(index)), "holding": torch.zeros(len(index))}  # stage 1's job
            losses = estimator_losses({**outputs, **unused}, batch, centre, scale)
            loss = losses["location"] + losses["visible"] + config.position_weight * losses["position"]
            optimise(optimiser, schedule, loss)
            for key in ("location", "visible", "position"):
                totals[key] = totals.get(key, 0.0) + float(losses[key].detach()) * len(index)
        row = {"stage": "relations", "epoch": epoch + 1, **{k: round(v / n, 5) for k, v in totals.items()},
               "seconds": round(time.perf_counter() - started, 1)}
        history.append(row)
        if (epoch + 1) % 10 == 0:
            log.info("epoch %s", row)


def _train_segmenter(net: SceneEstimatorNet, frames: dict[str, np.ndarray], weights: torch.Tensor,
                     config: TrainConfig, rng: np.random.Generator, history: list[dict[str, Any]], started: float,
                     progress: bool) -> None:
    """Per-pixel cross-entropy on random crops of both cameras' images.

    Crops, not whole frames: which object a pixel shows is decided within a few pixels, so a 32x32 crop
    teaches as much per pixel as a whole frame at a quarter of the cost (the net is fully convolutional).
    """
    from tqdm import tqdm

    from perception.scene_estimator import _full_image

    heights = {"front": _front_heights(net, frames), "wrist": None}
    images = {camera: (frames[f"rgb_{camera}"], frames[f"depth_{camera}"], frames[f"seg_{camera}"])
              for camera in ("front", "wrist")}
    net.segmenter.train()
    optimiser = torch.optim.Adam(net.segmenter.parameters(), lr=config.segment_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.segment_steps)
    total = 0.0
    for step in tqdm(range(config.segment_steps), desc="segmenter", disable=not progress, leave=False):
        camera = "front" if step % 2 == 0 else "wrist"
        rgb, depth, seg = images[camera]
        # The crop covers the same part of the scene at any resolution: a front camera rendering at twice the
        # wrist's side gets crops of twice the side (a 32-px crop of a 128-px front image showed the mug so
        # rarely that the segmenter never labelled it: RESULTS.md).
        size = rgb.shape[1]
        crop = min(config.segment_crop * size // images["wrist"][0].shape[1], size)
        if config.segment_focus > 0.0:  # a crop per sample, some centred on objects
            index = rng.integers(0, len(rgb), config.segment_batch)
            corners = [_crop_corner(seg[i], crop, rng, config.segment_focus) for i in index]
            rows = np.asarray([r for r, _ in corners])[:, None] + np.arange(crop)
            cols = np.asarray([c for _, c in corners])[:, None] + np.arange(crop)
            window: tuple[Any, ...] = (index[:, None, None], rows[:, :, None], cols[:, None, :])
        else:  # one uniform crop window for the whole batch
            index = np.sort(rng.integers(0, len(rgb), config.segment_batch))
            row, col = rng.integers(0, size - crop + 1, 2)
            window = (index, slice(row, row + crop), slice(col, col + crop))
        height = heights[camera]
        x = _full_image(torch.from_numpy(rgb[window]), torch.from_numpy(depth[window].astype(np.float32)),
                        None if height is None else torch.from_numpy(height[window]))
        logits = net.segmenter(x, FRONT if camera == "front" else WRIST)
        loss = F.cross_entropy(logits, torch.from_numpy(seg[window]).long(), weight=weights)
        optimise(optimiser, schedule, loss)
        total += float(loss.detach())
        if (step + 1) % 250 == 0:
            history.append({"stage": "segmenter", "step": step + 1, "segment": round(total / 250, 5),
                            "seconds": round(time.perf_counter() - started, 1)})
            log.info("segmenter %s", history[-1])
            total = 0.0


def _crop_corner(mask: np.ndarray, crop: int, rng: np.random.Generator, focus: float) -> tuple[int, int]:
    """Top-left corner of a training crop: with probability `focus` around a pixel of an object class in view.

    Why: a uniform crop mostly shows table and arm, and the rare sights (the mug inside the bowl, a block in
    the open drawer) would seldom be trained on.
    """
    size = mask.shape[0]
    present = np.unique(mask)
    present = present[present > 0]
    if len(present) and rng.random() < focus:
        rows, cols = np.nonzero(mask == rng.choice(present))
        pick = int(rng.integers(len(rows)))
        row = int(np.clip(rows[pick] - rng.integers(crop), 0, size - crop))
        col = int(np.clip(cols[pick] - rng.integers(crop), 0, size - crop))
        return row, col
    row, col = rng.integers(0, size - crop + 1, 2)
    return int(row), int(col)


def _front_heights(net: SceneEstimatorNet, frames: dict[str, np.ndarray]) -> np.ndarray:
    """Height above the table of every front-camera pixel of every frame (float16, as the depth is stored)."""
    rays_z = net.rays[..., 2].numpy()
    eye_z = net.config.front_camera[2]
    return (eye_z + frames["depth_front"][..., 0].astype(np.float32) * rays_z).astype(np.float16)


@torch.no_grad()
def _relation_inputs(net: SceneEstimatorNet, frames: dict[str, np.ndarray], batch_size: int,
                     progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame's relation features and object centres under the frozen, evaluation-mode segmenter."""
    from tqdm import tqdm

    features, centres = [], []
    n = len(frames["location"])
    for start in tqdm(range(0, n, batch_size), desc="relation features", disable=not progress, leave=False):
        perceived = net.perceive(frame_tensors(frames, np.arange(start, min(start + batch_size, n))))
        features.append(perceived["features"])
        centres.append(perceived["centres"])
    return torch.cat(features), torch.cat(centres)
