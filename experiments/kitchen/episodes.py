"""Running instructions with the embodied agent in the kitchen and saving what happened (trace, GIF)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.loop import EmbodiedAgent, EpisodeRecord
from envs.household import HouseholdEnv
from experiments.common.jsonio import write_json
from experiments.common.media import save_gif
from experiments.kitchen import factory
from experiments.kitchen.world import KitchenWorld, skill_caption


@dataclass
class Session:
    """An env, its `SkillWorld` view, and an agent wired to it."""

    env: HouseholdEnv
    world: KitchenWorld
    agent: EmbodiedAgent
    memory: Any = None
    instruction: str = ""

    def close(self) -> None:
        """Close the memory store (when there is one) and the env."""
        if self.memory is not None:
            self.memory.close()
        self.env.close()


def open_session(options: factory.AgentOptions, record: bool = False, record_every: int = 2,
                 gui: bool = False) -> Session:
    """Build env + world + planner + policies (+ memory) from the agent options.

    With `gui`, the env opens PyBullet's GUI window (render_mode "human") and the episode plays in it at the
    control rate; a GIF is still recorded when `record` is set.

    Learned skills act with one torch thread in every process: the thread count changes float rounding in the
    policy network, and a different action changes the physics, so this keeps a chain identical whether it
    runs here or on a Ray worker (and costs nothing for batch-1 inference).
    """
    import torch

    torch.set_num_threads(1)
    env, world = factory.make_world(options, record=record, gui=gui)
    provider = factory.make_provider(options, world)
    affordance = factory.make_value_affordance(provider, world)
    planner = factory.make_planner(options, affordance=affordance)
    memory = factory.open_memory(options)
    agent = EmbodiedAgent(planner, provider, max_replans=options.max_replans, store=memory,
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
    record = session.agent.run(session.world, instruction)  # with --memory the agent reads and writes the store
    if out is not None:
        trace = {"seed": seed, **record.to_json()}
        if hasattr(session.world, "trace"):  # perceived worlds log perceived vs true facts at every plan
            trace["perception"] = session.world.trace
        write_json(out / f"{name}.json", trace)
        if record.frames:
            save_gif(out / f"{name}.gif", record.frames)
    return record


def describe(record: EpisodeRecord) -> str:
    """A few readable lines about an episode, for the terminal."""
    lines = [f"instruction: {record.instruction}"]
    lines += [f"  note: {note}" for note in record.notes]
    if record.answer is not None:
        lines.append(f"answer: {record.answer}")
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
