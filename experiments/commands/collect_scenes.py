"""`embodia collect-scenes`: oracle-labelled frames for the scene estimator, recorded during scripted chains."""

from __future__ import annotations

import argparse

from experiments.common import args as args_types
from experiments.common.errors import InputError


def seed_range(text: str) -> range:
    """"0:200" (start:stop) or "50" (0:50) as a range of episode seeds."""
    try:
        start, _, stop = text.rpartition(":")
        seeds = range(int(start or 0), int(stop))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be START:STOP or COUNT, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds {text!r} is empty")
    return seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `collect-scenes` sub-command."""
    parser = subparsers.add_parser("collect-scenes", help="record oracle-labelled frames for the scene estimator",
                                   description=__doc__)
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0:200"),
                        help="episode seeds, START:STOP (keep training and held-out seeds apart)")
    parser.add_argument("--out", type=args_types.output_dir, required=True,
                        help="dataset folder (shards are resumable)")
    parser.add_argument("--image-size", type=int, default=64, help="camera resolution")
    parser.add_argument("--front-image-size", type=int, default=None,
                        help="the front camera's resolution, if finer than --image-size (small objects such as the "
                             "mug cover a dozen pixels at 64)")
    parser.add_argument("--chain-length", type=int, default=6, help="instructions per episode")
    parser.add_argument("--frame-every", type=int, default=3, help="record every k-th control step")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm", help="planner text encoder")
    parser.add_argument("--kind", choices=("chains", "random"), default="chains",
                        help="chains: frames recorded while the agent runs chains (one layout per episode); random: "
                             "one frame per seed, objects moved into containers and stacks, the drawer at a random "
                             "opening, the arm moved at random (many layouts)")
    parser.add_argument("--skills", choices=("scripted", "learned"), default="scripted",
                        help="chains only: who acts, the scripted experts or the shipped rgbd_touch students (the "
                             "scenes a perceiving agent with learned skills meets; needs --front-image-size 128)")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Record oracle-labelled frames (chains or random layouts) as .npz shards; 0 on success."""
    import torch

    from experiments.scene_estimation.data import SceneDataConfig, collect, collect_random_scenes, load_frames

    torch.set_num_threads(1)
    front = args.image_size if args.front_image_size is None else args.front_image_size
    if args.image_size < 16 or front < 16 or args.chain_length < 1 or args.frame_every < 1:
        raise InputError("--image-size and --front-image-size must be >= 16, --chain-length and --frame-every >= 1;"
                         f" got {args.image_size}, {front}, {args.chain_length}, {args.frame_every}")
    if args.kind == "random":
        out = collect_random_scenes(args.seeds, args.out, image_size=args.image_size,
                                    front_image_size=args.front_image_size)
    else:
        config = SceneDataConfig(image_size=args.image_size, front_image_size=args.front_image_size,
                                 chain_length=args.chain_length, frame_every=args.frame_every, skills=args.skills)
        out = collect(args.seeds, args.out, config, encoder=args.encoder, progress=True)
    frames = load_frames(out, ("holding",))
    print(f"{len(frames['holding'])} frames from seeds {args.seeds.start}..{args.seeds.stop - 1} in {out}")
    return 0
