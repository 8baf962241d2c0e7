"""Deciding what to do: the planning domain, planners, skill policies and the embodied loop.

The public names, importable from here (loaded on first use: the learned policies pull in torch and
stable-baselines3, which a planner-only user need not pay for)::

    from agent import EmbodiedAgent, GroundedPlanner, Plan, SkillCall

`EmbodiedAgent` (agent.loop) runs plan -> skill policies -> replanning against any `SkillWorld`;
`GroundedPlanner` / `LLMPlanner` (agent.planner) turn an instruction into a `Plan` of `SkillCall`s;
`SymbolicState` / `check_plan` (agent.symbolic) simulate and check plans; `LearnedSkillProvider`
(agent.policy) serves the shipped PPO skill policies.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EmbodiedAgent": "agent.loop",
    "EpisodeRecord": "agent.loop",
    "StepRecord": "agent.loop",
    "SkillWorld": "agent.loop",
    "SkillPolicy": "agent.loop",
    "PolicyProvider": "agent.loop",
    "SkillCall": "agent.skills",
    "Predicate": "agent.skills",
    "Plan": "agent.planner.plan",
    "Planner": "agent.planner.plan",
    "GroundedPlanner": "agent.planner.grounded",
    "LLMPlanner": "agent.planner.llm",
    "PlanningError": "agent.errors",
    "SymbolicState": "agent.symbolic",
    "check_plan": "agent.symbolic",
    "LearnedSkillProvider": "agent.policy",
    "LearnedValueAffordance": "agent.policy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
