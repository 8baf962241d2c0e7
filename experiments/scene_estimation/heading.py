"""Teach the scene estimator which way the mug points: frames from the mug's skills, labels from the oracle.

The estimator's segmenter and relation head stay as shipped; only the heading head (`perception.heading`) is
fitted, on features the frozen segmenter gives. Frames come from chain-like starts of the skills that move the
mug (pick, place onto the plate or table, into the bowl or drawer, reach) and of a few that leave it in the
background, with the scripted expert acting and noise on its actions (so the arm and the mug are seen
everywhere along the way, held included); the label is the mug's true yaw as sine and cosine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from agent.perceived_state import ROWS
from experiments.common.errors import InputError
from experiments.common.stats import wilson_interval
from perception.heading import seen
from perception.scene_estimator import SceneEstimator, SceneEstimatorNet

HEADING_CALLS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pick", ("mug",)), ("place_on", ("mug", "plate")), ("place_on", ("mug", "table")),
    ("place_in", ("mug", "bowl")), ("place_in", ("mug", "drawer")), ("reach", ("mug",)),
    ("place_on", ("red_block", "plate")), ("pick", ("green_block",)))
"""The skill calls whose episodes give the frames: the mug's own, and two with the mug in the background."""
OBJECT = "mug"


def with_heading_head(estimator: SceneEstimator, objects: tuple[str, ...] = (OBJECT,)) -> SceneEstimator:
    """A copy of `estimator` with an untrained heading head for `objects`; every other weight is kept."""
    config = replace(estimator.config, heading_objects=objects)
    net = SceneEstimatorNet(config)
    missing, unexpected = net.load_state_dict(estimator.net.state_dict(), strict=False)
    stray = [key for key in missing if not key.startswith("heading.")]
    if stray or unexpected:
        raise InputError(f"the estimator's weights do not fit its heading copy: missing {stray}, "
                         f"unexpected {unexpected}")
    copy = SceneEstimator(config, net)
    copy.card = dict(estimator.card)
    return copy


def true_heading(scene_state: Any) -> tuple[float, float]:
    """The mug's (sin, cos) of yaw in the env's object rows."""
    from envs.observation import object_features

    row = object_features(scene_state)[ROWS.index(OBJECT) * 8: ROWS.index(OBJECT) * 8 + 8]
    return float(row[3]), float(row[4])


