"""`embodia convert-policy FILE --trust`: rewrite a pickle-based SB3 policy as safetensors + JSON architecture.

Old runs and policies were written with SB3's `policy.save` (a torch pickle). Embodia now refuses to load
those (they can run code when opened). This command converts a file *you trust* (one you trained yourself):
it is the only place that unpickles a policy, and only with `--trust`. A card next to it (`<stem>.json`, or
`policy.json` in a run folder) is updated to name the new file and carry its architecture.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.common.errors import InputError
from experiments.common.jsonio import write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `convert-policy` sub-command."""
    parser = subparsers.add_parser("convert-policy", help="convert a trusted pickle-based SB3 policy to safetensors")
    parser.add_argument("file", type=Path, help="the .pt policy file written by SB3's policy.save")
    parser.add_argument("--trust", action="store_true",
                        help="required: confirms the file is yours (unpickling an untrusted file runs its code)")
    parser.set_defaults(func=run)


def convert(path: Path) -> Path:
    """Load a trusted SB3 policy pickle and write `<stem>.safetensors` next to it; update its card if any."""
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy

    from agent.policy_io import SUFFIX, architecture, load_policy, save_policy
    from experiments.common.io import atomic_write

    if not path.is_file():
        raise FileNotFoundError(f"no policy file at {path}")
    policy = MultiInputActorCriticPolicy.load(str(path), device="cpu")  # trusted by the caller (--trust)
    target = path.with_suffix(SUFFIX)
    atomic_write(target, lambda tmp: save_policy(policy, tmp))
    load_policy(target)  # the new file must load through the safe path
    for card_path in (path.with_suffix(".json"), path.parent / "policy.json"):
        if card_path.is_file():
            card = json.loads(card_path.read_text())
            if card.get("file") == path.name:
                card["file"] = target.name
                card["architecture"] = architecture(policy)
                write_json(card_path, card, indent=1)
    return target


def run(args: argparse.Namespace) -> int:
    """Unpickle a policy the user trusts (only with --trust) and rewrite it as safetensors + JSON architecture."""
    if not args.trust:
        raise InputError(f"convert-policy unpickles {args.file}, which runs any code inside it; pass --trust only "
                         f"for a file you made yourself")
    print(f"wrote {convert(args.file)}")
    return 0
