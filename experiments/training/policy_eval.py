"""Evaluating a goal-conditioned policy: seeded episodes balanced over arguments, broken down by template.

Episode `i` uses seed `first_seed + i` and the task's `i mod n`-th argument tuple, so every argument gets
the same number of episodes and two evaluations of the same policy are identical. The sentence's template
(the skill-call text counts as one more template) is drawn from the seed. Success rates come with 95%
Wilson intervals overall, per template and per argument tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from experiments.common.errors import InputError
from experiments.common.media import caption_frame
from experiments.common.stats import wilson_interval

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
EVAL_SEED = 1_000_000


@dataclass
class EpisodeOutcome:
    """What one evaluation episode did."""

    seed: int
    args: tuple[str, ...]
    template: str
    instruction: str
    success: bool
    steps: int
    reward: float
    frames: list[np.ndarray] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON-safe values, without the rendered frames (those go to a video, not JSON)."""
        data = asdict(self)
        data.pop("frames")
        data["args"] = list(self.args)
        return data


def model_predictor(model: Any) -> Predict:
    """Deterministic actions from an SB3 model or policy (anything with `.predict`)."""
    return lambda obs: model.predict(obs, deterministic=True)[0]


def run_episode(env: gym.Env, predict: Predict, seed: int, args: tuple[str, ...], record: bool = False,
                frame_every: int = 2) -> EpisodeOutcome:
    """One episode of `env` (a LanguageTaskWrapper stack) with forced arguments."""
    obs, info = env.reset(seed=seed, options={"args": args})
    outcome = EpisodeOutcome(seed, tuple(args), info["instruction_template"], info["instruction"], False, 0, 0.0)
    while True:
        if record and outcome.steps % frame_every == 0:
            outcome.frames.append(caption_frame(env.render(), [outcome.instruction, f"step {outcome.steps}"]))
        obs, reward, terminated, truncated, info = env.step(predict(obs))
        outcome.steps += 1
        outcome.reward += float(reward)
        if terminated or truncated:
            outcome.success = bool(info["is_success"])
            break
    if record:
        verdict = "success" if outcome.success else "failure"
        outcome.frames.append(caption_frame(env.render(), [outcome.instruction, f"{verdict} at step {outcome.steps}"]))
    return outcome


EpisodeItem = tuple[int, tuple[str, ...], bool]
"""(seed, forced arguments, record frames) of one evaluation episode."""


def episode_items(arguments: list[tuple[str, ...]], episodes: int, first_seed: int = EVAL_SEED,
                  videos: int = 0) -> list[EpisodeItem]:
    """The evaluation's episodes: consecutive seeds, arguments in turn, frames for the first `videos`.

    Serial and Ray evaluations (and the critic calibration) all run exactly this list.
    """
    if episodes < 1:
        raise InputError(f"episodes must be >= 1, got {episodes}")
    return [(first_seed + i, tuple(arguments[i % len(arguments)]), i < videos) for i in range(episodes)]


def evaluate(env: gym.Env, predict: Predict, episodes: int, first_seed: int = EVAL_SEED, videos: int = 0,
             progress: Callable[[Iterable[EpisodeItem]], Iterable[EpisodeItem]] | None = None
             ) -> list[EpisodeOutcome]:
    """`episodes` seeded episodes balanced over the task's arguments; the first `videos` keep frames."""
    items: Iterable[EpisodeItem] = episode_items(env.get_wrapper_attr("arguments"), episodes, first_seed, videos)
    if progress is not None:
        items = progress(items)
    return [run_episode(env, predict, seed, args, record=record) for seed, args, record in items]


def rate_row(successes: int, trials: int) -> dict[str, Any]:
    """Success rate of `trials` episodes with its Wilson 95% interval; `trials` must be > 0."""
    low, high = wilson_interval(successes, trials)
    return {"episodes": trials, "successes": successes, "rate": successes / trials,
            "ci95": [round(low, 4), round(high, 4)]}


def _grouped(outcomes: list[EpisodeOutcome], key: Callable[[EpisodeOutcome], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = {}
    for outcome in outcomes:
        groups.setdefault(key(outcome), []).append(outcome.success)
    return {name: rate_row(sum(values), len(values)) for name, values in sorted(groups.items())}


def summarize(outcomes: list[EpisodeOutcome]) -> dict[str, Any]:
    """Overall, per-template and per-argument success rates with Wilson intervals."""
    if not outcomes:
        raise ValueError("no episodes to summarise")
    overall = rate_row(sum(o.success for o in outcomes), len(outcomes))
    overall["mean_steps"] = float(np.mean([o.steps for o in outcomes]))
    overall["mean_reward"] = float(np.mean([o.reward for o in outcomes]))
    return {**overall,
            "by_template": _grouped(outcomes, lambda o: o.template),
            "by_argument": _grouped(outcomes, lambda o: ", ".join(o.args))}


def eval_skill_text_fraction(task: str) -> float:
    """Skill-call share that makes it one template among equals in evaluation of `task`."""
    from envs.instructions import TEMPLATES

    return 1.0 / (len(TEMPLATES[task]) + 1)
