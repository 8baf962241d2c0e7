"""Evaluating a skill policy from plain resets and from chain-like starts, with Wilson 95% intervals.

The sentence is always the agent's skill-call text (what `--skills learned` conditions on mid-chain). From plain
resets the arguments cycle through the task's valid arguments (balanced); from chain starts the env draws them
among those feasible where the sub-chain ended. Episode i uses seed `first_seed + i`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from envs.tasks import valid_arguments
from experiments.common.stats import wilson_interval
from experiments.imitation.rollout import SkillEnv
from experiments.training.language import EmbeddingTable
from perception.layout import GOAL_KEY

EVAL_SEED = 1_000_000


def evaluate_policy(policy: Any, task: str, obs_mode: str, start: str, table: EmbeddingTable, episodes: int,
                    first_seed: int = EVAL_SEED, progress: Callable[[int, int], None] | None = None,
                    prefix: str = "scripted", front_image_size: int | None = None,
                    judge: Any = None, blind_yaw: bool = False, crowd: bool = False) -> dict[str, Any]:
    """Success rate (with CI), per argument, and the critic's values at the episode starts.

    `prefix`: who runs the chain starts' sub-chains (see `experiments.imitation.learned_prefix`).
    `front_image_size`: the front camera's side where it differs from the wrist's (a perceived-state policy's
    estimator reads a finer front view). A policy with a `new_episode` method is told when a new scene starts.
    `judge`: None ends an episode when the oracle sees the task done; a `SceneEstimator` ends it as the perceiving
    agent's loop does (`experiments.kitchen.perceived_world`: the effect seen, at rest, on two steps), and the
    episode counts only if the oracle agrees at that step. The oracle credits a block the moment it lands on its
    target, even one that bounces off; the perceiving loop does not, so a skill's rate differs between the two.
    `blind_yaw`: the state rows' yaw read as 0 (a raw policy trained so; a card's policy does it itself).
    `crowd`: every chain start puts another object in the place's target first (`envs.chain_starts`): a stress test
    of a place skill on what chains meet and the plain mix rarely asks.

    The policy acts with one torch thread, as in the agent's sessions: the thread count changes the network's
    float rounding, a different action changes the physics, and the same policy scored 94/100 on one thread and
    96/100 on two. With one thread, `dagger`'s card, `eval-skill` and `bench skills` give the same figure.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _evaluate(policy, task, obs_mode, start, table, episodes, first_seed, progress, prefix,
                         front_image_size, judge, blind_yaw, crowd)
    finally:
        torch.set_num_threads(threads)


def _evaluate(policy: Any, task: str, obs_mode: str, start: str, table: EmbeddingTable, episodes: int,
              first_seed: int, progress: Callable[[int, int], None] | None, prefix: str,
              front_image_size: int | None, judge: Any, blind_yaw: bool = False,
              crowd: bool = False) -> dict[str, Any]:
    env = SkillEnv(task, obs_mode, start, table, skill_text_fraction=1.0, prefix=prefix,
                   front_image_size=front_image_size, blind_yaw=blind_yaw)
    world = None
    if judge is not None:
        from experiments.kitchen.perceived_world import PerceivedKitchenWorld

        world = PerceivedKitchenWorld(env.env, judge, score_with_oracle=False)
    arguments = valid_arguments(task)
    wins = 0
    by_argument: dict[str, list[int]] = {}
    values: list[float] = []
    try:
        for i in range(episodes):
            forced = arguments[i % len(arguments)] if start == "reset" else None
            obs, info = env.reset(first_seed + i, forced, crowd)
            if hasattr(policy, "new_episode"):
                policy.new_episode()
            key = ", ".join(info["task_args"])
            with torch.no_grad():
                tensor, _ = policy.obs_to_tensor(obs)
                values.append(float(policy.predict_values(tensor).reshape(-1)[0]))
            ok = _perceived_episode(world, policy, obs, info) if world is not None else _episode(env, policy, obs)
            wins += ok
            row = by_argument.setdefault(key, [0, 0])
            row[0] += ok
            row[1] += 1
            if progress:
                progress(i + 1, wins)
    finally:
        env.close()
    low, high = wilson_interval(wins, episodes)
    result: dict[str, Any] = {"start": start}
    if start == "chain":
        result["prefix"] = prefix
    if crowd:
        result["crowded"] = True
    return {**result, "episodes": episodes, "successes": wins, "rate": wins / episodes,
            "ci95": [round(low, 4), round(high, 4)],
            "by_argument": {k: round(s / n, 4) for k, (s, n) in sorted(by_argument.items())},
            "value_range": [float(np.percentile(values, 5)), float(np.percentile(values, 95))]}


def _episode(env: SkillEnv, policy: Any, obs: dict[str, np.ndarray]) -> bool:
    """Act until the oracle says done or the horizon ends; the oracle's verdict."""
    while True:
        action = policy.predict(obs, deterministic=True)[0]
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return bool(info["is_success"])


def _perceived_episode(world: Any, policy: Any, obs: dict[str, np.ndarray], info: dict[str, Any]) -> bool:
    """Act until perception sees the call done (or the horizon ends); success if the oracle agrees then."""
    from agent.errors import UnrunnableCallError
    from agent.skills import SkillCall

    task, args = str(info["task"]).split("(")[0], tuple(info["task_args"])
    call = SkillCall("place", (args[1],)) if task in ("place_in", "place_on") else SkillCall(task, args)
    goal = obs[GOAL_KEY]
    try:
        obs, _ = world.start_skill(call)  # a place places what perception says is held
    except UnrunnableCallError:
        return False
    while True:
        action = policy.predict({**obs, GOAL_KEY: goal}, deterministic=True)[0]
        obs, _, terminated, truncated, _ = world.step(action)
        if terminated:
            return _oracle_agrees(world, call)
        if truncated:
            return False


def _oracle_agrees(world: Any, call: Any) -> bool:
    """Whether the oracle sees the effect perception just confirmed.

    Pick and place are checked on the oracle's facts (the object held; in or on its target), which is what the
    agent's next step and its goal check rely on (perception's pick, like the oracle's task, also waits for the
    object to be lifted `envs.tasks.PICK_LIFT`). The other skills take the oracle's verdict.
    """
    from agent.skills import place_relation

    if call.skill == "pick":
        return world.env.scene_state().held == call.args[0]
    if call.skill == "place":
        item, target = world.env.task.args
        return [place_relation(target), item, target] in world.env.facts()
    return bool(world.oracle_steps[(call.skill, *call.args)])
