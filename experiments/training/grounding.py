"""Grounding warm start: teach the policy's object attention which object each sentence names.

Before PPO, the attention heads of `agent.policy_features.ObjectAttention` are trained by cross-entropy
to put their weight on the object slot that the sentence's arguments name (head 0: the object acted on;
head 1: the container or support, where that is one of the object rows). Only sentence → argument labels
are used, which the task sampler provides anyway; no expert actions. Without it, attention starts uniform,
so the policy first learns to move to the *average* object and needs a long time to become selective.
"""

from __future__ import annotations

import logging
import time
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
    texts, labels = [], []
    for args, rows in instruction_variants(task).items():
        slots = [SLOTS.index(a) if a in SLOTS else -1 for a in args[:2]]
        slots += [-1] * (2 - len(slots))
        for row in rows:
            texts.append(row.text)
            labels.append(slots)
    return table.encode(texts), np.asarray(labels, dtype=np.int64)


def pretrain_grounding(model: Any, config: TrainConfig, table: EmbeddingTable, objects: np.ndarray,
                       steps: int) -> dict[str, Any]:
    """Cross-entropy on the attention weights; returns accuracy before/after and timing."""
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
    generator = np.random.default_rng([config.seed, 0x6A0D])
    optimizer = torch.optim.Adam(attention.parameters(), lr=1e-3)
    started = time.perf_counter()
    before = grounding_accuracy(extractor, goals, labels, objects, heads)
    for _ in range(steps):
        sentence = generator.integers(len(goals), size=128)
        scene = generator.integers(len(objects), size=128)
        weights = _weights(extractor, goals[sentence], objects[scene])
        target = torch.as_tensor(labels[sentence, :heads])
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
    return {"steps": steps, "accuracy_before": before, "accuracy_after": after,
            "seconds": time.perf_counter() - started}


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
