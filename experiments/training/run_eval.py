"""`embodia eval` behind the CLI: evaluate a run's final policy, record it, and ship it to the agent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from agent.policy import DEFAULT_DIR, load_sb3_policy, read_card
from experiments.common.errors import InputError
from experiments.common.io import atomic_write
from experiments.common.jsonio import write_json
from experiments.common.media import save_gif
from experiments.training.config import from_mapping, read_yaml
from experiments.training.env import make_env
from experiments.training.language import EmbeddingTable
from experiments.training.policy_eval import (
    EVAL_SEED,
    EpisodeItem,
    episode_items,
    eval_skill_text_fraction,
    evaluate,
    model_predictor,
    run_episode,
    summarize,
)
from experiments.training.session import RunPaths


def _require_run(paths: RunPaths) -> None:
    if not paths.config.is_file():
        parent = paths.root.parent
        known = sorted(p.name for p in parent.iterdir() if (p / "config.yaml").is_file()) if parent.is_dir() else []
        raise FileNotFoundError(f"no run named {paths.root.name!r} in {parent}; runs there: "
                                f"{', '.join(known) or 'none'}")
    if not paths.policy.is_file():
        raise FileNotFoundError(f"run {paths.root} has no final policy ({paths.policy.name}); finish it with "
                                f"'embodia train --resume --name {paths.root.name}' first")


def evaluation_env(root: Path, render: bool) -> tuple[Any, Any, Any]:
    """(config, policy, env) of a run as `embodia eval` sees it: no shaping, skill text as one template."""
    paths = RunPaths(root)
    config = from_mapping(read_yaml(paths.config))
    policy = load_sb3_policy(paths.policy)
    table = EmbeddingTable.load(paths.embeddings)
    env = make_env(config, table, render=render,
                   skill_text_fraction=eval_skill_text_fraction(config.task))
    return config, policy, env


def _worker_state(root: str, render: bool) -> tuple[Any, Any]:
    _, policy, env = evaluation_env(Path(root), render)
    return env, model_predictor(policy)


def _worker_episode(state: tuple[Any, Any], item: EpisodeItem) -> Any:
    env, predict = state
    seed, args, record = item
    return run_episode(env, predict, seed, args, record=record)


def evaluate_on_ray(root: Path, items: list[EpisodeItem], workers: int | None = None,
                    address: str | None = None) -> list[Any]:
    """The evaluation's episodes spread over Ray workers (each loads the run once), results in order."""
    from functools import partial

    from experiments.common.distributed import ray_map

    render = any(record for _, _, record in items)
    return ray_map(partial(_worker_state, str(root), render), _worker_episode, items, workers, address)


def evaluate_run(root: Path, episodes: int, videos: int, seed: int | None, command: str,
                 progress: bool = True, ray: bool = False, ray_address: str | None = None,
                 ray_workers: int | None = None) -> dict[str, Any]:
    """Evaluate the run's `policy.safetensors`; writes eval.json, videos, the curve, report.md and updates the card.

    With `ray`, the episodes run on Ray workers; the seeds and arguments are the serial run's, so the
    numbers are identical.
    """
    from experiments.training.train import refresh_outputs

    paths = RunPaths(root)
    _require_run(paths)
    first_seed = EVAL_SEED if seed is None else seed
    config, policy, env = evaluation_env(root, render=videos > 0 and not ray)
    try:
        items = episode_items(env.get_wrapper_attr("arguments"), episodes, first_seed, videos)
        if ray:
            outcomes = evaluate_on_ray(root, items, ray_workers, ray_address)
        else:
            outcomes = evaluate(env, model_predictor(policy), episodes, first_seed,
                                videos=videos, progress=_bar(progress, episodes, config.task))
        values = start_values(env, policy, items, config.progress_reward, config.approach_reward)
    finally:
        env.close()
    written = [str(save_gif(paths.videos / f"episode_{i:02d}.gif", o.frames)) for i, o in enumerate(outcomes)
               if o.frames]
    result = {"command": command, "summary": summarize(outcomes), "videos": written,
              "value_range": [float(np.percentile(values, 5)), float(np.percentile(values, 95))],
              "episodes": [{**o.to_json(), "start_value": v} for o, v in zip(outcomes, values, strict=True)]}
    write_json(paths.eval, result, indent=1)
    _update_card(paths, result)
    refresh_outputs(paths)
    return result


def start_values(env: Any, policy: Any, items: list[EpisodeItem], progress_reward: float = 0.0,
                 approach_reward: float = 0.0) -> list[float]:
    """The unshaped value of the first observation of each evaluation episode (same seeds and arguments).

    The critic learnt the shaped return, V − Φ; the training shaping's potential Φ is added back. The spread
    of these values calibrates the policy as a SayCan affordance (`agent.policy.LearnedValueAffordance`).
    """
    import torch

    from experiments.training.language import shaping_potential

    base = env.unwrapped
    values = []
    for seed, args, _ in items:
        obs, _ = env.reset(seed=seed, options={"args": args})
        obs_tensor, _ = policy.obs_to_tensor(obs)
        with torch.no_grad():
            shaped = float(policy.predict_values(obs_tensor).reshape(-1)[0])
        state = base.scene_state()
        values.append(shaped + shaping_potential(base.task, state, state, progress_reward, approach_reward))
    return values


def _bar(enabled: bool, total: int, task: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return lambda items: tqdm(items, total=total, desc=f"eval {task}", unit="episode")


def _update_card(paths: RunPaths, result: dict[str, Any]) -> None:
    card = json.loads(paths.card.read_text())
    summary = result["summary"]
    card["eval"] = {"source": "embodia eval", "episodes": summary["episodes"], "successes": summary["successes"],
                    "rate": summary["rate"], "ci95": summary["ci95"],
                    "by_argument": {k: v["rate"] for k, v in summary["by_argument"].items()}}
    card["eval_command"] = result["command"]
    card["value_range"] = result["value_range"]
    config = read_yaml(paths.config)
    card["shaping"] = {"progress_reward": float(config.get("progress_reward", 0.0)),
                       "approach_reward": float(config.get("approach_reward", 0.0))}
    write_json(paths.card, card, indent=1)


def ship_policy(root: Path, policy_dir: Path | None = None) -> Path:
    """Copy the run's policy and card into the agent's policy folder as `<task>.safetensors` / `<task>.json`."""
    paths = RunPaths(root)
    _require_run(paths)
    card = json.loads(paths.card.read_text())
    if card.get("eval", {}).get("source") != "embodia eval":
        raise InputError(f"run {root.name} has only its training evaluation; run 'embodia eval --run {root.name}' "
                         f"before shipping so the card records a proper evaluation")
    target = Path(policy_dir or DEFAULT_DIR)
    target.mkdir(parents=True, exist_ok=True)
    task = card["task"]
    atomic_write(target / f"{task}{paths.policy.suffix}", lambda tmp: shutil.copyfile(paths.policy, tmp))
    card["file"] = f"{task}{paths.policy.suffix}"
    path = write_json(target / f"{task}.json", card, indent=1)
    read_card(path)  # the shipped pair must load as the agent will load it
    return path
