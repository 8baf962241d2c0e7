"""One multi-task, language-conditioned policy (CALVIN/LIBERO style) against per-skill policies, on the same data.

The per-skill DAgger runs leave their rounds as Minari datasets. This trains one policy by behaviour cloning on the
union of those datasets (the goal embedding names the task: every task's sentences go into one embedding table),
then evaluates it per task from chain starts, so the two designs are compared on identical demonstrations and the
same evaluation episodes. Run: `python -m experiments.imitation.multitask runs/dagger/pick_state_chain_s0 ...`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from experiments.imitation.dataset import load_dataset, transitions
from experiments.imitation.evaluate import evaluate_policy
from experiments.training.bc import ExpertData, pretrain
from experiments.training.config import head_kwargs, load_config, neighbour_kwargs, policy_class
from experiments.training.language import EmbeddingTable, all_texts


def _multitask_table(tasks: list[str], encoder: str) -> EmbeddingTable:
    from perception.text import default_text_encoder

    texts = list(dict.fromkeys(t for task in tasks for t in all_texts(task)))
    return EmbeddingTable.build(default_text_encoder(encoder), texts, source=encoder)


def train_multitask(runs: list[Path], episodes: int, seed: int = 0) -> dict[str, Any]:
    """BC on every dataset of `runs` together; per-task evaluation from chain starts (`episodes` each)."""
    from agent.policy_features import standardized_policy_kwargs

    summaries = [json.loads((run / "dagger.json").read_text()) for run in runs]
    tasks = [s["config"]["task"] for s in summaries]
    encoder = summaries[0]["config"]["encoder"]
    table = _multitask_table(tasks, encoder)
    config = load_config("pick", {"seed": seed})
    started = time.perf_counter()
    parts = [transitions([load_dataset(run / "data", name) for name in s["datasets"]], config.gamma)
             for run, s in zip(runs, summaries, strict=True)]
    observations = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    data = ExpertData(observations, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
                      sum(p[3] for p in parts), sum(p[4] for p in parts))
    torch.manual_seed(seed)
    from gymnasium import spaces

    obs_space = spaces.Dict({"proprio": spaces.Box(-np.inf, np.inf, observations["proprio"].shape[1:], np.float32),
                             "objects": spaces.Box(-np.inf, np.inf, observations["objects"].shape[1:], np.float32),
                             "goal": spaces.Box(-1.0, 1.0, (table.dim,), np.float32)})
    kwargs = standardized_policy_kwargs(token_dim=config.token_dim, fusion=config.fusion, cnn_width=config.cnn_width,
                                        object_heads=config.object_heads, **neighbour_kwargs(config))
    policy = policy_class(config)(obs_space, spaces.Box(-1.0, 1.0, (4,), np.float32),
                                  lambda _: config.bc_learning_rate, **head_kwargs(config),
                                  net_arch={"pi": list(config.net_arch), "vf": list(config.net_arch)},
                                  log_std_init=config.log_std_init, **kwargs)
    policy.features_extractor.set_statistics({"proprio": observations["proprio"], "objects": observations["objects"],
                                              "goal": table.encode(table.texts)})
    fit = pretrain(SimpleNamespace(policy=policy), data, config)
    fit_s = time.perf_counter() - started
    results = {}
    for task, summary in zip(tasks, summaries, strict=True):
        single = summary["evaluation"]["chain"]
        multi = evaluate_policy(policy, task, "state", "chain", table, episodes)
        results[task] = {"multitask": multi, "per_skill": single}
    return {"tasks": tasks, "samples": len(data), "fit_s": round(fit_s, 1), "final_nll": fit["curve"][-1]["nll"],
            "results": results}


def main(argv: list[str] | None = None) -> int:
    """Train the multi-task policy on the given DAgger runs' datasets and print its per-task success."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("runs/dagger/multitask.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = train_multitask(args.runs, args.episodes)
    from experiments.common.io import atomic_write_text

    atomic_write_text(args.out, json.dumps(result, indent=1))
    for task, row in result["results"].items():
        m, s = row["multitask"], row["per_skill"]
        print(f"{task:9s} multi-task {m['successes']}/{m['episodes']} [{m['ci95'][0]:.2f}, {m['ci95'][1]:.2f}]   "
              f"per-skill {s['successes']}/{s['episodes']} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
