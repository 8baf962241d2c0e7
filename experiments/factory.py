"""Builds the pieces a command needs from its arguments: encoder, planner, env, world, skill policies."""

from __future__ import annotations

import argparse
from typing import Any

from perception.text import TextEncoder, default_text_encoder

PLANNERS = ("grounded", "llm")
SKILL_MODES = ("scripted", "learned", "auto")


def llm_timeout(text: str) -> float:
    """argparse type of --llm-timeout: a finite number of seconds > 0 (anything else exits 2)."""
    from agent.planner.llm import validate_timeout

    try:
        return validate_timeout(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """--llm-url/--llm-model/--llm-dir/--llm-timeout, shared by every command that plans."""
    parser.add_argument("--llm-url", default=None, help="OpenAI-compatible chat endpoint (with --planner llm); "
                        "an API key is read from $EMBODIA_LLM_API_KEY or $OPENAI_API_KEY and never logged")
    parser.add_argument("--llm-model", default=None, help="model name at --llm-url")
    parser.add_argument("--llm-dir", default=None, help="local Hugging Face causal-LM directory (with --planner llm)")
    parser.add_argument("--llm-timeout", type=llm_timeout, default=30.0,
                        help="total seconds per LLM request (connect + answer), a finite number > 0")


def add_planner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--planner", choices=PLANNERS, default="grounded", help="planner back end")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                        help="text encoder used for grounding (hashing: fast, for tests only)")
    add_llm_arguments(parser)


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    add_planner_arguments(parser)
    parser.add_argument("--skills", choices=SKILL_MODES, default="scripted",
                        help="skill policies: scripted experts (the default: the most reliable mid-task), learned "
                             "PPO policies, or auto: the shipped learned policy where its evaluation reached 80%%, "
                             "the scripted expert otherwise and for calls the learned policy failed")
    parser.add_argument("--max-replans", type=int, default=2, help="replans allowed after failed steps")
    parser.add_argument("--memory", default=None, help="knowledge store (SQLite file) the planner reads and writes")


def make_encoder(kind: str) -> TextEncoder:
    return default_text_encoder(kind)


def make_planner(args: argparse.Namespace, encoder: TextEncoder | None = None, affordance: Any = None) -> Any:
    """The planner named by --planner (the LLM one falls back to the grounded planner on bad output)."""
    from agent.planner import GroundedPlanner

    encoder = encoder or make_encoder(args.encoder)
    grounded = GroundedPlanner(encoder, affordance=affordance)
    if args.planner == "grounded":
        return grounded
    return make_llm_planner(grounded, url=args.llm_url, model=args.llm_model, model_dir=args.llm_dir,
                            timeout=getattr(args, "llm_timeout", 30.0))


def make_llm_planner(fallback: Any, url: str | None = None, model: str | None = None, model_dir: Any = None,
                     timeout: float = 30.0) -> Any:
    """`LLMPlanner` over a local model directory (`model_dir`) or an OpenAI-compatible server (`url` + `model`).

    The server's API key comes from $EMBODIA_LLM_API_KEY or $OPENAI_API_KEY (sent as a bearer header, never
    logged); `fallback` grounds each instruction and plans whenever the model's answer is not used.
    """
    from agent.planner.llm import LLMPlanner, OpenAIChatClient, api_key_from_env, validate_timeout

    timeout = validate_timeout(timeout)
    if model_dir:
        from experiments.llm_local import HFChatClient

        return LLMPlanner(HFChatClient(model_dir), fallback)
    if not (url and model):
        raise ValueError("--planner llm needs --llm-url and --llm-model (or --llm-dir for a local model)")
    return LLMPlanner(OpenAIChatClient(url, model, timeout=timeout, api_key=api_key_from_env()), fallback)


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
