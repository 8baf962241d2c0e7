"""Grounding warm start: teach the policy's object attention which object each sentence names.

Before PPO, the attention heads of `agent.policy_features.ObjectAttention` are trained by cross-entropy
to put their weight on the object slot that the sentence's arguments name (head 0: the object acted on;
head 1: the container or support, where that is one of the object rows). Only sentence → argument labels
are used, which the task sampler provides anyway; no expert actions. Without it, attention starts uniform,
so the policy first learns to move to the *average* object and needs a long time to become selective.

Paired scenes: where the scenes come with the sentence each was recorded under (imitation data), half of every
batch keeps those pairs. That matters when the sentence alone is ambiguous: "put the red block on the blue block"
and "put the blue block on the red block" embed 0.995 apart (cosine, MiniLM), but in the recorded scene the
object to place is the one in the hand, so the head can learn "the named block that is not held".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agent.policy_features import OBJECTS_KEY
from experiments.common.errors import InputError
from experiments.training.config import TrainConfig
from experiments.training.language import EmbeddingTable, instruction_variants
from perception.layout import GOAL_KEY

logger = logging.getLogger(__name__)
SLOTS = ("red_block", "green_block", "blue_block", "yellow_block", "mug", "bowl", "plate")
"""Object rows of the env's `objects` observation, in order (docs/ENV_CONTRACT.md)."""


def grounding_labels(task: str, table: EmbeddingTable) -> tuple[np.ndarray, np.ndarray]:
    """Goal vectors of every sentence and, per attention head, the slot it should pick (-1: no label)."""
    texts, arguments = [], []
    for args, rows in instruction_variants(task).items():
        for row in rows:
            texts.append(row.text)
            arguments.append(args)
    return table.encode(texts), argument_labels(arguments)


def argument_labels(arguments: Sequence[Sequence[str]]) -> np.ndarray:
    """Per head, the slot each argument tuple names (-1 where an argument is no object row, e.g. the drawer)."""
    rows = []
    for args in arguments:
        slots = [SLOTS.index(a) if a in SLOTS else -1 for a in list(args)[:2]]
        rows.append(slots + [-1] * (2 - len(slots)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def pretrain_grounding(model: Any, config: TrainConfig, table: EmbeddingTable, objects: np.ndarray,
                       steps: int, scene_goals: np.ndarray | None = None,
                       scene_labels: np.ndarray | None = None) -> dict[str, Any]:
    """Cross-entropy on the attention weights; returns accuracy before/after and timing.

    Args:
        model: anything with a `.policy` whose features extractor has object attention.
        config: the run's config (task and seed).
        table: embeddings of every sentence of the task.
        objects: `objects` observations to draw scenes from.
        steps: optimiser steps (batches of 128).
        scene_goals: the goal vector each of `objects` was recorded with (optional; with `scene_labels`): half
            of every batch then uses these (sentence, scene) pairs, the other half random pairs.
        scene_labels: per scene, the slot each head should pick (`argument_labels` of the episode's arguments).
    """
    extractor = model.policy.features_extractor
    attention = extractor.object_attention
    if attention is None:
        raise InputError("grounding needs object attention (state mode with object_heads > 0)")
    goals, labels = grounding_labels(config.task, table)
    heads = min(attention.heads, labels.shape[1])
    if not (labels[:, :heads] >= 0).any():
        # e.g. "open the drawer": no sentence names an object row, so there is nothing to teach.
        logger.info("grounding skipped: no %s sentence names an object row", config.task)
        return {"steps": 0, "skipped": f"no {config.task} sentence names an object row"}
    pairs = None
    if (scene_goals is None) != (scene_labels is None):
        raise InputError("paired grounding needs both scene_goals and scene_labels, or neither")
    if scene_goals is not None and scene_labels is not None:
        if not len(scene_goals) == len(scene_labels) == len(objects):
            raise InputError(f"scene_goals has {len(scene_goals)} rows, scene_labels {len(scene_labels)} and objects "
                             f"{len(objects)}; expected one goal and one label row per scene")
        scene_goals, pairs = np.asarray(scene_goals, np.float32), np.asarray(scene_labels, np.int64)
    generator = np.random.default_rng([config.seed, 0x6A0D])
    optimizer = torch.optim.Adam(attention.parameters(), lr=1e-3)
    started = time.perf_counter()
    before = grounding_accuracy(extractor, goals, labels, objects, heads)
    before_paired = _paired_accuracy(extractor, scene_goals, pairs, objects, heads)
    for _ in range(steps):
        sentence = generator.integers(len(goals), size=128)
        scene = generator.integers(len(objects), size=128)
        batch_goals, batch_labels = goals[sentence], labels[sentence, :heads]
        if pairs is not None:
            batch_goals = batch_goals.copy()
            batch_labels = batch_labels.copy()
            batch_goals[:64], batch_labels[:64] = scene_goals[scene[:64]], pairs[scene[:64], :heads]
        weights = _weights(extractor, batch_goals, objects[scene])
        target = torch.as_tensor(batch_labels)
        log_weights = torch.log(weights[:, :heads].clamp_min(1e-8))
        mask = target >= 0
        if not mask.any():
            continue
        loss = -(log_weights.gather(2, target.clamp_min(0).unsqueeze(-1)).squeeze(-1) * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = grounding_accuracy(extractor, goals, labels, objects, heads)
    logger.info("grounding: attention accuracy %s -> %s", before, after)
    report = {"steps": steps, "accuracy_before": before, "accuracy_after": after,
              "seconds": time.perf_counter() - started}
    if pairs is not None:
        report |= {"paired_accuracy_before": before_paired,
                   "paired_accuracy_after": _paired_accuracy(extractor, scene_goals, pairs, objects, heads)}
        logger.info("grounding on recorded pairs: %s -> %s", before_paired, report["paired_accuracy_after"])
    return report


def _paired_accuracy(extractor: Any, scene_goals: np.ndarray | None, pairs: np.ndarray | None, objects: np.ndarray,
                     heads: int, limit: int = 4096) -> list[float] | None:
    """Per head: share of recorded (sentence, scene) pairs (up to `limit`, evenly spaced) attended right."""
    if pairs is None or scene_goals is None:
        return None
    index = np.linspace(0, len(objects) - 1, min(limit, len(objects))).astype(int)
    with torch.no_grad():
        picked = _weights(extractor, scene_goals[index], objects[index]).argmax(dim=-1).numpy()
    result = []
    for head in range(heads):
        mask = pairs[index, head] >= 0
        result.append(float((picked[mask, head] == pairs[index, head][mask]).mean()) if mask.any() else float("nan"))
    return result


def _weights(extractor: Any, goals: np.ndarray, objects: np.ndarray) -> torch.Tensor:
    scaled = extractor.standardize({GOAL_KEY: torch.as_tensor(goals), OBJECTS_KEY: torch.as_tensor(objects)})
    weights, _, _ = extractor.object_attention.weights(scaled[OBJECTS_KEY], scaled[GOAL_KEY])
    return weights


def grounding_accuracy(extractor: Any, goals: np.ndarray, labels: np.ndarray, objects: np.ndarray,
                       heads: int) -> list[float]:
    """Per head: share of labelled (sentence, scene) pairs whose strongest attention is on the right slot."""
    with torch.no_grad():
        scenes = objects[np.arange(len(goals)) % len(objects)]
        picked = _weights(extractor, goals, scenes).argmax(dim=-1).numpy()
    result = []
    for head in range(heads):
        mask = labels[:, head] >= 0
        result.append(float((picked[mask, head] == labels[mask, head]).mean()) if mask.any() else float("nan"))
    return result
