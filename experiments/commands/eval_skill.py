"""`embodia eval-skill`: one skill policy's success rate from chain-like starts or plain resets.

Example: `embodia eval-skill --card agent/skill_policies/pick.json --start chain`. The policy is conditioned on
the agent's skill-call sentence; the rate comes with a Wilson 95% interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.jsonio import write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval-skill` sub-command."""
    parser = subparsers.add_parser("eval-skill", help="a skill policy's success from chain starts or resets")
    parser.add_argument("--card", type=Path, required=True, help="the policy's card (<task>.json or policy.json)")
    parser.add_argument("--start", default="chain", help="chain or reset")
    parser.add_argument("--prefix", default="scripted",
                        help="who runs a chain start's sub-chain: scripted (the experts), learned (the shipped "
                             "learned skills: the starts --skills learned produces) or mixed")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--crowd", action="store_true",
                        help="places from chain starts only: every start has another object in the target already "
                             "(the bowl, the drawer or the plate) or, for the table or a block, the object lifted "
                             "off a support, as chains often leave it")
    parser.add_argument("--out", type=args_types.output_file, default=None, help="write the result as JSON here")
    parser.add_argument("--update-card", action="store_true",
                        help="write the result into the card (`eval`, `eval_learned_prefix` or `eval_reset`, by "
                             "--start and --prefix; `eval_crowded` with --crowd), keeping the value it replaces under "
                             "`superseded`: for "
                             "re-measuring a shipped card after the env's success test changed")
    parser.set_defaults(func=run)


def card_key(start: str, prefix: str, crowd: bool = False) -> str:
    """The card entry an evaluation from these starts fills (as `embodia dagger` names them)."""
    if start == "reset":
        return "eval_reset"
    if crowd:
        return "eval_crowded" if prefix == "scripted" else f"eval_crowded_{prefix}_prefix"
    return {"scripted": "eval", "learned": "eval_learned_prefix"}.get(prefix, f"eval_{prefix}_prefix")


def update_card(path: Path, key: str, result: dict, command: str) -> None:
    """Replace the card's `key` entry by `result`, moving the old one to the card's `superseded` list."""
    import json

    meta = json.loads(path.read_text())
    old = meta.get(key)
    if old is not None:
        meta.setdefault("superseded", []).append({"key": key, "value": old})
    meta[key] = {"source": command, **result}
    write_json(path, meta, indent=1)


def run(args: argparse.Namespace) -> int:
    """Evaluate the card's policy on seeded episodes and print (and write) the rate with its interval."""
    from agent.policy import load_card_policy, read_card
    from envs.chain_starts import PLACE_TASKS
    from experiments.imitation.dagger import START_MODES
    from experiments.imitation.evaluate import evaluate_policy
    from experiments.imitation.learned_prefix import check_prefix
    from experiments.training.language import EmbeddingTable, all_texts
    from perception.text import default_text_encoder

    if args.start not in START_MODES:
        raise InputError(f"unknown start mode {args.start!r}; expected one of: {', '.join(START_MODES)}")
    check_prefix(args.prefix, args.start)
    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    card = read_card(args.card)
    if args.crowd and (args.start != "chain" or card.task not in PLACE_TASKS):
        raise InputError(f"--crowd crowds the target of a place's chain start; it needs --start chain and a place "
                         f"card ({', '.join(PLACE_TASKS)}), got --start {args.start} and a {card.task} card")
    policy = load_card_policy(card)
    table = EmbeddingTable.build(default_text_encoder(card.encoder), all_texts(card.task), source=card.encoder)
    rows = getattr(policy, "rows", None)  # a perceived-state policy: render the front camera as its estimator reads
    front = rows.estimator.config.front_size if rows is not None else None
    result = evaluate_policy(policy, card.task, card.meta["obs_mode"], args.start, table, args.episodes,
                             prefix=args.prefix, front_image_size=front, crowd=args.crowd)
    low, high = result["ci95"]
    where = f"{args.prefix}-prefix {'crowded ' if args.crowd else ''}chain" if args.start == "chain" else args.start
    print(f"{card.task} from {where} starts: {result['successes']}/{result['episodes']} "
          f"({result['rate']:.0%}) [{low:.2f}, {high:.2f}]")
    if args.out:
        write_json(args.out, {"card": str(args.card), **result}, indent=1)
    if args.update_card:
        key = card_key(args.start, args.prefix, args.crowd)
        command = (f"embodia eval-skill --card {args.card} --start {args.start} --prefix {args.prefix} "
                   f"--episodes {args.episodes}{' --crowd' if args.crowd else ''} --update-card")
        update_card(args.card, key, result, command)
        print(f"card updated: {args.card} ({key})")
    return 0
