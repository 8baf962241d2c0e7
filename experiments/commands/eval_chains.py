"""`embodia eval-chains`: CALVIN-style chains of instructions run without reset."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from functools import partial
from pathlib import Path

from experiments.common import args as args_types
from experiments.common.distributed import add_ray_arguments
from experiments.common.errors import InputError
from experiments.common.jsonio import write_json
from experiments.kitchen import factory


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `embodia eval-chains` and its options (chains, length, seed, output, agent and Ray options)."""
    parser = subparsers.add_parser("eval-chains", help="long-horizon evaluation over chains of instructions")
    parser.add_argument("--chains", type=int, default=100, help="number of chains")
    parser.add_argument("--length", type=int, default=5, help="instructions per chain")
    parser.add_argument("--seed", type=args_types.seed, default=0, help="first chain seed (chain i uses seed + i)")
    parser.add_argument("--out", type=args_types.output_dir, default=Path("runs/eval_chains"), help="results folder")
    factory.add_agent_arguments(parser)
    add_ray_arguments(parser)
    parser.set_defaults(func=run)


def _open(args: argparse.Namespace):
    from experiments.kitchen.episodes import open_session

    return open_session(factory.AgentOptions.from_args(args))


def _chain(session, seed: int, length: int):
    from experiments.kitchen.chains import run_chain

    return run_chain(session.agent, session.world, seed, length)


def run_chains(args: argparse.Namespace) -> list:
    """Every chain, serially or over Ray; a chain depends only on its seed, so both give the same results."""
    from tqdm import tqdm

    seeds = [args.seed + i for i in range(args.chains)]
    progress = tqdm(total=len(seeds), desc="chains")
    if args.ray:
        if args.memory:
            raise InputError("--memory cannot be combined with --ray: episodes would write the store in any order")
        from experiments.common.distributed import ray_map

        results = ray_map(partial(_open, args), partial(_chain, length=args.length), seeds, args.ray_workers,
                          args.ray_address, on_result=lambda *_: progress.update())
    else:
        session = _open(args)
        results = []
        try:
            for seed in seeds:
                results.append(_chain(session, seed, args.length))
                progress.update()
                progress.set_postfix(avg_len=f"{sum(r.completed for r in results) / len(results):.2f}")
        finally:
            session.close()
    progress.close()
    return results


def run(args: argparse.Namespace) -> int:
    """Run the chains, write summary.json and chains.json, and print success by position in the chain.

    Raises ValueError when --chains or --length is below 1; returns 0.
    """
    from experiments.kitchen.chains import summarise

    if args.chains < 1 or args.length < 1:
        raise InputError(f"--chains and --length must be >= 1, got {args.chains} and {args.length}")
    results = run_chains(args)
    summary = summarise(results, args.length)
    summary["agent"] = asdict(factory.AgentOptions.from_args(args))  # how the agent was built, to reproduce the figure
    chains = [{"seed": r.seed, "completed": r.completed,
               "instructions": [t.instruction for t in r.tasks], "records": r.records} for r in results]
    write_json(args.out / "summary.json", summary)
    write_json(args.out / "chains.json", chains, indent=1)
    print(f"skills: {args.skills}   chains: {summary['chains']}   length: {args.length}")
    print("scored by the oracle on the tasks drawn (the result):")
    for row in summary["positions"]:
        low, high = row["ci95"]
        print(f"  {row['position']}/{args.length} instructions in a row: {row['success_rate']:.0%}  "
              f"[{low:.2f}, {high:.2f}]")
    print(f"average completed length: {summary['average_completed_length']:.2f}")
    v = summary["agent_verdicts"]
    judge = "perception" if args.perception == "learned" else "oracle facts, against the goal it read"
    print(f"the agent's own verdicts ({judge}): {v['agree']}/{v['instructions']} agree with the referee; "
          f"false success {v['false_success']}, false failure {v['false_failure']}; "
          f"average completed length as the agent judged it: {summary['agent_completed_length']:.2f}")
    for task, row in sorted(summary["per_task"].items()):
        print(f"  {task:9s} {row['successes']}/{row['attempts']} ({row['rate']:.0%})")
    print(f"details: {args.out}/summary.json, {args.out}/chains.json")
    return 0
