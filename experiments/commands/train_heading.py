"""`embodia train-heading`: teach the scene estimator which way the mug's handle points (its heading head).

Example: `embodia train-heading --seeds 0:150 --eval-seeds 5000:5040 --out runs/heading/scene_estimator.pt`.
Frames are recorded from chain-like starts of the mug's skills with the scripted expert acting (with noise); the
estimator's segmenter is frozen and only the small heading head is fitted, on the mug's true yaw. The held-out
seeds give the share of frames whose handle side (the sign of the yaw's sine) is right, with a Wilson interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.commands.collect_scenes import seed_range
from experiments.common import args as args_types
from experiments.common.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train-heading` sub-command."""
    parser = subparsers.add_parser("train-heading", help="fit the scene estimator's mug-heading head",
                                   description=__doc__)
    parser.add_argument("--estimator", type=Path, default=None, help="estimator to extend (default: the shipped)")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0:150"), help="training seeds, START:STOP")
    parser.add_argument("--eval-seeds", type=seed_range, default=seed_range("5000:5040"),
                        help="held-out seeds, START:STOP (keep apart from --seeds)")
    parser.add_argument("--every", type=int, default=2, help="keep every k-th control step")
    parser.add_argument("--noise", type=float, default=0.2, help="std of the noise on the expert's actions")
    parser.add_argument("--workers", type=int, default=1, help="processes recording frames (the same frames)")
    parser.add_argument("--epochs", type=int, default=2000, help="full-batch steps of the heading head")
    parser.add_argument("--seed", type=int, default=0, help="the head's initialisation")
    parser.add_argument("--out", type=args_types.output_file, required=True, help="weights file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect frames, fit the head, report held-out figures, save the estimator with its head; 0 on success."""
    import time

    import torch
    from tqdm import tqdm

    from experiments.scene_estimation.heading import (
        HEADING_CALLS,
        collect_in_workers,
        fit_heading,
        heading_report,
        with_heading_head,
    )
    from perception.scene_estimator import SHIPPED_WEIGHTS, SceneEstimator

    if set(args.seeds) & set(args.eval_seeds):
        raise InputError(f"--seeds and --eval-seeds overlap ({args.seeds} and {args.eval_seeds}); keep them apart")
    if args.every < 1 or args.epochs < 1 or args.workers < 1 or not 0.0 <= args.noise <= 1.0:
        raise InputError(f"--every, --epochs and --workers must be >= 1 and --noise in [0, 1]; got {args.every}, "
                         f"{args.epochs}, {args.workers}, {args.noise}")
    torch.set_num_threads(1)
    source = args.estimator or SHIPPED_WEIGHTS
    estimator = with_heading_head(SceneEstimator.load(source))
    started = time.perf_counter()
    frames = {}
    for name, seeds in (("train", args.seeds), ("held-out", args.eval_seeds)):
        with tqdm(total=len(seeds), desc=f"{name} seeds", unit="seed") as bar:
            frames[name] = collect_in_workers(str(source), seeds, args.every, args.noise, args.workers,
                                              on_episode=lambda _seed, bar=bar: bar.update(1))
    losses = fit_heading(estimator, frames["train"], args.epochs, seed=args.seed)
    report = heading_report(estimator, frames["held-out"])
    train_report = heading_report(estimator, frames["train"])
    command = (f"embodia train-heading --seeds {args.seeds.start}:{args.seeds.stop} --eval-seeds "
               f"{args.eval_seeds.start}:{args.eval_seeds.stop} --every {args.every} --noise {args.noise} --epochs "
               f"{args.epochs} --seed {args.seed}{f' --estimator {args.estimator}' if args.estimator else ''} "
               f"--out {args.out}")
    estimator.card = {**estimator.card, "heading": {
        "objects": list(estimator.config.heading_objects), "calls": [[task, *call] for task, call in HEADING_CALLS],
        "train_frames": len(frames["train"]["target"]), "final_loss": round(losses[-1], 5),
        "train": train_report, "held_out": report, "minutes": round((time.perf_counter() - started) / 60, 1),
        "command": command}}
    estimator.save(args.out, estimator.card)
    for name, part in report.items():
        if isinstance(part, dict):
            low, high = part["side_ci"]
            print(f"held-out {name}: handle side right in {part['side_right']}/{part['frames']} frames "
                  f"[{low:.3f}, {high:.3f}], median error {part['median_error_deg']} deg")
    print(f"train frames {len(frames['train']['target'])}; wrote {args.out} (and {args.out}.json)")
    return 0
