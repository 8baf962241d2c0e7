"""`embodia pretrain-perception`: ground the camera and touch encoders in language.

Collects frames in the kitchen with the scripted experts (training seeds S..S+N-1, held-out seeds from
S+100000), trains the encoders contrastively against MiniLM embeddings of the facts true in each
frame, and writes to the run folder: `perception.pt` (loadable by `MultiModalExtractor(pretrained=)`),
`metrics.json`, `report.md`, `config.yaml` and the collected frames (reused by `--resume`).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from causal.atomic import atomic_write
from experiments.common import args as args_types
from experiments.common import jsonio
from experiments.common.errors import InputError

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 100_000
CHECKPOINT = "perception.pt"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `pretrain-perception` sub-command."""
    parser = subparsers.add_parser("pretrain-perception", help="contrastive vision/touch-language pretraining")
    parser.add_argument("--episodes", type=int, default=200, help="training episodes (default: 200)")
    parser.add_argument("--eval-episodes", type=int, default=None, help="held-out episodes (default: episodes/4, >=4)")
    parser.add_argument("--seed", type=args_types.seed, default=0,
                        help="first training episode seed; also seeds training")
    parser.add_argument("--out", type=args_types.output_dir, required=True, help="run folder, e.g. runs/perception")
    parser.add_argument("--obs-mode", choices=("rgbd", "rgbd_touch"), default="rgbd_touch")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--tasks-per-episode", type=int, default=4, help="expert tasks chained per episode")
    parser.add_argument("--frame-every", type=int, default=4, help="record every k-th control step")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--token-dim", type=int, default=128)
    parser.add_argument("--text-encoder", choices=("minilm", "hashing"), default="minilm")
    parser.add_argument("--resume", action="store_true", help="reuse the run's frames and continue from its checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=handle)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file + os.replace)."""
    jsonio.write_json(path, data, sort_keys=True)


def write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    atomic_write(path, lambda temp: Path(temp).write_text(text), suffix="")


def _validate(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise InputError(f"--episodes must be at least 1, got {args.episodes}")
    if args.eval_episodes is not None and args.eval_episodes < 1:
        raise InputError(f"--eval-episodes must be at least 1, got {args.eval_episodes}")
    if args.epochs < 1 or args.batch_size < 2:
        raise InputError(f"--epochs must be >= 1 and --batch-size >= 2, got {args.epochs}, {args.batch_size}")
    if args.resume and not (args.out / "frames_train.npz").is_file():
        raise FileNotFoundError(f"--resume: no frames_train.npz in {args.out}; run once without --resume first")


def _frames(args: argparse.Namespace, config: Any) -> tuple[Any, Any, Any]:
    """Training frames, held-out frames and their observation space (collected, or reused on --resume)."""
    from experiments.kitchen.perception_data import collect_frames, make_env
    from perception.frames import FrameSet

    train_path, eval_path = args.out / "frames_train.npz", args.out / "frames_eval.npz"
    if args.resume and eval_path.is_file():
        env = make_env(config)
        space = env.observation_space
        env.close()
        train, held_out = FrameSet.load(train_path), FrameSet.load(eval_path)
        return train, held_out, type(space)({k: space[k] for k in train.obs})
    n_eval = args.eval_episodes or max(4, args.episodes // 4)
    train_seeds = list(range(args.seed, args.seed + args.episodes))
    eval_seeds = list(range(args.seed + EVAL_SEED_OFFSET, args.seed + EVAL_SEED_OFFSET + n_eval))
    train, space = collect_frames(train_seeds, config, progress=not args.no_progress)
    held_out, _ = collect_frames(eval_seeds, config, progress=not args.no_progress)
    train.save(train_path)
    held_out.save(eval_path)
    return train, held_out, space


def handle(args: argparse.Namespace) -> int:
    """Collect, train, evaluate, write the run folder."""
    import torch
    import yaml

    from experiments.kitchen.perception_data import CollectionConfig
    from perception import default_text_encoder
    from perception.alignment import AlignmentConfig, AlignmentModel
    from perception.alignment_training import evaluate_alignment, load_alignment, save_alignment, train_alignment

    _validate(args)
    args.out.mkdir(parents=True, exist_ok=True)
    collection = CollectionConfig(args.obs_mode, args.image_size, args.tasks_per_episode, args.frame_every)
    align = AlignmentConfig(token_dim=args.token_dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"}
    config_text = yaml.safe_dump({"command": settings, "collection": asdict(collection), "alignment": asdict(align)})
    write_text(args.out / "config.yaml", config_text)

    started = time.perf_counter()
    train, held_out, space = _frames(args, collection)
    collect_s = time.perf_counter() - started
    text = default_text_encoder(args.text_encoder)
    initial = None
    if args.resume and (args.out / CHECKPOINT).is_file():
        initial, _, _ = load_alignment(args.out / CHECKPOINT, text.dim)
    started = time.perf_counter()
    model, history, vocab = train_alignment(
        train, space, text, align, seed=args.seed, progress=not args.no_progress, initial=initial
    )
    train_s = time.perf_counter() - started

    torch.manual_seed(args.seed)
    untrained = AlignmentModel(space, text.dim, align).eval()
    metrics = {
        "held_out": evaluate_alignment(model, held_out, text, vocab, prior_facts=train.facts, seed=args.seed),
        "train": evaluate_alignment(model, train, text, vocab, seed=args.seed),
        "untrained_held_out": evaluate_alignment(untrained, held_out, text, vocab, seed=args.seed),
        "loss_history": history,
        "frames": {"train": len(train), "held_out": len(held_out)},
        "episodes": {"train": len(set(train.episode.tolist())), "held_out": len(set(held_out.episode.tolist()))},
        "seconds": {"collect": round(collect_s, 1), "train": round(train_s, 1)},
        "text_encoder": args.text_encoder,
    }
    save_alignment(args.out / CHECKPOINT, model, space, vocab, metrics=_headline(metrics))
    write_json(args.out / "metrics.json", metrics)
    write_text(args.out / "report.md", render_report(metrics, args))
    print(_summary(metrics, args.out))
    return 0


def _headline(metrics: dict[str, Any]) -> dict[str, float]:
    held = metrics["held_out"]
    out = {
        "retrieval_top1_hard": held["retrieval_hard"]["top1"],
        "retrieval_top1_hard_macro": held["retrieval_hard"]["macro_top1"],
        "retrieval_top1_uniform": held["retrieval_uniform"]["top1"],
    }
    if "grasp" in held:
        out["grasp_accuracy"] = held["grasp"]["accuracy"]
    return out


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _summary(metrics: dict[str, Any], out: Path) -> str:
    held = metrics["held_out"]
    lines = [
        f"frames: {metrics['frames']['train']} train / {metrics['frames']['held_out']} held-out",
        f"image->text top-1 of 8 (held-out, hard distractors):    {_pct(held['retrieval_hard']['top1'])}",
        f"  mean over predicates:                                  {_pct(held['retrieval_hard']['macro_top1'])}",
        f"image->text top-1 of 8 (held-out, uniform distractors): {_pct(held['retrieval_uniform']['top1'])}",
    ]
    if "grasp" in held:
        lines.append(f"grasp detection from touch (held-out):                  {_pct(held['grasp']['accuracy'])}")
    lines.append(f"wrote {out / CHECKPOINT}, metrics.json, report.md")
    return "\n".join(lines)


def render_report(metrics: dict[str, Any], args: argparse.Namespace) -> str:
    """The run's report.md: headline numbers, baselines, per-predicate breakdown."""
    held, untrained, train = metrics["held_out"], metrics["untrained_held_out"], metrics["train"]
    rows = [
        "| retrieval (top-1 of 8) | trained, held-out | trained, train | untrained, held-out | text prior | chance |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind in ("hard", "uniform"):
        key = f"retrieval_{kind}"
        for average, label in (("top1", "all true statements"), ("macro_top1", "mean over predicates")):
            rows.append(
                f"| {kind} distractors, {label} | {_pct(held[key][average])} | {_pct(train[key][average])} | "
                f"{_pct(untrained[key][average])} | {_pct(held['prior_' + key][average])} | 12.5% |"
            )
    lines = [
        f"# Perception pretraining: {args.out.name}",
        "",
        f"{metrics['episodes']['train']} training episodes (seeds {args.seed}..{args.seed + args.episodes - 1}, "
        f"{metrics['frames']['train']} frames) and {metrics['episodes']['held_out']} held-out episodes "
        f"(seeds from {args.seed + EVAL_SEED_OFFSET}, {metrics['frames']['held_out']} frames); "
        f"text encoder: {metrics['text_encoder']}; {len(metrics['loss_history'])} epochs "
        f"(final loss {metrics['loss_history'][-1]:.3f}); collection {metrics['seconds']['collect']} s, "
        f"training {metrics['seconds']['train']} s.",
        "",
        "Retrieval: for every true statement of a held-out frame, the model must rank it above 7 false ones. "
        "Hard distractors are about the same subject first (e.g. 'the red block is in the bowl' against "
        "'the red block is on the table'). The text prior ranks statements by how often they were true in "
        "training, ignoring the frame.",
        "",
        *rows,
        "",
        "Held-out retrieval by predicate (hard distractors; number of statements): "
        + ", ".join(
            f"{name} {_pct(v)} ({held['retrieval_hard']['n_by_predicate'][name]})"
            for name, v in held["retrieval_hard"]["by_predicate"].items()
        ),
        "",
    ]
    if "grasp" in held:
        grasp = held["grasp"]
        lines += [
            f"Grasp detection from touch alone (held-out): accuracy {_pct(grasp['accuracy'])}, balanced "
            f"{_pct(grasp['balanced_accuracy'])} ({grasp['n_holding']} holding / {grasp['n_empty']} empty frames); "
            f"untrained: {_pct(untrained['grasp']['accuracy'])}.",
            "",
        ]
    return "\n".join(lines)