def collect_heading_frames(estimator: SceneEstimator, seeds: Iterable[int], every: int = 2, noise: float = 0.2,
                           on_episode: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Heading features of the frozen segmenter and the mug's true heading, on frames where a camera sees it.

    Each seed runs every call of `HEADING_CALLS` once from a chain-like start (rgbd_touch, the estimator's
    camera sizes), the recovering expert acting with Gaussian noise of `noise` on its actions; every `every`-th
    step is kept.
    """
    from experiments.imitation.rollout import SkillEnv, labelling_expert
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import HashingTextEncoder

    config = estimator.config
    frames: dict[str, list[Any]] = {"features": [], "target": [], "held": [], "call": [], "seed": []}
    envs: dict[str, SkillEnv] = {}
    try:
        for seed in seeds:
            for index, (task, args) in enumerate(HEADING_CALLS):
                if task not in envs:
                    # the goal sentence is not read here: a small hashing table stands in for MiniLM
                    table = EmbeddingTable.build(HashingTextEncoder(dim=8), all_texts(task), source="hashing")
                    envs[task] = SkillEnv(task, "rgbd_touch", "chain", table, image_size=config.image_size,
                                          front_image_size=config.front_size)
                env = envs[task]
                obs, info = env.reset(seed, args)
                expert = labelling_expert(env.env.task, "recovering")
                rng = np.random.default_rng([seed, index, 0x4EAD])
                step = 0
                while True:
                    if step % every == 0:
                        _keep(frames, estimator, obs, info["scene_state"], index, seed)
                    action = np.clip(expert.act(info["scene_state"]) + rng.normal(0.0, noise, 4), -1.0, 1.0)
                    obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
                    step += 1
                    if terminated or truncated:
                        break
            if on_episode is not None:
                on_episode(seed)
    finally:
        for env in envs.values():
            env.close()
    return {key: np.asarray(value, dtype=np.float32 if key in ("features", "target") else np.int32)
            for key, value in frames.items()}


def collect_in_workers(weights: str, seeds: range, every: int, noise: float, workers: int,
                       on_episode: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """`collect_heading_frames` over `seeds` split into `workers` processes, joined in seed order.

    Each worker loads the estimator from `weights` and adds an untrained heading head (the features come from the
    frozen segmenter, so the head's weights do not matter here); the frames are those one process would record.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    if workers <= 1:
        return collect_heading_frames(with_heading_head(SceneEstimator.load(weights)), seeds, every, noise,
                                      on_episode)
    bounds = np.linspace(seeds.start, seeds.stop, workers + 1).round().astype(int)
    parts = [range(int(a), int(b)) for a, b in pairwise(bounds.tolist()) if b > a]
    with ProcessPoolExecutor(len(parts), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_collect_part, weights, part, every, noise) for part in parts]
        results = []
        for future, part in zip(futures, parts, strict=True):
            results.append(future.result())
            if on_episode is not None:
                for seed in part:
                    on_episode(seed)
    return {key: np.concatenate([result[key] for result in results]) for key in results[0]}


def _collect_part(weights: str, seeds: range, every: int, noise: float) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    return collect_heading_frames(with_heading_head(SceneEstimator.load(weights)), seeds, every, noise)


def _keep(frames: dict[str, list[Any]], estimator: SceneEstimator, obs: dict[str, np.ndarray], state: Any,
          call: int, seed: int) -> None:
    with torch.no_grad():
        perceived = estimator.net.perceive(estimator.batch_tensors(obs))
    features = perceived["heading_features"][0, 0]
    if not bool(seen(features)):
        return
    frames["features"].append(features.numpy())
    frames["target"].append(true_heading(state))
    frames["held"].append(int(state.held == OBJECT))
    frames["call"].append(call)
    frames["seed"].append(seed)


def fit_heading(estimator: SceneEstimator, frames: dict[str, np.ndarray], epochs: int = 2000, lr: float = 3e-3,
                seed: int = 0) -> list[float]:
    """Fit the heading head on (features, true sin/cos) by mean squared error, full batch; returns the losses."""
    torch.manual_seed(seed)
    head = estimator.net.heading
    head.train()
    x, y = torch.from_numpy(frames["features"]), torch.from_numpy(frames["target"])
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    losses = []
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(head(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    head.eval()
    return losses


def heading_report(estimator: SceneEstimator, frames: dict[str, np.ndarray]) -> dict[str, Any]:
    """Figures on `frames`: how often the handle's side is right, and the median angle error.

    The side is the sign of the yaw's sine (the handle along +x or -x), with a Wilson interval, over all frames
    and with the mug held or not; the error is in degrees.
    """
    with torch.no_grad():
        predicted = estimator.net.heading(torch.from_numpy(frames["features"])).numpy()
    truth = frames["target"]
    side_right = np.sign(predicted[:, 0]) == np.sign(truth[:, 0])
    error = np.abs((np.arctan2(predicted[:, 0], predicted[:, 1]) - np.arctan2(truth[:, 0], truth[:, 1]) + math.pi)
                   % (2 * math.pi) - math.pi)
    report: dict[str, Any] = {"frames": len(truth)}
    for name, mask in (("all", np.ones(len(truth), bool)), ("held", frames["held"] == 1),
                       ("not_held", frames["held"] == 0)):
        right, total = int(side_right[mask].sum()), int(mask.sum())
        low, high = wilson_interval(right, total) if total else (0.0, 0.0)
        report[name] = {"side_right": right, "frames": total, "side_ci": [round(low, 4), round(high, 4)],
                        "median_error_deg": round(float(np.degrees(np.median(error[mask]))), 2) if total else None}
    return report
