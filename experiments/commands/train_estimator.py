"""`embodia train-estimator`: train the scene estimator on collected frames and evaluate it on held-out seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.jsonio import write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train-estimator` sub-command."""
    parser = subparsers.add_parser("train-estimator", help="train / evaluate the scene-state estimator",
                                   description=__doc__)
    parser.add_argument("--data", type=Path, nargs="+", default=[], help="training dataset folders")
    parser.add_argument("--heldout", type=Path, nargs="+", default=[], help="held-out dataset folders to evaluate on")
    parser.add_argument("--out", type=args_types.output_file, default=Path("runs/scene_estimation/estimator.pt"),
                        help="weights file")
    parser.add_argument("--evaluate-only", action="store_true", help="skip training: evaluate --out on --heldout")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=16, help="channels of the first convolution")
    parser.add_argument("--arch", choices=("keypoints", "flat", "segment"), default="keypoints",
                        help="keypoints/flat: image stems regress everything; segment: per-pixel segmentation, "
                             "back-projected depth and a relation classifier (needs frames with masks)")
    parser.add_argument("--relation-epochs", type=int, default=40,
                        help="arch segment: epochs of the relation classifier on the frozen segmenter's features")
    parser.add_argument("--segment-dilations", type=lambda text: tuple(int(v) for v in text.split(",")),
                        default=(1, 2, 4), help="arch segment: dilation of each segmenter layer, e.g. 1,2,4")
    parser.add_argument("--segment-focus", type=float, default=0.0,
                        help="arch segment: share of segmenter crops centred on objects (0: uniform crops)")
    parser.add_argument("--relation-dropout", type=float, default=0.0,
                        help="arch segment: dropout in the relation classifier while it trains")
    parser.add_argument("--no-wrist-points", dest="wrist_points", action="store_false",
                        help="arch segment: back-project front-camera pixels only (as the first checkpoints did)")
    parser.add_argument("--reuse-perception", type=Path, default=None, metavar="CHECKPOINT",
                        help="arch segment: reuse this checkpoint's segmenter and drawer/holding branch and train "
                             "only the relation classifier (minutes instead of the segmenter's hours of crops)")
    parser.add_argument("--segment-steps", type=int, default=2000,
                        help="arch segment: optimiser steps of the per-pixel segmenter (batches of 32x32 crops)")
    parser.add_argument("--keypoints", type=int, default=16, help="spatial-softmax keypoints per camera")
    parser.add_argument("--input-size", type=int, default=64, help="images are pooled to this side first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--seed", type=args_types.seed, default=0)
    parser.add_argument("--questions", type=int, default=2000, help="held-out frames to ask questions about")
    parser.add_argument("--card", type=Path, default=None, help="write a markdown model card from the evaluation")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Train the scene estimator, evaluate it on held-out shards and write weights, report and card; 0 on success."""
    import torch

    from experiments.scene_estimation.evaluate import evaluate, evaluate_questions, format_report
    from experiments.scene_estimation.train import TrainConfig, train
    from perception.scene_estimator import SceneEstimator

    torch.set_num_threads(args.threads)
    if not args.evaluate_only:
        if not args.data:
            raise InputError("--data is required unless --evaluate-only")
        if not 0.0 <= args.relation_dropout < 1.0:
            raise InputError(f"--relation-dropout must be in [0, 1), got {args.relation_dropout}")
        if not 0.0 <= args.segment_focus <= 1.0 or not args.segment_dilations or min(args.segment_dilations) < 1:
            raise InputError(f"--segment-focus must be in [0, 1] and --segment-dilations positive integers, got "
                             f"{args.segment_focus} and {args.segment_dilations}")
        if args.reuse_perception is not None and (args.arch != "segment" or not args.reuse_perception.is_file()):
            raise InputError(f"--reuse-perception needs --arch segment and an existing checkpoint, got --arch "
                             f"{args.arch} and {args.reuse_perception}")
        if args.epochs < 1 or args.batch_size < 1:
            raise InputError(f"--epochs and --batch-size must be >= 1, got {args.epochs}, {args.batch_size}")
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             threads=args.threads, input_size=args.input_size, width=args.width,
                             arch=args.arch, keypoints=args.keypoints, relation_epochs=args.relation_epochs,
                             segment_steps=args.segment_steps, segment_dilations=args.segment_dilations,
                             segment_focus=args.segment_focus, relation_dropout=args.relation_dropout,
                             wrist_points=args.wrist_points,
                             reuse_perception=str(args.reuse_perception or ""))
        card = train(args.data, args.out, config, progress=True)
        print(f"trained on {card['frames']} frames, {card['parameters']} parameters: {args.out}")
    if args.heldout:
        estimator = SceneEstimator.load(args.out)
        report = evaluate(estimator, args.heldout)
        if args.questions:
            report["questions"] = evaluate_questions(estimator, args.heldout, frames_used=args.questions)
        path = args.out.with_suffix(".eval.json")
        write_json(path, report, indent=1, default=float)
        print(format_report(report))
        if "questions" in report:
            q = report["questions"]["overall"]
            print(f"questions: {q['accuracy']:.2%} [{q['ci95'][0]:.4f}, {q['ci95'][1]:.4f}] ({q['correct']}/"
                  f"{q['total']})")
        print(f"report: {path}")
        if args.card is not None:
            import sys

            from experiments.scene_estimation.card import write_card

            command = "embodia " + " ".join(sys.argv[1:]) if sys.argv[1:] else "embodia train-estimator"
            write_card(args.card, args.out.stem, estimator.card, report, command, estimator.config.to_json())
            print(f"card: {args.card}")
    return 0
