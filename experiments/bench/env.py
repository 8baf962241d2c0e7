"""Env speed: raw physics vs env.step per observation mode, side by side with panda-gym.

The overhead ratio is env-step time divided by the physics done inside those same steps (timed by
wrapping the simulator's step function, for us and for panda-gym alike), so machine speed, load and
contact-heavy moments cancel out. The ratio against substeps x one raw step timed at rest (the method
of the baselines quoted at the end of BENCHMARKS.md) is printed too; resets are timed apart and reported on
their own.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments.common import args as args_types
from experiments.common.media import save_png

MODES = (("state", 64), ("rgbd", 64), ("rgbd_touch", 64), ("rgbd", 128), ("rgbd_touch", 128))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench env`: steps and blocks per measurement, where frames go, panda-gym on or off."""
    parser.add_argument("--steps", type=int, default=300, help="env steps per measurement block")
    parser.add_argument("--blocks", type=int, default=5, help="blocks per measurement (median taken)")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/bench_env"),
                        help="folder for sample frames")
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


class _PhysicsClock:
    """Wraps a physics-step function and accumulates the CPU time this thread spends inside it.

    CPU time (not wall time) keeps the ratio honest on a busy machine: time spent descheduled while
    another process runs is charged to neither side.
    """

    def __init__(self, step: Callable[..., None]) -> None:
        self._step = step
        self.seconds = 0.0

    def __call__(self, *args: object) -> None:
        start = time.thread_time()
        self._step(*args)
        self.seconds += time.thread_time() - start


def _timed_rollout(step: Callable[[int], bool], reset: Callable[[int], None], clock: _PhysicsClock,
                   calls: int, blocks: int) -> tuple[float, float, float]:
    """Median wall time per step, median CPU-time ratio step/physics, median reset time (timed apart)."""
    step_times, ratios, reset_times = [], [], []
    counter = 0
    for _ in range(blocks):
        elapsed, cpu, physics = 0.0, 0.0, 0.0
        for _ in range(calls):
            counter += 1
            clock.seconds = 0.0
            start, start_cpu = time.perf_counter(), time.thread_time()
            done = step(counter)
            elapsed += time.perf_counter() - start
            cpu += time.thread_time() - start_cpu
            physics += clock.seconds
            if done:
                start = time.perf_counter()
                reset(counter)
                reset_times.append(time.perf_counter() - start)
        step_times.append(elapsed / calls)
        ratios.append(cpu / physics)
    return statistics.median(step_times), statistics.median(ratios), statistics.median(reset_times or [0.0])


def _measure_ours(mode: str, size: int, steps: int, blocks: int, out: Path) -> dict[str, float]:
    from envs.household import SUBSTEPS, HouseholdEnv

    env = HouseholdEnv(task="pick", obs_mode=mode, image_size=size)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(4096, 4)).astype(np.float32)
    env.reset(seed=0)
    raw = _median_time(lambda: env.sim.step(1), steps, blocks)
    clock = _PhysicsClock(env.sim.step)
    env.sim.step = clock  # instance attribute: env.step's physics calls now go through the clock

    def step(i: int) -> bool:
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        return terminated or truncated

    env.reset(seed=0)
    step_s, ratio, reset_s = _timed_rollout(step, lambda i: env.reset(seed=i), clock, steps, blocks)
    obs, _ = env.reset(seed=0)
    for key in obs:
        if key.startswith("rgb_"):
            save_png(out / f"{mode}_{size}_{key}.png", obs[key])
    env.close()
    return _figures(raw, step_s, ratio, reset_s, SUBSTEPS)


def _figures(raw: float, step_s: float, ratio: float, reset_s: float, substeps: int) -> dict[str, float]:
    return {"raw_step_us": raw * 1e6, "env_steps_per_s": 1.0 / step_s, "substeps": substeps,
            "overhead_ratio": ratio, "ratio_vs_raw_at_rest": step_s / (substeps * raw),
            "reset_ms": reset_s * 1e3}


def _measure_panda_gym(render: bool, steps: int, blocks: int, out: Path) -> dict[str, float] | None:
    try:
        import gymnasium as gym
        import panda_gym  # noqa: F401  (registers the ids)
    except ImportError:
        return None
    from envs.sim import quiet_stdout

    kwargs = {"render_mode": "rgb_array", "renderer": "Tiny", "render_width": 84, "render_height": 84}
    with quiet_stdout():  # panda-gym's PyBullet connect prints "argv[0]=..." lines from C
        env = gym.make("PandaPickAndPlace-v3", **kwargs)
    sim = env.unwrapped.sim
    env.reset(seed=0)
    raw = _median_time(sim.physics_client.stepSimulation, steps, blocks)
    clock = _PhysicsClock(sim.step)
    sim.step = clock
    rng = np.random.default_rng(0)

    def step(i: int) -> bool:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        if render:
            env.render()
        return terminated or truncated

    env.reset(seed=0)
    calls = max(20, steps // 10) if render else steps
    step_s, ratio, reset_s = _timed_rollout(step, lambda i: env.reset(seed=i), clock, calls, blocks)
    if render:
        save_png(out / "panda_gym_84.png", env.render())
    env.close()
    return _figures(raw, step_s, ratio, reset_s, sim.n_substeps)


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Time our env in each observation mode (and panda-gym when installed) and print the table.

    Returns the figures per configuration (raw and per-step µs, steps/s, step/physics and step/raw ratios, reset ms),
    which `embodia bench` can also write as JSON.
    """
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
    print("step/physics: env.step CPU time over the CPU time of the physics stepped inside it (same steps);")
    print("step/raw: env.step time over substeps x one raw step timed at rest (the baselines' method, BENCHMARKS.md).")
    header = f"{'configuration':36s} {'raw µs':>7s} {'subst':>6s} {'steps/s':>8s} {'step/physics':>13s} "
    print(header + f"{'step/raw':>9s} {'reset ms':>9s}")
    for name, row in results.items():
        print(f"{name:36s} {row['raw_step_us']:7.0f} {row['substeps']:6d} {row['env_steps_per_s']:8.1f} "
              f"{row['overhead_ratio']:12.2f}x {row['ratio_vs_raw_at_rest']:8.2f}x {row['reset_ms']:9.1f}")
