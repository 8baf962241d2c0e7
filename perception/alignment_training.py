"""Training and evaluating the alignment model, and saving it as a checkpoint policies can start from.

Metrics (all on frames the model never saw, from held-out episode seeds):

* retrieval top-1: for each true statement of a frame, the model must rank it above 7 false ones
  (chance 1/8). `hard` distractors are about the same subject first ("the red block is in the bowl"
  against "... on the table"); `uniform` ones are any false statements.
* grasp detection: touch embedding closer to "holding an object" than to "empty", against the truth.
* the same numbers for the untrained model and for a text-only prior (the statement most often true
  in training, ignoring the frame), so it is visible how much the sensors contribute.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from tqdm import tqdm

from perception.alignment import (
    AlignmentConfig,
    AlignmentModel,
    multi_positive_infonce,
    obs_batch,
    random_brightness,
    random_shift,
    rarity_weights,
    truth_matrix,
)
from perception.checkpoint import load_checkpoint, save_checkpoint
from perception.errors import InputError
from perception.frames import FrameSet
from perception.statements import TOUCH_STATEMENTS, Fact, candidate_sets, fact_text, vocabulary
from perception.text import TextEncoder

log = logging.getLogger(__name__)


def _encode_facts(text: TextEncoder, facts: Sequence[Fact]) -> torch.Tensor:
    return torch.as_tensor(text.encode([fact_text(f) for f in facts]))


def _model_keys(model: AlignmentModel) -> list[str]:
    keys = [spec.key for cam in model.layout.cameras for spec in (cam.rgb, cam.depth) if spec is not None]
    return keys + ([model.layout.touch[0]] if model.layout.touch else [])


def _batch_loss(model: AlignmentModel, obs, truth, grasped, text_vocab, text_touch, weight) -> torch.Tensor:
    scale = model.scale()
    loss = multi_positive_infonce(scale * model.embed_vision(obs) @ model.embed_text(text_vocab).T, truth, weight)
    if model.touch_head is not None:
        positive = torch.stack([grasped, ~grasped], dim=1)
        text = model.embed_text(text_touch)
        loss = loss + multi_positive_infonce(scale * model.embed_touch(obs) @ text.T, positive)
    return loss


def train_alignment(
    frames: FrameSet,
    observation_space: spaces.Dict,
    text: TextEncoder,
    config: AlignmentConfig,
    seed: int = 0,
    progress: bool = False,
    initial: AlignmentModel | None = None,
) -> tuple[AlignmentModel, list[float], list[Fact]]:
    """Fit camera and touch encoders to the statements true of each frame.

    `initial` continues training an existing model (resume) instead of starting from scratch.

    Returns:
        The trained model, the mean loss per epoch, and the statement vocabulary it was trained on.
    """
    if len(frames) < 2:
        raise InputError(f"need at least 2 frames to train on, got {len(frames)}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = initial if initial is not None else AlignmentModel(observation_space, text.dim, config)
    model.train()
    vocab = vocabulary(frames.facts)
    text_vocab, text_touch = _encode_facts(text, vocab), torch.as_tensor(text.encode(list(TOUCH_STATEMENTS)))
    truth = torch.as_tensor(truth_matrix(frames.facts, vocab))
    grasped = torch.as_tensor(frames.grasped)
    weight = rarity_weights(truth, config.rarity_power)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(frames) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.epochs * steps_per_epoch)
    keys, history = _model_keys(model), []
    bar = tqdm(range(config.epochs), desc="align", unit="epoch", disable=not progress)
    for _ in bar:
        order, losses = rng.permutation(len(frames)), []
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            obs = random_shift(obs_batch(frames, index, keys), model, config.shift, generator)
            obs = random_brightness(obs, model, config.brightness, generator)
            loss = _batch_loss(model, obs, truth[index], grasped[index], text_vocab, text_touch, weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.eval()
    return model, history, vocab


@torch.no_grad()
def embed_frames(model: AlignmentModel, frames: FrameSet, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Vision (and touch, when present) embeddings of every frame, in text space."""
    model.eval()
    keys, vision, touch = _model_keys(model), [], []
    for start in range(0, len(frames), batch_size):
        obs = obs_batch(frames, np.arange(start, min(start + batch_size, len(frames))), keys)
        vision.append(model.embed_vision(obs).numpy())
        if model.touch_head is not None:
            touch.append(model.embed_touch(obs).numpy())
    out = {"vision": np.concatenate(vision)}
    if touch:
        out["touch"] = np.concatenate(touch)
    return out


@torch.no_grad()
def embed_sentences(model: AlignmentModel, sentences: torch.Tensor) -> np.ndarray:
    """Sentence embeddings mapped through the model's text head (what frames are compared with)."""
    return model.embed_text(sentences).numpy()


