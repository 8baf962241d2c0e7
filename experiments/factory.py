"""Builds the pieces a command needs from its arguments: encoder, planner, env, world, skill policies."""

from __future__ import annotations

import argparse
from typing import Any

from perception.text import TextEncoder, default_text_encoder

PLANNERS = ("grounded", "llm")
SKILL_MODES = ("scripted", "learned", "auto")


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--planner", choices=PLANNERS, default="grounded", help="planner back end")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder used for grounding (hashing: fast, for tests only)")
    parser.add_argument("--llm-url", default=None, help="OpenAI-compatible chat endpoint (with --planner llm)")
    parser.add_argument("--llm-model", default=None, help="model name at --llm-url")
    parser.add_argument("--llm-dir", default=None, help="local Hugging Face causal-LM directory (with --planner llm)")


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    add_planner_arguments(parser)
    parser.add_argument("--skills", choices=SKILL_MODES, default="scripted",
                        help="skill policies: scripted experts (the default: the most reliable mid-task), learned "
                             "PPO policies, or auto: the shipped learned policy where its evaluation reached 80%%, "
                             "the scripted expert otherwise and for calls the learned policy failed")
    parser.add_argument("--max-replans", type=int, default=2, help="replans allowed after failed steps")
    parser.add_argument("--memory", default=None, help="knowledge store (SQLite file) the planner reads and writes")
    parser.add_argument("--perception", choices=("oracle", "learned"), default="oracle",
                        help="where facts and success checks come from: the simulator's oracle, or the scene "
                             "estimator reading cameras and touch (the oracle then only scores the report)")
    parser.add_argument("--estimator", default=None,
                        help="scene-estimator weights for --perception learned (default: the shipped one)")


def make_world(args: argparse.Namespace, record: bool = False) -> tuple[Any, Any]:
    """The kitchen env and its `SkillWorld` view: oracle facts, or perceived ones with --perception learned."""
    if getattr(args, "perception", "oracle") == "learned":
        from experiments.scene_estimation.world import open_perceived_world

        return open_perceived_world(getattr(args, "estimator", None), record=record)
    from envs.household import HouseholdEnv
    from experiments.kitchen_world import KitchenWorld

    env = HouseholdEnv(task="none", render_mode="rgb_array" if record else None)
    return env, KitchenWorld(env, record=record)


def make_encoder(kind: str) -> TextEncoder:
    return default_text_encoder(kind)


def make_planner(args: argparse.Namespace, encoder: TextEncoder | None = None, affordance: Any = None) -> Any:
    """The planner named by --planner (the LLM one falls back to the grounded planner on bad output)."""
    from agent.planner import GroundedPlanner

    encoder = encoder or make_encoder(args.encoder)
    grounded = GroundedPlanner(encoder, affordance=affordance)
    if args.planner == "grounded":
        return grounded
    if not (args.llm_url and args.llm_model) and not args.llm_dir:
        raise ValueError("--planner llm needs --llm-url and --llm-model, or --llm-dir")
    from agent.planner.llm import make_llm_planner

    return make_llm_planner(fallback=grounded, url=args.llm_url, model=args.llm_model, model_dir=args.llm_dir)


def make_provider(args: argparse.Namespace, world: Any) -> Any:
    """Skill policies per --skills: scripted experts, learned PPO policies, or learned where good enough."""
    from experiments.kitchen_world import ScriptedProvider

    scripted = ScriptedProvider(world)
    if args.skills == "scripted":
        return scripted
    from agent.policy import LearnedSkillProvider

    return LearnedSkillProvider(fallback=scripted.policy_for, mode=args.skills)


def make_value_affordance(provider: Any, world: Any) -> Any:
    """SayCan affordances from the learned policies' critics, or None when every skill is scripted."""
    from agent.policy import LearnedSkillProvider, LearnedValueAffordance

    if not isinstance(provider, LearnedSkillProvider):
        return None
    return LearnedValueAffordance(provider, potential=world.shaping_potential)


def open_memory(args: argparse.Namespace) -> Any:
    """The knowledge store named by --memory, wrapped for the planner and the loop (None without it)."""
    if not getattr(args, "memory", None):
        return None
    from experiments.memory_bridge import MemoryBridge

    return MemoryBridge(args.memory, make_encoder(args.encoder))
