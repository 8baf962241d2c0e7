"""`embodia perceive-skill`: ship a state skill policy that acts on what the scene estimator sees (rgbd_touch).

Example: `embodia perceive-skill --card agent/skill_policies/pick.json --out agent/skill_policies/rgbd_touch/pick.json`.
The state policy then reads object rows rebuilt from the cameras, touch and proprioception
(`agent.perceived_state`) instead of the simulator's; the command measures it from chain starts and plain resets
in that observation set and writes its card (which points at the state policy's weights).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.jsonio import write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `perceive-skill` sub-command."""
    parser = subparsers.add_parser("perceive-skill", help="a state skill acting on the scene estimator's rows",
                                   description=__doc__)
    parser.add_argument("--card", type=Path, required=True,
                        help="the state policy's card, e.g. agent/skill_policies/pick.json")
    parser.add_argument("--estimator", type=Path, default=None, help="scene-estimator weights (default: the shipped)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes from chain starts")
    parser.add_argument("--reset-episodes", type=int, default=30, help="evaluation episodes from plain resets")
    parser.add_argument("--prefix", default="scripted", help="who runs the chain starts' sub-chains")
    parser.add_argument("--held-prior", action="store_true",
                        help="a held object's row rides with the hand (the measured offset from the grasp point) "
                             "instead of its perceived centre")
    parser.add_argument("--headings", action="store_true",
                        help="the rows carry the estimator's headings (the mug's handle side) instead of yaw 0; the "
                             "estimator must read them (`embodia train-heading`)")
    parser.add_argument("--out", type=args_types.output_file, required=True,
                        help="the card to write (e.g. agent/skill_policies/rgbd_touch/pick.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compose, evaluate and write the card; print the rates."""
    from tqdm import tqdm

    from agent.policy import read_card
    from experiments.imitation.learned_prefix import check_prefix
    from experiments.imitation.perceived import check_state_card, compose

    check_prefix(args.prefix, "chain")
    check_state_card(args.card)
    if args.episodes < 1 or args.reset_episodes < 0:
        raise InputError(f"--episodes must be >= 1 and --reset-episodes >= 0, got {args.episodes}, "
                         f"{args.reset_episodes}")
    if args.estimator is not None and not args.estimator.is_file():
        raise FileNotFoundError(f"no scene-estimator checkpoint at {args.estimator}")
    with tqdm(total=args.episodes, desc="chain starts", unit="episode") as bar:
        def progress(done: int, wins: int) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(successes=wins)

        card = compose(args.card, args.out, args.estimator, args.episodes, args.reset_episodes, args.prefix, progress,
                       args.held_prior, args.headings)
    write_json(args.out, card, indent=1)
    read_card(args.out)  # the written card must load as the agent loads it
    chain = card["eval"]
    low, high = chain["ci95"]
    print(f"{card['task']} (perceived state) from chain starts: {chain['successes']}/{chain['episodes']} "
          f"[{low:.2f}, {high:.2f}]")
    judged = card["eval_perceived"]
    print(f"the same starts judged as the perceiving loop judges (at rest, seen twice): "
          f"{judged['successes']}/{judged['episodes']} [{judged['ci95'][0]:.2f}, {judged['ci95'][1]:.2f}]")
    if "eval_reset" in card:
        reset = card["eval_reset"]
        print(f"from plain resets: {reset['successes']}/{reset['episodes']}")
    print(f"card: {args.out}")
    return 0
