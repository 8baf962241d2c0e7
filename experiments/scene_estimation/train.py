"""Supervised training of the scene estimator on oracle-labelled frames (CPU, a thread or two).

Losses, summed: cross-entropy of the location class (only where the object is seen or held: where it is not,
the right answer is "unknown", which the visibility head gives), binary cross-entropy of visibility (labels
from segmentation pixel counts), of drawer open and of holding, and a smooth-L1 loss on the normalised
position of seen objects. Nothing is selected on held-out data: the last epoch is what is saved.
"""

from __future__ import annotations

import logging
import time
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

log = logging.getLogger(__name__)

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
    segment_lr: float = 5e-3
    segment_dilations: tuple[int, ...] = (1, 2, 4)
    segment_focus: float = 0.0
    """arch "segment": share of training crops centred on an object's pixels (0: one uniform crop per batch)"""


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
    """Oracle visibility per (frame, object): enough segmentation pixels in either camera, or held (felt)."""
    return (frames["pixels"].sum(-1) >= min_pixels) | (frames["location"] == held_index)


def _tensors(frames: dict[str, np.ndarray], index: np.ndarray) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.ascontiguousarray(frames[key][index])) for key in frames}


def train(folders: Sequence[Path], out: Path, config: TrainConfig, progress: bool = False) -> dict[str, Any]:
    """Train on the frames under `folders`; save `out` (weights) and `out.json` (config + card); return a summary."""
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    if config.arch == "segment":
        from experiments.scene_estimation.train_segment import train_segment

        return train_segment(folders, out, config, progress)
    frames, meta = load_training_frames(folders)
    image_size = int(frames["rgb_front"].shape[1])
    locations = tuple(meta["locations"])
    estimator_config = EstimatorConfig(objects=tuple(meta["objects"]), locations=locations, image_size=image_size,
                                       input_size=config.input_size, width=config.width,
                                       arch=config.arch, keypoints=config.keypoints)
    net = SceneEstimatorNet(estimator_config)
    held = locations.index("held")
    frames["visible"] = visible_labels(frames, meta["min_visible_pixels"], held)
    centre = torch.tensor(estimator_config.position_centre)
    scale = torch.tensor(estimator_config.position_scale)
    n = len(frames["location"])
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * ((n + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(config.seed)
    history = []
    started = time.perf_counter()
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(n)
        totals: dict[str, float] = {}
        batches = range(0, n, config.batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch + 1}", disable=not progress, leave=False):
            batch = _tensors(frames, np.sort(order[start:start + config.batch_size]))
            losses = _losses(net(batch), batch, centre, scale)
            loss = (losses["location"] + losses["visible"] + losses["drawer"] + losses["holding"]
                    + config.position_weight * losses["position"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach()) * len(batch["location"])
        row = {"epoch": epoch + 1, **{k: round(v / n, 5) for k, v in totals.items()},
               "seconds": round(time.perf_counter() - started, 1)}
        history.append(row)
        log.info("epoch %s", row)
    estimator = SceneEstimator(estimator_config, net.eval())
    card = {"trained_on": [str(f) for f in folders], "frames": n, "train": asdict(config), "history": history,
            "parameters": parameter_count(net)}
    estimator.save(out, card)
    write_json(Path(out).with_suffix(".history.json"), history, indent=1)
    return card


def _losses(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], centre: torch.Tensor,
            scale: torch.Tensor) -> dict[str, torch.Tensor]:
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
