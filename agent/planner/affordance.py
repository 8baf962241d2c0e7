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
from agent.skills import MOVABLE, SKILL_PARAMS, SkillCall
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
    """A learned skill policy's value estimate for running `call` now; larger means more likely to succeed.

    For example the PPO critic on the current observation, with the call's text as goal.
    """

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
        """Always 1: with no model of feasibility, no call is preferred over another."""
        return 1.0


class ValueFunctionAffordance:
    """Maps a value estimate in [low, high] linearly onto an affordance in (0, 1]."""

    def __init__(self, value_function: ValueFunction, low: float = 0.0, high: float = 1.0) -> None:
        if not high > low:
            raise InputError(f"need high > low for the value range, got low={low}, high={high}")
        self.value_function = value_function
        self.low, self.high = low, high

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        """The value estimate mapped linearly from [low, high] onto the affordance, clipped to (0, 1]."""
        raw = float(self.value_function.value(call, state))
        return _clip((raw - self.low) / (self.high - self.low))


class SkillStatsAffordance:
    """Success rates from memory, scored the same way for calls that were tried and calls that were not.

    The rule (one prior, one posterior for every call): a call's success probability has a Beta prior
    with mean ``m`` and weight 2 (two pseudo-attempts), where ``m`` is the posterior mean of its skill's
    own record (key ``"pick"``) if memory has one, else 1/2 (the uniform Beta(1, 1)). The call's own
    record (key ``"pick(red_block)"``) of ``s`` successes in ``n`` attempts updates it to the posterior
    mean ``(s + 2m) / (n + 2)``. An untried call scores ``m``; every recorded success raises a call's
    affordance and every failure lowers it (``(s + 1 + 2m) / (n + 3) > (s + 2m) / (n + 2)`` exactly when
    the current mean is below 1), so the planner prefers what has worked over what it has never tried.
    With no statistics at all the model is not used (see `affordance_with_memory`), so memory-free
    planning stays unchanged.
    """

    PRIOR_WEIGHT = 2.0

    def __init__(self, stats: Mapping[str, SkillStats]) -> None:
        self.stats = dict(stats)

    def prior_mean(self, skill: str) -> float:
        """The mean a call of `skill` starts from: the skill's own posterior mean, or 1/2."""
        record = self.stats.get(skill)
        return 0.5 if record is None else record.rate

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        """Posterior mean success rate of `call` (see the class docstring)."""
        mean = self.prior_mean(call.skill)
        record = self.stats.get(str(call)) if str(call) != call.skill else None
        if record is None:
            return _clip(mean)
        return _clip((record.successes + self.PRIOR_WEIGHT * mean) / (record.attempts + self.PRIOR_WEIGHT))


class CausalAffordance:
    """Scales a call's affordance by the causal facts that concern it.

    A fact ``(subject, relation, target, confidence)`` concerns a call when its target is

    * a call with arguments, ``"pick(red_block)"`` or ``"push(red_block)"``: the same skill, and the
      fact's arguments are the call's first arguments (``push(red_block)`` covers every direction);
    * a bare skill, ``"push"``: the same skill, and the subject's entity (``red_block`` of
      ``red_block.mass``) is one of the call's arguments, or is not a movable object at all (a fact
      about ``table.friction`` concerns every push);
    * an object id: one of the call's arguments.

    A fact about one block's mass therefore never changes what the planner expects of another block.
    A fact that hinders with confidence c multiplies by (1 - 0.9 c); one that helps moves the value
    towards 1 by half of c.
    """

    def __init__(self, facts: Sequence[MemoryFact]) -> None:
        self.facts = [f for f in facts if f.relation in CAUSAL_RELATIONS]

    def relevant(self, call: SkillCall) -> list[MemoryFact]:
        """The facts that concern `call` (see the class docstring)."""
        return [f for f in self.facts if concerns(f, call)]

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        """1 scaled down by hindering and up by helping facts about `call`."""
        value = 1.0
        for fact in self.relevant(call):
            if CAUSAL_RELATIONS[fact.relation] < 0:
                value *= 1.0 - 0.9 * fact.confidence
            else:
                value += (1.0 - value) * 0.5 * fact.confidence
        return _clip(value)


def concerns(fact: MemoryFact, call: SkillCall) -> bool:
    """Whether a causal fact's target covers `call` (rules in `CausalAffordance`)."""
    target = fact.object.replace(" ", "")
    if "(" in target and target.endswith(")"):
        skill, _, inner = target[:-1].partition("(")
        args = tuple(a for a in inner.split(",") if a)
        return skill == call.skill and call.args[: len(args)] == args
    if target in SKILL_PARAMS:
        entity = fact.subject.split(".", 1)[0]
        return target == call.skill and (entity in call.args or entity not in MOVABLE)
    return target in call.args


class ProductAffordance:
    """Independent evidence combined by multiplication."""

    def __init__(self, models: Sequence[AffordanceModel]) -> None:
        self.models = list(models)

    def affordance(self, call: SkillCall, state: SymbolicState) -> float:
        """The product of the member models' affordances (independent evidence), clipped to (0, 1]."""
        value = 1.0
        for model in self.models:
            value *= model.affordance(call, state)
        return _clip(value)


def affordance_with_memory(base: AffordanceModel | None, memory: PlannerMemory,
                           causal: bool = True) -> AffordanceModel:
    """The planner's affordance: its own model (if any) times what memory adds.

    Args:
        base: The planner's own model (e.g. a learned critic), or None.
        memory: Skill statistics and causal facts to multiply in.
        causal: Whether causal facts count. The grounded planner uses them only to choose among the
            objects an instruction leaves open, never to reorder or change what an instruction names.
    """
    models: list[AffordanceModel] = [base] if base is not None else []
    if memory.skill_stats:
        models.append(SkillStatsAffordance(memory.skill_stats))
    if causal and memory.causal_facts():
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
