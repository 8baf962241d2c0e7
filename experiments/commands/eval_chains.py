"""`embodia eval-chains`: CALVIN-style chains of instructions run without reset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import factory


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval-chains", help="long-horizon evaluation over chains of instructions")
    parser.add_argument("--chains", type=int, default=100, help="number of chains")
    parser.add_argument("--length", type=int, default=5, help="instructions per chain")
    parser.add_argument("--seed", type=int, default=0, help="first chain seed (chain i uses seed + i)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval_chains"), help="results folder")
    factory.add_agent_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from experiments.chains import run_chain, summarise
    from experiments.episodes import open_session
    from experiments.io import atomic_write_text

    if args.chains < 1 or args.length < 1:
        raise ValueError(f"--chains and --length must be >= 1, got {args.chains} and {args.length}")
    session = open_session(args)
    results = []
    try:
        progress = tqdm(range(args.chains), desc="chains")
        for i in progress:
            results.append(run_chain(session.agent, session.world, args.seed + i, args.length))
            done = sum(r.completed for r in results) / len(results)
            progress.set_postfix(avg_len=f"{done:.2f}")
    finally:
        session.close()
    summary = summarise(results, args.length)
    chains = [{"seed": r.seed, "completed": r.completed,
               "instructions": [t.instruction for t in r.tasks], "records": r.records} for r in results]
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    atomic_write_text(args.out / "chains.json", json.dumps(chains, indent=1))
    print(f"skills: {args.skills}   chains: {summary['chains']}   length: {args.length}")
    for row in summary["positions"]:
        low, high = row["ci95"]
        rate = row["success_rate"]
        print(f"  {row['position']}/{args.length} instructions in a row: {rate:.0%}  [{low:.2f}, {high:.2f}]")
    print(f"average completed length: {summary['average_completed_length']:.2f}")
    for task, row in sorted(summary["per_task"].items()):
        print(f"  {task:9s} {row['successes']}/{row['attempts']} ({row['rate']:.0%})")
    print(f"details: {args.out}/summary.json, {args.out}/chains.json")
    return 0
