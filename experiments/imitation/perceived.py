"""Perceived-state skills: a shipped state policy behind the scene estimator, evaluated and carded as rgbd_touch.

`compose` builds the policy (`agent.perceived_state.PerceivedStatePolicy`), measures it from chain starts and
plain resets with the kitchen rendering only cameras, touch and proprioception (the front camera at the
estimator's resolution), measures the chain starts again with episodes ended as the perceiving loop ends a skill
(`eval_perceived`, the rate a perceiving agent's `auto` trusts), and writes a card whose `perceived_state` entry
tells the agent how to rebuild it. The card points at the state policy's weights; nothing is trained here, so the
"training command" is the state policy's plus this composition.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.perceived_state import (
    ANCHOR_OFFSETS,
    HELD_OFFSETS,
    PERCEIVED_STATE_KEY,
    PerceivedStatePolicy,
    perceived_policy,
)
from agent.policy import PERCEIVED_EVAL_KEY, PolicyCard, load_sb3_policy, read_card
from envs.scene import CABINET_POSITION
from experiments.common.errors import InputError
from experiments.imitation.evaluate import evaluate_policy
from experiments.training.language import EmbeddingTable, all_texts
from perception.scene_estimator import SHIPPED_WEIGHTS, SceneEstimator
from perception.text import default_text_encoder

OPEN_OPENING = 0.13
"""Metres an open drawer is taken to stand out: the open skills leave it 0.12-0.15 m out on chain starts."""
PERCEIVABLE_TASKS = ("reach", "pick", "place_in", "place_on", "push")
"""Skills whose state policies read object rows (open and close have visuomotor students of their own)."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file: a perceived-state card names the exact state policy its evaluation measured."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def perceived_spec(estimator: str | Path | None, card_dir: Path, held_prior: bool = False,
                   headings: bool = False) -> dict[str, Any]:
    """The card's `perceived_state` entry: the estimator (relative to the card's folder) and the row geometry.

    `held_prior`: a held object's row rides with the hand (`HELD_OFFSETS`); off by default, because on the shipped
    place_on it measured no better (77/100 from chain starts against 81/100 without). `headings`: the rows carry
    the estimator's headings (the mug's handle side), which the estimator must read.
    """
    named = "shipped" if estimator is None or Path(estimator).resolve() == SHIPPED_WEIGHTS else \
        os.path.relpath(Path(estimator).resolve(), card_dir.resolve())
    return {"estimator": named, "cabinet_position": list(CABINET_POSITION), "open_opening": OPEN_OPENING,
            "anchor_offsets": {name: list(offset) for name, offset in ANCHOR_OFFSETS.items()},
            **({"held_offsets": {name: list(offset) for name, offset in HELD_OFFSETS.items()}} if held_prior else {}),
            **({"headings": True} if headings else {})}


def check_state_card(path: Path) -> PolicyCard:
    """The card at `path`, if it is a state policy of a skill that reads object rows; else a clear error."""
    card = read_card(path)
    if card.task not in PERCEIVABLE_TASKS or card.meta["obs_mode"] != "state":
        raise InputError(f"a perceived-state skill wraps a state policy of {', '.join(PERCEIVABLE_TASKS)}; "
                         f"{path} is a {card.meta['obs_mode']} policy for {card.task}")
    return card


def compose(state_card: Path, out_card: Path, estimator: str | Path | None, episodes: int, reset_episodes: int,
            prefix: str = "scripted", progress: Callable[[int, int], None] | None = None,
            held_prior: bool = False, headings: bool = False) -> dict[str, Any]:
    """Evaluate the perceived-state version of `state_card`'s policy and return its card (not yet written)."""
    card = check_state_card(state_card)
    card_dir = out_card.parent
    spec = perceived_spec(estimator, card_dir, held_prior, headings)
    weights = Path(estimator) if estimator is not None else SHIPPED_WEIGHTS
    policy: PerceivedStatePolicy = perceived_policy(load_sb3_policy(card.path), spec, card_dir,
                                                    SceneEstimator.load(weights))
    front = policy.rows.estimator.config.front_size
    table = EmbeddingTable.build(default_text_encoder(card.encoder), all_texts(card.task), source=card.encoder)
    chain = evaluate_policy(policy, card.task, "rgbd_touch", "chain", table, episodes, progress=progress,
                            prefix=prefix, front_image_size=front)
    reset = evaluate_policy(policy, card.task, "rgbd_touch", "reset", table, reset_episodes,
                            front_image_size=front) if reset_episodes else None
    # The same starts judged as the perceiving agent judges (at rest, seen twice; the oracle must agree then):
    # `--skills auto` with `--perception learned` trusts this rate, not the oracle-ended one.
    judged = evaluate_policy(policy, card.task, "rgbd_touch", "chain", table, episodes, prefix=prefix,
                             front_image_size=front, judge=policy.rows.estimator)
    senses = {key: {"shape": list(space.shape)} for key, space in policy.observation_space.spaces.items()}
    command = (f"embodia perceive-skill --card {state_card} --episodes {episodes} --reset-episodes {reset_episodes}"
               f"{f' --prefix {prefix}' if prefix != 'scripted' else ''}"
               f"{f' --estimator {estimator}' if estimator is not None else ''}"
               f"{' --held-prior' if held_prior else ''}{' --headings' if headings else ''} --out {out_card}")
    keep = {key: card.meta[key] for key in ("format", "task", "skill", "encoder", "goal_dim", "architecture",
                                            "shaping") if key in card.meta}
    return {**keep, "file": os.path.relpath(card.path.resolve(), card_dir.resolve()), "obs_mode": "rgbd_touch",
            "observation_keys": sorted(senses), "observation_space": senses, PERCEIVED_STATE_KEY: spec,
            "training": "perceived state: the state policy (see state_card) acting on the scene estimator's rows",
            "state_card": os.path.relpath(state_card.resolve(), card_dir.resolve()),
            "state_policy_sha256": file_sha256(card.path),
            "train_command": f"{card.meta['train_command']}; {command}",
            "eval": {"source": "embodia perceive-skill", **chain}, "eval_command": command,
            **({"eval_reset": reset} if reset else {}), PERCEIVED_EVAL_KEY: judged,
            "value_range": chain["value_range"]}
