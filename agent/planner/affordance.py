"""SayCan-style scoring of candidate skill calls: language score x affordance.

The language score says how well a call's text ("pick up the red block") fits the part of the
instruction being planned, from text embeddings (a softmax over the candidates). The affordance says how
likely the call is to succeed now: a learned skill policy's value estimate (through `ValueFunction`),
remembered skill statistics, causal facts, or their product. The planner keeps the scores in its trace
and picks, among the calls that keep a shortest plan possible, the one with the highest product.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from agent.errors import InputError
from agent.planner.memory import CAUSAL_RELATIONS, MemoryFact, PlannerMemory, SkillStats
from agent.skills import SkillCall
from agent.symbolic import SymbolicState
from perception.text import TextEncoder

MIN_AFFORDANCE = 1e-3


@runtime_checkable
class AffordanceModel(Protocol):
    """Estimates the probability that a skill call succeeds in a state."""

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        """A number in (0, 1]."""
        ...


@runtime_checkable
class ValueFunction(Protocol):
    """A learned skill policy's value estimate for running `call` now (e.g. the PPO critic on the
    current observation with the call's text as goal). Larger means more likely to succeed."""

    def value(self, call: SkillCall, state: SymbolicState) -> float:
        """The raw value estimate."""
        ...


def _clip(value: float) -> float:
    if not math.isfinite(value):
        raise InputError(f"an affordance must be a finite number, got {value}")
    return min(1.0, max(MIN_AFFORDANCE, value))


class UniformAffordance:
    """Every call equally feasible: the planner then ranks by language score alone."""

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        return 1.0


class ValueFunctionAffordance:
    """Maps a value estimate in [low, high] linearly onto an affordance in (0, 1]."""

    def __init__(self, value_function: ValueFunction, low: float = 0.0, high: float = 1.0) -> None:
        if not high > low:
            raise InputError(f"need high > low for the value range, got low={low}, high={high}")
        self.value_function = value_function
        self.low, self.high = low, high

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        raw = float(self.value_function.value(call, state))
        return _clip((raw - self.low) / (self.high - self.low))


class SkillStatsAffordance:
    """Success rates from memory: the call's own record if there is one, else its skill's, else 1."""

    def __init__(self, stats: Mapping[str, SkillStats]) -> None:
        self.stats = dict(stats)

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        record = self.stats.get(str(call)) or self.stats.get(call.skill)
        return 1.0 if record is None else _clip(record.rate)


class CausalAffordance:
    """Scales a call's affordance by causal facts naming it, its skill, or one of its arguments.

    A fact that hinders with confidence c multiplies by (1 - 0.9 c); one that helps moves the value
    towards 1 by half of c.
    """

    def __init__(self, facts: Sequence[MemoryFact]) -> None:
        self.facts = [f for f in facts if f.relation in CAUSAL_RELATIONS]

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        value = 1.0
        for fact in self.facts:
            if fact.object in (str(call), call.skill, *call.args):
                if CAUSAL_RELATIONS[fact.relation] < 0:
                    value *= 1.0 - 0.9 * fact.confidence
                else:
                    value += (1.0 - value) * 0.5 * fact.confidence
        return _clip(value)


class ProductAffordance:
    """Independent evidence combined by multiplication."""

    def __init__(self, models: Sequence[AffordanceModel]) -> None:
        self.models = list(models)

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        value = 1.0
        for model in self.models:
            value *= model.affordance(call, state)
        return _clip(value)


def affordance_with_memory(base: AffordanceModel | None, memory: PlannerMemory) -> AffordanceModel:
    """The planner's affordance: its own model (if any) times what memory adds."""
    models: list[AffordanceModel] = [base] if base is not None else []
    if memory.skill_stats:
        models.append(SkillStatsAffordance(memory.skill_stats))
    if memory.causal_facts():
        models.append(CausalAffordance(memory.causal_facts()))
    if not models:
        return UniformAffordance()
    return models[0] if len(models) == 1 else ProductAffordance(models)


class LanguageScorer:
    """Softmax over candidates of the cosine similarity between a context text and each call's text."""

    def __init__(self, encoder: TextEncoder, temperature: float = 0.2) -> None:
        if temperature <= 0:
            raise InputError(f"temperature must be positive, got {temperature}")
        self.encoder = encoder
        self.temperature = temperature

    def scores(self, context: str, calls: Sequence[SkillCall]) -> list[float]:
        """One probability per call, summing to 1 (empty list for no calls)."""
        if not calls:
            return []
        vectors = self.encoder.encode([context, *(c.text for c in calls)])
        similarity = vectors[1:] @ vectors[0]
        logits = similarity / self.temperature
        weights = np.exp(logits - logits.max())
        return [float(w) for w in weights / weights.sum()]
