"""PPO training throughput: environment frames per second with 1 and with 2 parallel envs, side by side.

Both settings train the task's own policy (its config file: state mode, network sizes, PPO settings; the
hashing text encoder stands in for MiniLM, whose sentence embeddings are computed once before training
anyway) with the same rollout size per update (`--rollout` steps in all), so the PPO update costs the
same per frame and the ratio shows what the second env buys. Start-up (worker processes, model build) is
excluded; the timed part is `model.learn`, i.e. rollouts plus updates. Settings alternate (1 env, 2 envs)
per repeat, so slow phases of a shared machine hit both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from experiments.common.errors import InputError

GOAL = 1.6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench train`: task, steps, rollout length, repeats and how the 2 envs run."""
    parser.add_argument("--task", default="reach", help="env task to train on")
    parser.add_argument("--steps", type=int, default=4096, help="timed environment steps per setting")
    parser.add_argument("--rollout", type=int, default=1024, help="environment steps per PPO update")
    parser.add_argument("--repeats", type=int, default=1, help="alternating repeats of (1 env, 2 envs)")
    parser.add_argument("--vec-env", choices=("subproc", "split", "actors"), default="actors",
                        help="2 envs as 2 worker processes (subproc), 1 in process + 1 worker (split), or 2 "
                             "workers that act with their own policy copies (actors)")
    parser.add_argument("--update-threads", type=int, default=1,
                        help="torch threads during each PPO update (both settings; the envs idle then)")
    parser.add_argument("--spare-worlds", type=int, default=None,
                        help="worlds each env worker builds ahead while idle (default: the config's)")


def _measure(task: str, n_envs: int, steps: int, rollout: int, update_threads: int, vec_env: str = "subproc",
             spare_worlds: int | None = None) -> dict[str, Any]:
    import torch

    from experiments.training.config import load_config
    from experiments.training.env import build_vec_env
    from experiments.training.language import EmbeddingTable, all_texts
    from experiments.training.session import RunPaths, UpdateThreadsCallback
    from experiments.training.train import new_model
    from perception.text import HashingTextEncoder

    torch.set_num_threads(1)
    overrides: dict[str, Any] = {"n_envs": n_envs, "n_steps": rollout // n_envs, "encoder": "hashing",
                                 "total_steps": steps, "update_threads": update_threads, "vec_env": vec_env}
    if spare_worlds is not None:
        overrides["spare_worlds"] = spare_worlds
    config = load_config(task, overrides)
    table = EmbeddingTable.build(HashingTextEncoder(), all_texts(task), "hashing")
    venv = build_vec_env(config, table)
    try:
        model = new_model(config, venv, RunPaths("/tmp/embodia-bench-train"), table)
        model.tensorboard_log = None
        started = time.perf_counter()
        cpu_started = time.process_time()
        model.learn(config.rounded(steps), callback=UpdateThreadsCallback(1, update_threads))
        seconds = time.perf_counter() - started
        learner_cpu = time.process_time() - cpu_started
    finally:
        venv.close()
    frames = config.rounded(steps)
    return {"n_envs": n_envs, "frames": frames, "seconds": seconds, "fps": frames / seconds,
            "learner_cpu_s": learner_cpu}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time PPO with 1 env and with 2 envs, alternating, and print the throughput table.

    Returns every row plus the best and median paired 2-env/1-env ratios. Raises ValueError unless --steps is at least
    --rollout and --rollout is even (2 envs split it evenly).
    """
    if args.steps < args.rollout or args.rollout % 2:
        raise InputError(f"--steps ({args.steps}) must be >= --rollout ({args.rollout}), and --rollout even")
    rows: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        for n_envs in (1, 2):
            rows.append(_measure(args.task, n_envs, args.steps, args.rollout, args.update_threads, args.vec_env,
                                 args.spare_worlds))
    best = {n: max(r["fps"] for r in rows if r["n_envs"] == n) for n in (1, 2)}
    ratio = best[2] / best[1]
    paired = sorted(two["fps"] / one["fps"] for one, two in zip(rows[::2], rows[1::2], strict=True))
    median = statistics.median(paired)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    spares = "config's" if args.spare_worlds is None else str(args.spare_worlds)
    print(f"PPO throughput, task {args.task}, {args.steps} steps per setting, rollout {args.rollout}, "
          f"{args.update_threads} update thread(s), 2 envs {args.vec_env}, spare worlds {spares}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}")
    print("| envs | frames | seconds | frames/s | learner CPU s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['n_envs']} | {row['frames']} | {row['seconds']:.1f} | {row['fps']:.0f} | "
              f"{row['learner_cpu_s']:.1f} |")
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"2 envs / 1 env: {ratio:.2f}x (best of {args.repeats} each); {verdict} the {GOAL}x goal. "
          f"Per repeat: {', '.join(f'{r:.2f}x' for r in paired)} (median {median:.2f}x)")
    return {"task": args.task, "update_threads": args.update_threads, "vec_env": args.vec_env,
            "spare_worlds": args.spare_worlds, "rows": rows, "fps_1": best[1], "fps_2": best[2], "ratio": ratio,
            "paired_ratios": paired, "median_ratio": median, "goal": GOAL, "load_average": load,
            "cpus": os.cpu_count()}
