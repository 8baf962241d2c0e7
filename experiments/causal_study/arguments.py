"""The flags of `embodia causal study`, apart from the study itself so that building the parser imports no numpy."""

from __future__ import annotations

import argparse

from experiments.causal_study.config import OUTCOMES
from experiments.common import args as args_types
from experiments.common.distributed import add_ray_arguments


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `embodia causal study`."""
    parser.add_argument("--scene", default="kitchen", choices=["kitchen"], help="simulated scene")
    parser.add_argument("--treatment", required=True, help="scene variable to intervene on, e.g. red_block.mass")
    parser.add_argument("--values", required=True, type=_floats, help="comma-separated treatment values")
    parser.add_argument("--outcome", default="push_distance", choices=OUTCOMES, help="measured outcome")
    parser.add_argument(
        "--confounded-by",
        dest="confounder",
        default=None,
        help="scene variable that drives treatment and outcome in the observational regime",
    )
    parser.add_argument("--episodes", type=int, default=20, help="units per treatment value (interventional)")
    parser.add_argument("--obs-episodes", type=int, default=0, help="observational units (0: episodes x values)")
    parser.add_argument("--cf-units", type=int, default=10, help="units replayed for ground-truth counterfactuals")
    parser.add_argument("--seed", type=args_types.seed, default=0)
    parser.add_argument("--out", type=args_types.output_dir, default=None,
                        help="run folder (default runs/causal_<treatment>_<outcome>)")
    parser.add_argument("--object", dest="target", default="", help="block pushed (default: the treatment's)")
    parser.add_argument("--direction", default="left", help="push direction: left, right, forward, backward")
    parser.add_argument("--confounder-range", type=_floats, default=None, help="LO,HI natural range of the confounder")
    parser.add_argument("--confounding-strength", type=float, default=0.8, help="0 (none) to 1 (deterministic)")
    parser.add_argument("--impulse", type=float, default=0.05, help="strike impulse in N*s (strike_distance)")
    parser.add_argument("--memory", default=None,
                        help="knowledge store (SQLite file) that receives the study's facts; the planner reads them")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder for the facts' retrieval embeddings (with --memory)")
    add_ray_arguments(parser)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
