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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.scene_estimation.training_common import (
    LABEL_KEYS,
    MASK_KEYS,
    TrainConfig,
    accumulate,
    estimator_losses,
    frame_tensors,
    load_training_frames,
    optimise,
    save_trained,
    visible_labels,
)
from perception.scene_estimator import EstimatorConfig, SceneEstimatorNet

__all__ = ["LABEL_KEYS", "MASK_KEYS", "TrainConfig", "load_training_frames", "train", "visible_labels"]

log = logging.getLogger(__name__)


def train(folders: Sequence[Path], out: Path, config: TrainConfig, progress: bool = False) -> dict[str, Any]:
    """Train on the frames under `folders`; save `out` (weights) and `out.json` (config + card); return a summary."""
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    if config.arch == "segment":
        from experiments.scene_estimation.train_segment import train_segment

        return train_segment(folders, out, config, progress)
    frames, meta = load_training_frames(folders)
    image_size, front_size = int(frames["rgb_wrist"].shape[1]), int(frames["rgb_front"].shape[1])
    locations = tuple(meta["locations"])
    estimator_config = EstimatorConfig(objects=tuple(meta["objects"]), locations=locations, image_size=image_size,
                                       front_image_size=front_size if front_size != image_size else 0,
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
            batch = frame_tensors(frames, np.sort(order[start:start + config.batch_size]))
            losses = estimator_losses(net(batch), batch, centre, scale)
            loss = (losses["location"] + losses["visible"] + losses["drawer"] + losses["holding"]
                    + config.position_weight * losses["position"])
            optimise(optimiser, schedule, loss)
            accumulate(totals, losses, len(batch["location"]))
        row = {"epoch": epoch + 1, **{k: round(v / n, 5) for k, v in totals.items()},
               "seconds": round(time.perf_counter() - started, 1)}
        history.append(row)
        log.info("epoch %s", row)
    return save_trained(net, estimator_config, folders, n, config, history, out)
