"""Planners: instruction -> `Plan` of skill calls over the planning domain of `agent.skills`.

`GroundedPlanner` is the built-in one (rules for structure, text embeddings for words, symbolic search,
SayCan-style scoring); `LLMPlanner` asks a chat model and falls back to it. Both satisfy `Planner`.
"""

from __future__ import annotations

from agent.errors import PlanningError
from agent.planner.affordance import (
    AffordanceModel,
    CausalAffordance,
    LanguageScorer,
    ProductAffordance,
    SkillStatsAffordance,
    UniformAffordance,
    ValueFunction,
    ValueFunctionAffordance,
)
from agent.planner.grounded import GroundedPlanner
from agent.planner.memory import MemoryFact, PlannerMemory, SkillStats, as_memory
from agent.planner.plan import Plan, Planner, PlanTrace, ScoredCall, StepTrace, plan_from_json
from agent.skills import Predicate, SkillCall

__all__ = [
    "AffordanceModel",
    "CausalAffordance",
    "GroundedPlanner",
    "LanguageScorer",
    "MemoryFact",
    "Plan",
    "PlanTrace",
    "Planner",
    "PlannerMemory",
    "PlanningError",
    "Predicate",
    "ProductAffordance",
    "ScoredCall",
    "SkillCall",
    "SkillStats",
    "SkillStatsAffordance",
    "StepTrace",
    "UniformAffordance",
    "ValueFunction",
    "ValueFunctionAffordance",
    "as_memory",
    "plan_from_json",
]
