"""Skills mid-chain: each shipped learned skill against its scripted expert, from the same chain-like starts.

Issue 14's per-skill figure. Episode i of a task uses seed `--seed + i` for both the expert and the learned
policy, so the two start from the same state (the start is drawn from the env's seeded generator); the learned
policy is conditioned on the agent's skill-call sentence, as inside `--skills learned` chains. Rates come with
Wilson 95% intervals; the ratio learned/expert says how much of the expert's success the student keeps.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.common import args as args_types
from experiments.common.errors import InputError, UnknownNameError
from experiments.common.stats import wilson_interval

OBS_DIRS = {"state": "", "rgbd_touch": "rgbd_touch"}
"""Where each observation set's shipped policies live, under `agent/skill_policies/`."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `embodia bench skills`."""
    parser.add_argument("--tasks", nargs="+", default=None,
                        help="tasks to measure (default: every shipped policy of the observation set)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task, for each of the two")
    parser.add_argument("--seed", type=args_types.seed, default=1_000_000,
                        help="first episode seed (the cards' evaluation seed)")
    parser.add_argument("--obs-mode", default="state", help="state or rgbd_touch: which shipped policies")
    parser.add_argument("--prefix", default="scripted",
                        help="who runs a chain start's sub-chain: scripted, learned or mixed")
    parser.add_argument("--crowd", action="store_true",
                        help="places only: every start has another object in the target already (the bowl, the "
                             "drawer or the plate) or, for the table or a block, the object lifted off a support; "
                             "for both the expert and the learned policy")


def shipped_tasks(policy_dir: Path) -> list[str]:
    """The tasks with a shipped card in `policy_dir`, in the env's task order."""
    from envs.tasks import TASK_NAMES

    return [task for task in TASK_NAMES if (policy_dir / f"{task}.json").is_file()]


def expert_success(task: str, obs_mode: str, prefix: str, seeds: range,
                   progress: Callable[[], None] | None = None, crowd: bool = False) -> list[bool]:
    """The scripted expert's outcome from each seed's chain-like start (`progress` is called after each)."""
    from experiments.imitation.rollout import SkillEnv, rollout

    env = SkillEnv(task, obs_mode, "chain", _hashing_table(task), skill_text_fraction=1.0, prefix=prefix)
    outcomes = []
    try:
        for seed in seeds:
            outcomes.append(rollout(env, seed, crowd=crowd).success)
            if progress is not None:
                progress()
        return outcomes
    finally:
        env.close()


def _hashing_table(task: str) -> Any:
    """The task's sentences embedded by the hashing encoder, for the expert's episodes.

    The expert reads the scene, never the goal, so MiniLM need not load for it; the starts do not depend on the
    table (a test checks that the expert's and the learned policy's starts are the same).
    """
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import HashingTextEncoder

    return EmbeddingTable.build(HashingTextEncoder(), all_texts(task), source="hashing")


def _row(name: str, outcomes: list[bool]) -> dict[str, Any]:
    wins = sum(outcomes)
    low, high = wilson_interval(wins, len(outcomes))
    return {"who": name, "episodes": len(outcomes), "successes": wins, "rate": wins / len(outcomes),
            "ci95": [round(low, 4), round(high, 4)]}


def measure_task(task: str, card_path: Path, obs_mode: str, prefix: str, first_seed: int, episodes: int,
                 progress: Callable[[], None] | None = None, crowd: bool = False) -> dict[str, Any]:
    """Expert and learned policy from the same `episodes` chain starts of `task`, with their wall times.

    `progress` is called after every episode of either (2 x `episodes` calls).
    """
    from agent.policy import load_card_policy, read_card
    from experiments.imitation.evaluate import evaluate_policy
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import default_text_encoder

    card = read_card(card_path)  # a bad card fails before any episode runs
    if card.meta["obs_mode"] != obs_mode:
        raise InputError(f"{card_path} is a {card.meta['obs_mode']!r} policy, expected {obs_mode!r}")
    policy = load_card_policy(card)  # a perceived-state card: the state policy behind the scene estimator
    rows = getattr(policy, "rows", None)
    front = rows.estimator.config.front_size if rows is not None else None
    seeds = range(first_seed, first_seed + episodes)
    started = time.perf_counter()
    expert = _row("expert", expert_success(task, obs_mode, prefix, seeds, progress, crowd))
    expert["seconds"] = round(time.perf_counter() - started, 1)
    table = EmbeddingTable.build(default_text_encoder(card.encoder), all_texts(task), source=card.encoder)
    started = time.perf_counter()
    result = evaluate_policy(policy, task, obs_mode, "chain", table, episodes, first_seed=first_seed, prefix=prefix,
                             progress=None if progress is None else lambda done, wins: progress(),
                             front_image_size=front, crowd=crowd)
    learned = {"who": "learned", **{k: result[k] for k in ("episodes", "successes", "rate", "ci95")},
               "seconds": round(time.perf_counter() - started, 1)}
    ratio = learned["rate"] / expert["rate"] if expert["rate"] else None
    return {"task": task, "card": str(card_path), "expert": expert, "learned": learned, "learned_over_expert": ratio}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every chosen task, print the side-by-side table, return the figures."""
    import torch
    from tqdm import tqdm

    from agent.policy import DEFAULT_DIR
    from experiments.imitation.learned_prefix import check_prefix

    torch.set_num_threads(1)  # as `evaluate_policy` does: learned-prefix starts then act as they do in training
    if args.obs_mode not in OBS_DIRS:
        raise InputError(f"unknown observation set {args.obs_mode!r}; expected one of: {', '.join(OBS_DIRS)}")
    check_prefix(args.prefix, "chain")
    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    policy_dir = DEFAULT_DIR / OBS_DIRS[args.obs_mode]
    available = shipped_tasks(policy_dir)
    tasks = args.tasks or available
    if args.crowd:
        from envs.chain_starts import PLACE_TASKS

        tasks = args.tasks or [task for task in available if task in PLACE_TASKS]
        if any(task not in PLACE_TASKS for task in tasks):
            raise InputError(f"--crowd crowds a place's target; it takes only {', '.join(PLACE_TASKS)}, got "
                             f"{', '.join(tasks)}")
    for task in tasks:
        if task not in available:
            raise UnknownNameError(f"no shipped {args.obs_mode} policy for task {task!r}; shipped: "
                                   f"{', '.join(available)}")
    rows = []
    crowded = "crowded " if args.crowd else ""
    print(f"{args.obs_mode} skills from {args.prefix}-prefix {crowded}chain starts, seeds {args.seed}.."
          f"{args.seed + args.episodes - 1} (the same starts for the expert and the learned policy)")
    print(f"{'task':9s} {'expert':>22s} {'learned':>22s} {'learned/expert':>15s}")
    for task in tasks:
        with tqdm(total=2 * args.episodes, desc=f"{task} (expert, then learned)", leave=False) as bar:
            row = measure_task(task, policy_dir / f"{task}.json", args.obs_mode, args.prefix, args.seed,
                               args.episodes, progress=bar.update, crowd=args.crowd)
        rows.append(row)
        cells = [f"{r['successes']}/{r['episodes']} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
                 for r in (row["expert"], row["learned"])]
        ratio = "-" if row["learned_over_expert"] is None else f"{row['learned_over_expert']:.2f}"
        print(f"{task:9s} {cells[0]:>22s} {cells[1]:>22s} {ratio:>15s}", flush=True)
    return {"obs_mode": args.obs_mode, "prefix": args.prefix, "crowd": args.crowd, "first_seed": args.seed,
            "episodes": args.episodes, "tasks": rows}
