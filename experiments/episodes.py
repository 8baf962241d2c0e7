"""Running instructions with the embodied agent in the kitchen and saving what happened (trace, GIF)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.loop import EmbodiedAgent, EpisodeRecord
from envs.household import HouseholdEnv
from experiments import factory
from experiments.io import atomic_write_text
from experiments.kitchen_world import KitchenWorld, skill_caption
from experiments.media import save_gif


@dataclass
class Session:
    """An env, its `SkillWorld` view, and an agent wired to it."""

    env: HouseholdEnv
    world: KitchenWorld
    agent: EmbodiedAgent
    memory: Any = None
    instruction: str = ""

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
        self.env.close()


def open_session(args: argparse.Namespace, record: bool = False, record_every: int = 2) -> Session:
    """Build env + world + planner + policies (+ memory) from CLI arguments.

    Learned skills act with one torch thread in every process: the thread count changes float rounding in the
    policy network, and a different action changes the physics, so this keeps a chain identical whether it
    runs here or on a Ray worker (and costs nothing for batch-1 inference).
    """
    import torch

    torch.set_num_threads(1)
    env, world = factory.make_world(args, record=record)
    provider = factory.make_provider(args, world)
    affordance = factory.make_value_affordance(provider, world)
    planner = factory.make_planner(args, affordance=affordance)
    memory = factory.open_memory(args)
    agent = EmbodiedAgent(planner, provider, max_replans=args.max_replans,
                          memory=memory.planner_memory() if memory is not None else None,
                          record_every=record_every if record else 0,
                          before_planning=_observer(affordance))
    session = Session(env, world, agent, memory)
    agent.caption = lambda frame, call, status: skill_caption(frame, call, status, session.instruction)
    return session


def _observer(affordance: Any) -> Any:
    """Before each plan, show the value-based affordance model the scene (None: nothing to show)."""
    if affordance is None:
        return None
    return lambda world: affordance.observe(world.observation(), world.objects(), world.facts())


def run_instruction(session: Session, instruction: str, seed: int | None, out: Path | None, name: str = "episode"
                    ) -> EpisodeRecord:
    """Reset (when a seed is given), run one instruction, write `<name>.json` and `<name>.gif` under `out`."""
    if seed is not None:
        session.world.reset(seed=seed)
    session.instruction = instruction
    record = session.agent.run(session.world, instruction)
    if session.memory is not None:
        session.memory.record_episode(record)
        session.agent.memory = session.memory.planner_memory()
    if out is not None:
        trace = {"seed": seed, **record.to_json()}
        if hasattr(session.world, "trace"):  # perceived worlds log perceived vs true facts at every plan
            trace["perception"] = session.world.trace
        atomic_write_text(out / f"{name}.json", json.dumps(trace, indent=2))
        if record.frames:
            save_gif(out / f"{name}.gif", record.frames)
    return record


def describe(record: EpisodeRecord) -> str:
    """A few readable lines about an episode, for the terminal."""
    lines = [f"instruction: {record.instruction}"]
    for step in record.steps:
        mark = "ok " if step.success else "FAIL"
        lines.append(f"  [{mark}] {step.call.text:38s} {step.policy:9s} {step.steps:3d} steps"
                     + (f"  ({step.reason})" if step.reason else ""))
    for replan in record.replans:
        lines.append(f"  replanned after '{replan['after']}': {replan['reason']}")
    lines.append(f"result: {'success' if record.success else 'failure'} in {record.seconds:.1f}s"
                 + (f"; unmet goals {record.unmet_goals}" if record.unmet_goals else "")
                 + (f"; {record.error}" if record.error else ""))
    return "\n".join(lines)
