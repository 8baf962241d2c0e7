"""Env speed: raw physics vs env.step per observation mode, side by side with panda-gym.

The overhead ratio is env-step time divided by the physics the step must do (substeps x one raw
`stepSimulation` of the same scene, measured in the same process moments before), so machine
speed and background load cancel out; absolute steps/s are reported alongside.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments.media import save_png

MODES = (("state", 64), ("rgbd", 64), ("rgbd_touch", 64), ("rgbd", 128), ("rgbd_touch", 128))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=300, help="env steps per measurement block")
    parser.add_argument("--blocks", type=int, default=5, help="blocks per measurement (median taken)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_env"), help="folder for sample frames")
    parser.add_argument("--no-panda-gym", action="store_true", help="skip the panda-gym comparison")


def _median_time(fn: Callable[[], None], calls: int, blocks: int) -> float:
    """Median seconds per call over `blocks` blocks of `calls` calls."""
    samples = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def _measure_ours(mode: str, size: int, steps: int, blocks: int, out: Path) -> dict[str, float]:
    from envs.household import SUBSTEPS, HouseholdEnv

    env = HouseholdEnv(task="pick", obs_mode=mode, image_size=size)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps * blocks + 1, 4)).astype(np.float32)
    env.reset(seed=0)
    counter = iter(range(10**9))

    def env_step() -> None:
        _, _, terminated, truncated, _ = env.step(actions[next(counter) % len(actions)])
        if terminated or truncated:
            env.reset(seed=next(counter))

    env.reset(seed=0)
    raw = _median_time(lambda: env.sim.step(1), steps, blocks)
    env.reset(seed=0)
    step = _median_time(env_step, steps, blocks)
    obs, _ = env.reset(seed=0)
    if mode != "state":
        for key in obs:
            if key.startswith("rgb_"):
                save_png(out / f"{mode}_{size}_{key}.png", obs[key])
    env.close()
    return {"raw_step_us": raw * 1e6, "env_steps_per_s": 1.0 / step, "substeps": SUBSTEPS,
            "overhead_ratio": step / (SUBSTEPS * raw)}


def _measure_panda_gym(render: bool, steps: int, blocks: int, out: Path) -> dict[str, float] | None:
    try:
        import gymnasium as gym
        import panda_gym  # noqa: F401  (registers the ids)
    except ImportError:
        return None
    kwargs = {"render_mode": "rgb_array", "renderer": "Tiny", "render_width": 84, "render_height": 84}
    env = gym.make("PandaPickAndPlace-v3", **kwargs)
    sim = env.unwrapped.sim
    env.reset(seed=0)
    raw = _median_time(sim.physics_client.stepSimulation, steps, blocks)
    rng = np.random.default_rng(0)

    def env_step() -> None:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        if render:
            env.render()
        if terminated or truncated:
            env.reset()

    env.reset(seed=0)
    calls = max(20, steps // 10) if render else steps
    step = _median_time(env_step, calls, blocks)
    if render:
        save_png(out / "panda_gym_84.png", env.render())
    env.close()
    return {"raw_step_us": raw * 1e6, "env_steps_per_s": 1.0 / step, "substeps": sim.n_substeps,
            "overhead_ratio": step / (sim.n_substeps * raw)}


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for mode, size in MODES:
        steps = args.steps if mode == "state" else max(30, args.steps // 5)
        results[f"embodia {mode} {size}px"] = _measure_ours(mode, size, steps, args.blocks, args.out)
    if not args.no_panda_gym:
        for render in (False, True):
            figures = _measure_panda_gym(render, args.steps, args.blocks, args.out)
            if figures is None:
                print("panda-gym not installed (pip install 'embodia[bench]'); skipping the comparison")
                break
            results["panda-gym PickAndPlace " + ("rgb_array 84px" if render else "state")] = figures
    _print_table(results)
    print(f"sample frames: {args.out}/")
    return results


def _print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"{'configuration':36s} {'raw step µs':>12s} {'substeps':>9s} {'env steps/s':>12s} {'step/physics':>13s}")
    for name, row in results.items():
        print(f"{name:36s} {row['raw_step_us']:12.0f} {row['substeps']:9d} {row['env_steps_per_s']:12.1f} "
              f"{row['overhead_ratio']:12.2f}x")
