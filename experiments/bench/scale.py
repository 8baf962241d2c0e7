"""Scale-out: evaluation episodes per second, serial vs Ray workers, and Ray's start-up cost.

Both sides run the same seeded expert episodes (so the Ray results are also checked against the serial
ones); the speed-up is episodes/s with Ray over episodes/s serially, measured in one run.
"""

from __future__ import annotations

import argparse
import time

TASKS = ("pick", "place_in", "push", "open")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench scale`: episodes per side and Ray workers."""
    parser.add_argument("--episodes", type=int, default=40, help="episodes per side")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (local CPUs)")


def run(args: argparse.Namespace) -> dict[str, float]:
    """Run the same seeded expert episodes serially and on a Ray pool, and return the speed-up.

    Raises RuntimeError when the Ray results differ from the serial ones: a speed-up that changes the results does not
    count.
    """
    from experiments.common.distributed import WorkerPool, shutdown_ray
    from experiments.kitchen.rollouts import expert_episode_summary as _episode
    from experiments.kitchen.rollouts import make_expert_env as _make_env

    items = [(TASKS[i % len(TASKS)], i) for i in range(args.episodes)]
    env = _make_env()
    start = time.perf_counter()
    serial = [_episode(env, item) for item in items]
    serial_s = time.perf_counter() - start
    env.close()

    start = time.perf_counter()
    pool = WorkerPool(_make_env, _episode, workers=args.workers)
    pool.map(items[: args.workers])  # every actor has started and imported the simulator
    startup_s = time.perf_counter() - start
    start = time.perf_counter()
    parallel = pool.map(items)
    ray_s = time.perf_counter() - start
    pool.close()
    shutdown_ray()

    if parallel != serial:
        raise RuntimeError("Ray results differ from the serial run for the same seeds")
    figures = {"episodes": len(items), "serial_episodes_per_s": len(items) / serial_s,
               "ray_episodes_per_s": len(items) / ray_s, "speedup": serial_s / ray_s,
               "ray_startup_s": startup_s, "workers": args.workers,
               "successes": sum(row[2] for row in serial)}
    print(f"{'':24s}{'episodes/s':>12s}")
    print(f"{'serial (1 process)':24s}{figures['serial_episodes_per_s']:12.2f}")
    print(f"{f'Ray, {args.workers} workers':24s}{figures['ray_episodes_per_s']:12.2f}")
    print(f"speed-up {figures['speedup']:.2f}x (results identical: yes); Ray start-up {startup_s:.1f} s "
          "(ray.init + actors built and warmed, outside the timed run)")
    return figures
