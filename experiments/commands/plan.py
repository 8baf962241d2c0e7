"""`embodia plan "INSTRUCTION"`: print the plan for an instruction (JSON with --json).

Refusals (a phrase that is not in the scene, an empty or meaningless instruction) are `PlanningError`s,
which `experiments.cli` prints on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.skills import OBJECTS
from experiments.kitchen import factory


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `plan` sub-command."""
    parser = subparsers.add_parser("plan", help="plan skill calls for an instruction",
                                   description="Ground an instruction in the kitchen scene and print the plan.")
    parser.add_argument("instruction", help='what to do, e.g. "put the yellow block in the drawer"')
    parser.add_argument("--json", action="store_true", help="print {goal, plan} JSON instead of text")
    parser.add_argument("--trace", action="store_true", help="with --json, add the trace (groundings, scores)")
    parser.add_argument("--objects", nargs="+", default=None, metavar="ID",
                        help=f"objects present (space or comma separated; default: all of {', '.join(OBJECTS)})")
    parser.add_argument("--facts", default=None,
                        help='start state as JSON facts, e.g. \'[["in","red_block","drawer"]]\', or a .json file')
    parser.add_argument("--memory", type=Path, default=None,
                        help='a knowledge store (SQLite file, as `run --memory` writes) or a JSON file '
                             '{"facts": [[subject, relation, object, confidence]], "skill_stats": {...}, '
                             '"episodes": [...]}')
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder for grounding (hashing: fast, for tests)")
    parser.add_argument("--planner", choices=("grounded", "llm"), default="grounded")
    factory.add_llm_arguments(parser)
    parser.set_defaults(func=handle)


def _objects(values: list[str] | None) -> list[str]:
    if values is None:
        return list(OBJECTS)
    return [part for value in values for part in value.split(",") if part]


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    path = Path(text)
    try:
        source = path.read_text(encoding="utf-8") if text.endswith(".json") or path.is_file() else text
        return json.loads(source)
    except UnicodeDecodeError as error:
        raise ValueError(f"--{what} {text[:80]!r} is not a UTF-8 JSON file ({error.reason} at byte {error.start})"
                         ) from error
    except json.JSONDecodeError as error:
        raise ValueError(f"--{what} must be JSON (or a .json file), got {text[:80]!r}: {error.msg}") from error


def _build_planner(args: argparse.Namespace):
    from agent.planner import GroundedPlanner
    from perception.text import default_text_encoder

    grounded = GroundedPlanner(default_text_encoder(args.encoder))
    if args.planner == "grounded":
        return grounded
    return factory.make_llm_planner(grounded, url=args.llm_url, model=args.llm_model, model_dir=args.llm_dir,
                                    timeout=args.llm_timeout)


SQLITE_MAGIC = b"SQLite format 3\x00"


def _memory_arg(path: Path | None, instruction: str) -> Any:
    """Planner memory from a knowledge store (SQLite, recognised by its header) or a JSON file."""
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"--memory {path}: no such file (a knowledge store or a JSON memory file)")
    with path.open("rb") as handle:
        is_sqlite = handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    if not is_sqlite:
        return _json_arg(str(path), "memory")
    from experiments.kitchen.memory_bridge import MemoryBridge

    bridge = MemoryBridge(path, create=False)
    try:
        return bridge.planner_memory(instruction)
    finally:
        bridge.close()


def handle(args: argparse.Namespace) -> int:
    """Plan and print; PlanningError propagates to the CLI (exit code 2)."""
    facts = _json_arg(args.facts, "facts")
    memory = _memory_arg(args.memory, args.instruction)
    plan = _build_planner(args).plan(args.instruction, _objects(args.objects), facts, memory)
    if args.json:
        print(json.dumps(plan.to_json(trace=args.trace)))
        if "fallback" in plan.trace.planner:  # keep stdout pure JSON but tell the person
            print(f"embodia plan: note: {plan.trace.notes[0]}", file=sys.stderr)
    else:
        print(plan.describe())
    return 0
