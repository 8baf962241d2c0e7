"""What both scene-estimator trainers share: the training settings, the frames they read, and the losses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from experiments.common.errors import InputError
from experiments.common.jsonio import write_json
from experiments.scene_estimation.data import dataset_meta, load_frames
from perception.scene_estimator import SENSES, EstimatorConfig, SceneEstimator, SceneEstimatorNet, parameter_count

LABEL_KEYS = ("location", "position", "pixels", "drawer_open", "holding")
MASK_KEYS = ("seg_front", "seg_wrist")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the network's shape is in `EstimatorConfig`)."""

    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    input_size: int = 64
    width: int = 16
    arch: str = "keypoints"
    keypoints: int = 16
    position_weight: float = 1.0
    relation_epochs: int = 40
    """arch "segment": epochs of the relation classifier alone, on features of the finished segmenter"""
    segment_steps: int = 2000
    """arch "segment": optimiser steps of the per-pixel segmenter"""
    segment_batch: int = 64
    segment_crop: int = 32
    """arch "segment": side of the training crops at the wrist camera's resolution (a finer front camera gets
    proportionally larger ones)"""
    segment_lr: float = 5e-3
    segment_dilations: tuple[int, ...] = (1, 2, 4)
    segment_camera_norms: bool = True
    """arch "segment": batch-norm statistics per camera (one shared set mixes the two cameras' statistics)"""
    segment_focus: float = 0.0
    """arch "segment": share of training crops centred on an object's pixels (0: one uniform crop per batch)"""
    relation_dropout: float = 0.0
    wrist_points: bool = True
    """arch "segment": back-project the wrist camera's pixels too (a class hidden from the front camera keeps a
    centre)"""
    reuse_perception: str = ""
    """arch "segment": a checkpoint whose segmenter and drawer/holding branch are reused as they are (only the
    relation classifier is trained); empty: train all three"""


def load_training_frames(folders: Sequence[Path], masks: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Frames of every folder, concatenated, and the (shared) vocabulary of their metadata."""
    if not folders:
        raise InputError("no dataset folders given")
    metas = [dataset_meta(folder) for folder in folders]
    if masks:
        lacking = [str(folder) for folder, meta in zip(folders, metas, strict=True) if "segment_classes" not in meta]
        if lacking:
            raise InputError(f"arch 'segment' trains on segmentation masks, which {lacking} do not have: collect "
                             "them again with this version of `embodia collect-scenes`")
    keys = (*SENSES, *LABEL_KEYS, "episode", *(MASK_KEYS if masks else ()))
    parts = [load_frames(folder, keys) for folder in folders]
    for meta in metas[1:]:
        if (meta["objects"], meta["locations"]) != (metas[0]["objects"], metas[0]["locations"]):
            raise InputError("dataset folders disagree on the label vocabulary; collect them with the same code")
    frames = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return frames, metas[0]


def visible_labels(frames: dict[str, np.ndarray], min_pixels: int, held_index: int) -> np.ndarray:
    """Oracle visibility per (frame, object): enough segmentation pixels in either camera, or held (felt).

    Pixels are counted at the wrist camera's resolution: a front camera rendering at twice the side sees an
    object in four times the pixels, and "visible" should not change with it.
    """
    pixels = frames["pixels"].astype(np.float64)
    if "rgb_front" in frames and "rgb_wrist" in frames:
        pixels[..., 0] *= (frames["rgb_wrist"].shape[1] / frames["rgb_front"].shape[1]) ** 2
    return (pixels.sum(-1) >= min_pixels) | (frames["location"] == held_index)


def frame_tensors(frames: dict[str, np.ndarray], index: np.ndarray) -> dict[str, torch.Tensor]:
    """The frames at `index` (every key) as tensors: one training batch."""
    return {key: torch.from_numpy(np.ascontiguousarray(frames[key][index])) for key in frames}


def estimator_losses(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], centre: torch.Tensor,
            scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-fact losses of one batch; location and position count only where the object is seen or held."""
    visible = batch["visible"].bool()
    location = outputs["location"][visible]
    target = batch["location"].long()[visible]
    position = (batch["position"].float() - centre) / scale
    return {
        "location": F.cross_entropy(location, target) if len(target) else location.sum() * 0.0,
        "visible": F.binary_cross_entropy_with_logits(outputs["visible"], visible.float()),
        "position": F.smooth_l1_loss(outputs["position"][visible], position[visible], beta=0.1)
        if visible.any() else outputs["position"].sum() * 0.0,
        "drawer": F.binary_cross_entropy_with_logits(outputs["drawer"], batch["drawer_open"].float()),
        "holding": F.binary_cross_entropy_with_logits(outputs["holding"], batch["holding"].float()),
    }


def save_trained(net: SceneEstimatorNet, estimator_config: EstimatorConfig, folders: Sequence[Path], frames: int,
                 config: TrainConfig, history: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Save the trained estimator with its card (data, settings, loss history) and the history as JSON."""
    estimator = SceneEstimator(estimator_config, net.eval())
    card = {"trained_on": [str(f) for f in folders], "frames": frames, "train": asdict(config), "history": history,
            "parameters": parameter_count(net)}
    estimator.save(out, card)
    write_json(Path(out).with_suffix(".history.json"), history, indent=1)
    return card


def optimise(optimiser: torch.optim.Optimizer, schedule: Any, loss: torch.Tensor) -> None:
    """One optimiser step on `loss`, then one step of the learning-rate schedule."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    schedule.step()


def accumulate(totals: dict[str, float], losses: dict[str, torch.Tensor], count: int) -> None:
    """Add a batch's losses (weighted by its size) to the epoch's running totals."""
    for key, value in losses.items():
        totals[key] = totals.get(key, 0.0) + float(value.detach()) * count
