"""Memory-dependent instructions: success with the knowledge store against the same chains without it.

Each case is a chain in one scene: setup instructions create the memory ("put the red block in the drawer"),
then the probe needs it ("take out the block you put in the drawer"). The agent runs with the scripted skills
and, in the memory condition, a fresh knowledge store per chain that the loop reads before and writes after
every episode. Without the store the probe should be refused with "I do not remember ..." (counted as a
failure, and checked to be that refusal rather than a guess).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.errors import PlanningError
from agent.skills import Predicate
from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.memory_bench.cases import MemoryCase, memory_cases


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench memory-instructions`."""
    parser.add_argument("--seed", type=args_types.seed, default=0, help="first scene seed (cases use seed + offset)")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder for grounding and the store's retrieval")
    parser.add_argument("--kinds", nargs="+", default=None,
                        choices=("relative", "back", "repeat", "question"), help="only these kinds of case")
    parser.add_argument("--limit", type=int, default=None, help="at most this many cases (for a quick check)")
    parser.add_argument("--conditions", nargs="+", default=["store", "none"], choices=("store", "none"),
                        help="with the knowledge store, without it (the baseline), or both")
    parser.add_argument("--out", type=args_types.output_dir, default=None,
                        help="also write every case's episodes here as JSON")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every case in each condition; print a table by kind; return the figures."""
    from experiments.common.stats import wilson_interval
    from experiments.kitchen.episodes import open_session
    from experiments.kitchen.factory import AgentOptions

    cases = [c for c in memory_cases(args.seed) if args.kinds is None or c.kind in args.kinds][: args.limit]
    if not cases:
        raise InputError("no cases selected: check --kinds and --limit")
    session = open_session(AgentOptions(planner="grounded", encoder=args.encoder, skills="scripted", max_replans=2))
    figures: dict[str, Any] = {"cases": len(cases), "encoder": args.encoder, "seed": args.seed, "conditions": {}}
    details: dict[str, list[dict[str, Any]]] = {}
    try:
        for condition in args.conditions:
            started = time.perf_counter()
            rows = [run_case(session, case, condition == "store", args.encoder) for case in cases]
            details[condition] = rows
            by_kind: dict[str, list[bool]] = {}
            for case, row in zip(cases, rows, strict=True):
                by_kind.setdefault(case.kind, []).append(row["passed"])
            passed = sum(r["passed"] for r in rows)
            low, high = wilson_interval(passed, len(rows))
            figures["conditions"][condition] = {
                "passed": passed, "cases": len(rows), "success_rate": passed / len(rows), "ci95": [low, high],
                "setup_failures": sum(not r["setup_ok"] for r in rows),
                "honest_refusals": sum(r["refused"] and "do not remember" in r["error"] for r in rows),
                "by_kind": {k: {"passed": sum(v), "cases": len(v), "success_rate": sum(v) / len(v)}
                            for k, v in sorted(by_kind.items())},
                "seconds": time.perf_counter() - started,
            }
    finally:
        session.close()
    _print(figures)
    if args.out is not None:
        from experiments.common.jsonio import write_json

        write_json(args.out / "memory_instructions.json", {"figures": figures, "cases": details}, indent=1, default=str)
    return figures


def run_case(session: Any, case: MemoryCase, with_store: bool, encoder: str) -> dict[str, Any]:
    """Run one chain (setup, then probe) from a fresh scene; score the probe."""
    from experiments.kitchen.factory import make_encoder
    from experiments.kitchen.memory_bridge import MemoryBridge

    agent, world = session.agent, session.world
    world.reset(seed=case.seed)
    row: dict[str, Any] = {"kind": case.kind, "seed": case.seed, "setup": list(case.setup), "probe": case.probe,
                           "setup_ok": True, "refused": False, "error": "", "passed": False}
    with tempfile.TemporaryDirectory(prefix="memory_bench_") as folder:
        store = MemoryBridge(Path(folder) / "store.sqlite", make_encoder(encoder)) if with_store else None
        agent.store, agent.memory = store, None
        try:
            for instruction in case.setup:
                record = agent.run(world, instruction)
                if not record.success:
                    why = record.error or f"unmet {record.unmet_goals}"
                    row.update(setup_ok=False, error=f"setup {instruction!r} failed: {why}")
                    return row
            try:
                record = agent.run(world, case.probe)
            except PlanningError as error:
                row.update(refused=True, error=str(error))
                return row
            row["episode"] = record.to_json()
            row["passed"] = score(case, record)
        finally:
            agent.store, agent.memory = None, None
            if store is not None:
                store.close()
    return row


def score(case: MemoryCase, record: Any) -> bool:
    """Whether the probe did what memory should have made it do."""
    if case.answer:
        return record.answer is not None and case.answer in record.answer
    if not record.success:
        return False
    goal = {str(Predicate.from_json(p)) for stage in record.goal for p in stage}
    if not set(case.expect) <= goal:
        return False
    done = {(s.call.args[0], s.call.args[1]) for s in record.steps if s.call.skill == "push" and s.success}
    return set(case.pushes) <= done


def _print(figures: dict[str, Any]) -> None:
    print(f"memory-dependent instructions: {figures['cases']} chains, encoder {figures['encoder']}, "
          f"seed {figures['seed']}, scripted skills")
    kinds = sorted({k for c in figures["conditions"].values() for k in c["by_kind"]})
    header = f"{'condition':<10}" + "".join(f"{k:>11}" for k in kinds) + f"{'all':>9}{'95% CI':>15}{'refused':>9}"
    print(header)
    print("-" * len(header))
    for name, c in figures["conditions"].items():
        row = f"{name:<10}" + "".join(f"{c['by_kind'][k]['passed']:>5}/{c['by_kind'][k]['cases']:<5}" for k in kinds)
        low, high = c["ci95"]
        row += f"{c['success_rate']:>9.0%}{f'[{low:.2f}, {high:.2f}]':>15}{c['honest_refusals']:>9}"
        print(row)
    for name, c in figures["conditions"].items():
        if c["setup_failures"]:
            print(f"  {name}: {c['setup_failures']} chains failed in their setup instructions")
