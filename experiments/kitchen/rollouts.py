"""Running scripted-expert episodes in the kitchen (used by `embodia experts`, the demo and data collection)."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.experts import make_expert
from envs.household import HouseholdEnv
from experiments.common.media import caption_frame


def run_expert_episode(
    task: str, seed: int, env: HouseholdEnv | None = None, record: bool = False,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One seeded expert episode; returns success, steps, the task and (if `record`) captioned frames."""
    own = env is None
    env = env or HouseholdEnv(task=task, render_mode="rgb_array" if record else None)
    try:
        _, info = env.reset(seed=seed, options={"task": task, **(options or {})})
        expert = make_expert(env.task)
        frames: list[np.ndarray] = []
        steps = 0
        for _ in range(env.horizon):
            steps += 1
            if record:
                frames.append(caption_frame(env.render(), [info["instruction"], f"expert: {expert.phase_name}"]))
            _, _, terminated, truncated, info = env.step(expert.act(info["scene_state"]))
            if terminated or truncated:
                break
        if record:
            frames.append(caption_frame(env.render(), [info["instruction"],
                                                       "success" if info["is_success"] else "failed"]))
        return {"task": info["task"], "instruction": info["instruction"], "seed": seed,
                "success": bool(info["is_success"]), "steps": steps, "frames": frames,
                "facts": info.get("facts", []), "physics_fault": bool(info["physics_fault"])}
    finally:
        if own:
            env.close()


def make_expert_env() -> HouseholdEnv:
    """A reusable env for `expert_episode_summary` (the state a Ray worker builds once)."""
    return HouseholdEnv(task="pick")


def expert_episode_summary(env: HouseholdEnv, item: tuple[str, int]) -> tuple[str, int, bool, int, list[list[str]]]:
    """(task, seed) → (task call, seed, success, steps, final facts): picklable, comparable across processes."""
    task, seed = item
    outcome = run_expert_episode(task, seed, env=env)
    return outcome["task"], seed, outcome["success"], outcome["steps"], outcome["facts"]
