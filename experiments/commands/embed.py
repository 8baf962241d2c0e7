"""`embodia embed`: export perception embeddings of fresh kitchen frames, with a PCA plot.

Frames are collected like pretraining does (scripted experts, seeded), embedded by a checkpoint from
`embodia pretrain-perception`, and written to an .npz with their labels (what the gripper holds, the
drawer state, the task, the facts as JSON). A 2-D PCA of the embeddings, coloured by those labels,
lands beside the .npz as `<out stem>_pca.png` (with `--out runs/embed/frames.npz`: `runs/embed/frames_pca.png`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from causal.atomic import atomic_write
from experiments.common import args as args_types
from experiments.common.errors import InputError

if TYPE_CHECKING:  # numpy is imported where it is used: building the parser stays light
    import numpy as np

DEFAULT_CHECKPOINT = Path("runs") / "perception" / "perception.pt"
DEFAULT_SEED = 200_000  # clear of pretraining's default training and held-out seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `embed` sub-command."""
    parser = subparsers.add_parser("embed", help="export perception embeddings of kitchen frames (+ PCA plot)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to collect (default: 10)")
    parser.add_argument("--out", type=args_types.output_file, required=True, help="output .npz file")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help=f"pretrained perception (default: {DEFAULT_CHECKPOINT})",
    )
    parser.add_argument("--seed", type=args_types.seed, default=DEFAULT_SEED,
                        help=f"first episode seed (default: {DEFAULT_SEED})")
    parser.add_argument(
        "--text-encoder",
        choices=("minilm", "hashing"),
        default="minilm",
        help="must match the one the checkpoint was trained with",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=handle)


def labels(facts: list[list[tuple[str, ...]]]) -> dict[str, np.ndarray]:
    """Per-frame labels for colouring: held object (or 'empty') and drawer state."""
    import numpy as np

    held = [next((f[1] for f in frame if f[0] == "holding"), "empty") for frame in facts]
    drawer = [next((f[0] for f in frame if f[0] in ("open", "closed")), "unknown") for frame in facts]
    return {"holding": np.array(held), "drawer": np.array(drawer)}


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto the top two principal components; also return the explained variance ratios."""
    import numpy as np

    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    ratio = singular**2 / max(float((singular**2).sum()), 1e-12)
    return centred @ vt[:2].T, ratio[:2]


def plot(embeddings: dict[str, np.ndarray], tags: dict[str, np.ndarray], path: Path) -> Path:
    """Scatter the PCA of each embedding coloured by each label; saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, tag) for name in embeddings for tag in tags]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for axis, (name, tag) in zip(axes[0], panels, strict=True):
        points, ratio = pca_2d(embeddings[name])
        for value in sorted(set(tags[tag].tolist())):
            mask = tags[tag] == value
            axis.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.7, label=f"{value} ({mask.sum()})")
        axis.set_title(f"{name} embedding, coloured by {tag}")
        axis.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% var)")
        axis.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% var)")
        axis.legend(fontsize=7, markerscale=2)
    figure.tight_layout()
    try:
        atomic_write(path, lambda temp: figure.savefig(temp, dpi=110), suffix=".png")
    finally:
        plt.close(figure)
    return path


def plot_path(out: Path) -> Path:
    """Where the PCA plot of an export to `out` goes: beside it, named after it (frames.npz -> frames_pca.png)."""
    return out.with_name(f"{out.stem}_pca.png")


def _collection_for(space: Any) -> Any:
    from experiments.kitchen.perception_data import CollectionConfig

    camera = next(key for key in space.spaces if key.startswith("rgb_"))
    mode = "rgbd_touch" if "touch" in space.spaces else "rgbd"
    return CollectionConfig(obs_mode=mode, image_size=int(space[camera].shape[0]))


def handle(args: argparse.Namespace) -> int:
    """Collect, embed, write the .npz and the plot (beside the .npz: see `plot_path`)."""
    import numpy as np

    from experiments.kitchen.perception_data import collect_frames
    from perception import default_text_encoder
    from perception.alignment_training import embed_frames, load_alignment

    if args.episodes < 1:
        raise InputError(f"--episodes must be at least 1, got {args.episodes}")
    if not args.checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint at {args.checkpoint}; run `embodia pretrain-perception` first")
    text = default_text_encoder(args.text_encoder)
    model, space, _ = load_alignment(args.checkpoint, text.dim)
    seeds = list(range(args.seed, args.seed + args.episodes))
    frames, _ = collect_frames(seeds, _collection_for(space), progress=not args.no_progress)
    embeddings = embed_frames(model, frames)
    tags = labels(frames.facts)
    facts_json = json.dumps([[list(f) for f in frame] for frame in frames.facts])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda temp: np.savez(
        temp, **embeddings, **tags, task=np.array(frames.task), episode=frames.episode, facts_json=np.array(facts_json)
    ), suffix=".npz")
    picture = plot(embeddings, tags, plot_path(args.out))
    print(f"embedded {len(frames)} frames from {args.episodes} episodes -> {args.out}; plot: {picture}")
    return 0