def retrieval_accuracy(
    scores: np.ndarray, facts: Sequence[Sequence[Fact]], vocab: Sequence[Fact], seed: int, hard: bool, k: int = 8
) -> dict[str, Any]:
    """Top-1 accuracy of picking each true statement among k candidates, overall and per predicate.

    `scores[i, j]` is how strongly frame i supports vocabulary statement j (higher is more likely true).
    """
    rng = np.random.default_rng(seed)
    index = {fact: j for j, fact in enumerate(vocab)}
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, frame in enumerate(facts):
        known = [fact for fact in frame if fact in index]
        for fact, distractors in candidate_sets(known, vocab, k, rng, hard=hard):
            candidates = [index[fact]] + [index[d] for d in distractors]
            row_scores = scores[row, candidates] + rng.uniform(0, 1e-9, len(candidates))  # random tie-break
            hits[fact[0]].append(int(np.argmax(row_scores)) == 0)
    every = [hit for group in hits.values() for hit in group]
    by_predicate = {name: float(np.mean(group)) for name, group in sorted(hits.items())}
    return {
        "top1": float(np.mean(every)) if every else float("nan"),
        "macro_top1": float(np.mean(list(by_predicate.values()))) if by_predicate else float("nan"),
        "n": len(every),
        "by_predicate": by_predicate,
        "n_by_predicate": {name: len(group) for name, group in sorted(hits.items())},
        "chance": 1.0 / k,
    }


def grasp_accuracy(touch: np.ndarray, text_touch: np.ndarray, grasped: np.ndarray) -> dict[str, Any]:
    """Accuracy of "holding" vs "empty" decided by which statement the touch embedding is closer to."""
    predicted = touch @ text_touch[0] > touch @ text_touch[1]
    positives, negatives = grasped.sum(), (~grasped).sum()
    recall = float((predicted & grasped).sum() / positives) if positives else float("nan")
    specificity = float((~predicted & ~grasped).sum() / negatives) if negatives else float("nan")
    return {
        "accuracy": float(np.mean(predicted == grasped)),
        "balanced_accuracy": float(np.nanmean([recall, specificity])),
        "recall_holding": recall,
        "recall_empty": specificity,
        "n_holding": int(positives),
        "n_empty": int(negatives),
    }


def evaluate_alignment(
    model: AlignmentModel,
    frames: FrameSet,
    text: TextEncoder,
    vocab: Sequence[Fact],
    prior_facts: Sequence[Sequence[Fact]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Retrieval and grasp metrics of `model` on `frames` (plus the text-only prior when `prior_facts`)."""
    vocab = sorted(set(vocab) | set(vocabulary(frames.facts)))
    embedded = embed_frames(model, frames)
    scores = embedded["vision"] @ embed_sentences(model, _encode_facts(text, vocab)).T
    out: dict[str, Any] = {
        "frames": len(frames),
        "retrieval_hard": retrieval_accuracy(scores, frames.facts, vocab, seed, hard=True),
        "retrieval_uniform": retrieval_accuracy(scores, frames.facts, vocab, seed, hard=False),
    }
    if prior_facts is not None:
        frequency = truth_matrix(prior_facts, vocab).mean(axis=0)
        prior = np.broadcast_to(frequency, scores.shape)
        out["prior_retrieval_hard"] = retrieval_accuracy(prior, frames.facts, vocab, seed, hard=True)
        out["prior_retrieval_uniform"] = retrieval_accuracy(prior, frames.facts, vocab, seed, hard=False)
    if "touch" in embedded:
        text_touch = embed_sentences(model, torch.as_tensor(text.encode(list(TOUCH_STATEMENTS))))
        out["grasp"] = grasp_accuracy(embedded["touch"], text_touch, frames.grasped)
    return out


def space_to_spec(space: spaces.Dict) -> dict[str, dict[str, Any]]:
    """A plain-data description of a Dict of Boxes (checkpoints hold no pickled objects)."""
    return {
        key: {
            "shape": list(box.shape),
            "dtype": str(box.dtype),
            "low": float(np.min(box.low)),
            "high": float(np.max(box.high)),
        }
        for key, box in space.spaces.items()
    }


def spec_to_space(spec: dict[str, dict[str, Any]]) -> spaces.Dict:
    """Inverse of `space_to_spec` (bounds are kept as scalars)."""
    return spaces.Dict(
        {
            key: spaces.Box(item["low"], item["high"], tuple(item["shape"]), np.dtype(item["dtype"]))
            for key, item in spec.items()
        }
    )


def save_alignment(path: str | Path, model: AlignmentModel, space: spaces.Dict, vocab: Sequence[Fact], **extra):
    """Checkpoint the encoders (loadable by `MultiModalExtractor(pretrained=...)`) and the heads."""
    encoders = {name: module.state_dict() for name, module in model.encoders.items()}
    heads = {key: value for key, value in model.state_dict().items() if not key.startswith("encoders.")}
    payload = {
        "encoders": encoders,
        "heads": heads,
        "config": {**asdict(model.config), "touch_grid": list(model.config.touch_grid or [])},
        "space": space_to_spec(space),
        "vocab": [list(f) for f in vocab],
        **extra,
    }
    return save_checkpoint(path, payload)


def load_alignment(path: str | Path, text_dim: int) -> tuple[AlignmentModel, spaces.Dict, list[Fact]]:
    """Rebuild the alignment model saved by `save_alignment`."""
    payload = load_checkpoint(path)
    if "heads" not in payload:
        raise InputError(f"{path} holds encoders only, not an alignment model (no projection heads)")
    config = dict(payload["config"])
    config["touch_grid"] = tuple(config["touch_grid"]) or None
    space = spec_to_space(payload["space"])
    model = AlignmentModel(space, text_dim, AlignmentConfig(**config))
    state = {f"encoders.{name}.{k}": v for name, sd in payload["encoders"].items() for k, v in sd.items()}
    model.load_state_dict({**state, **payload["heads"]})
    model.eval()
    return model, space, [tuple(f) for f in payload["vocab"]]
