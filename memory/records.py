"""The value types the knowledge store takes and returns.

Records are frozen dataclasses so that what the planner reads cannot be mutated behind the store's
back. Inputs are validated here, once, so that the SQL layer only ever sees clean values and bad
input fails with a message naming the field, what was expected and what came.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from memory.errors import InputError

SOURCE_KINDS: tuple[str, ...] = ("episode", "study", "user")

# Relations that hold at most one value per subject at a time, grouped into slots: a new fact in a
# slot replaces the subject's current fact in the same slot (a block is in ONE place), instead of
# piling up contradictions. Every relation not listed here may hold many values at once.
DEFAULT_FUNCTIONAL_SLOTS: Mapping[str, str] = {
    "located_in": "location",
    "location": "location",
    "in": "location",
    "on": "location",
    "inside": "location",
    "state": "state",
    "holding": "holding",
}
LOCATION_SLOT = "location"


def _require_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _require_probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _require_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Provenance:
    """Where a piece of knowledge came from: an episode, a causal study or a user.

    The string form is `kind:ref` (`episode:3f2a…`, `study:mass_push`) or a bare `user`.
    """

    kind: str
    ref: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise InputError(f"provenance kind must be one of {', '.join(SOURCE_KINDS)}, got {self.kind!r}")
        if not isinstance(self.ref, str):
            raise InputError(f"provenance ref must be a string, got {self.ref!r}")

    @classmethod
    def parse(cls, value: Provenance | str) -> Provenance:
        """Accept a `Provenance` or its string form `kind[:ref]`."""
        if isinstance(value, Provenance):
            return value
        if not isinstance(value, str):
            raise InputError(f"provenance must be 'episode:REF', 'study:REF' or 'user', got {value!r}")
        kind, _, ref = value.partition(":")
        return cls(kind, ref)

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref}" if self.ref else self.kind


class Triple(NamedTuple):
    """A fact to add: (subject, relation, object) with the confidence of this observation."""

    subject: str
    relation: str
    object: str
    confidence: float = 1.0

    @classmethod
    def coerce(cls, value: object) -> Triple:
        """Accept a Triple, or a 3- or 4-sequence `(subject, relation, object[, confidence])`."""
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) not in (3, 4):
            raise InputError(f"a fact must be (subject, relation, object[, confidence]), got {value!r}")
        subject = _require_text("fact subject", value[0])
        relation = _require_text("fact relation", value[1])
        obj = _require_text("fact object", value[2])
        confidence = _require_probability("fact confidence", value[3]) if len(value) == 4 else 1.0
        return cls(subject, relation, obj, confidence)


@dataclass(frozen=True)
class Fact:
    """A stored fact. `active` is False once newer evidence superseded it (kept as history)."""

    id: int
    uid: str
    subject: str
    relation: str
    object: str
    confidence: float
    source: Provenance
    observed_at: float
    created_at: float
    updated_at: float
    evidence: int
    active: bool
    superseded_by: int | None

    @property
    def triple(self) -> tuple[str, str, str]:
        """The fact's (subject, relation, object), without confidence or provenance: what revision matches on."""
        return (self.subject, self.relation, self.object)


@dataclass(frozen=True)
class StepOutcome:
    """How one skill call of a plan went."""

    skill: str
    args: tuple[str, ...] = ()
    success: bool = False
    steps: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        _require_text("step skill", self.skill)
        if isinstance(self.args, str) or not all(isinstance(a, str) and a for a in self.args):
            raise InputError(f"step args must be a sequence of non-empty strings, got {self.args!r}")
        object.__setattr__(self, "args", tuple(self.args))
        if not isinstance(self.success, bool):
            raise InputError(f"step success must be a bool, got {self.success!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise InputError(f"step count must be a non-negative int, got {self.steps!r}")

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object, the form stored in an episode's steps column."""
        return {"skill": self.skill, "args": list(self.args), "success": self.success, "steps": self.steps,
                "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepOutcome:
        """Parse `to_json`'s form; optional fields get defaults, ValueError when 'skill' is missing."""
        if not isinstance(data, Mapping) or "skill" not in data:
            raise InputError(f"a step outcome must be an object with 'skill', got {data!r}")
        return cls(data["skill"], tuple(data.get("args", ())), data.get("success", False),
                   data.get("steps", 0), data.get("note", ""))


@dataclass(frozen=True)
class EpisodeRecord:
    """What the agent loop hands the store after an episode.

    Attributes:
        instruction: the sentence the episode tried to carry out.
        plan: the plan as JSON-compatible data (the `embodia plan --json` shape).
        steps: per-skill-call outcomes, in order; they update the skill statistics.
        final_facts: symbolic facts true at the end; they revise the remembered world.
        success: whether the instruction was achieved; defaults to "every step succeeded".
        metadata: free JSON-compatible extras (seed, task, run name).
        uid: stable identity across export/import; generated when omitted.
    """

    instruction: str
    plan: Any = None
    steps: Sequence[StepOutcome] = ()
    final_facts: Sequence[Triple | Sequence[Any]] = ()
    success: bool | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    uid: str | None = None

    def __post_init__(self) -> None:
        _require_text("episode instruction", self.instruction)
        steps = tuple(s if isinstance(s, StepOutcome) else StepOutcome.from_json(s) for s in self.steps)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "final_facts", tuple(Triple.coerce(f) for f in self.final_facts))
        if self.success is None:
            object.__setattr__(self, "success", bool(steps) and all(s.success for s in steps))
        elif not isinstance(self.success, bool):
            raise InputError(f"episode success must be a bool or None, got {self.success!r}")
        try:
            json.dumps(self.plan)
            json.dumps(dict(self.metadata))
        except (TypeError, ValueError) as error:
            raise InputError(f"episode plan and metadata must be JSON-compatible: {error}") from error


@dataclass(frozen=True)
class Episode:
    """A stored episode."""

    id: int
    uid: str
    instruction: str
    plan: Any
    steps: tuple[StepOutcome, ...]
    final_facts: tuple[Triple, ...]
    success: bool
    metadata: Mapping[str, Any]
    created_at: float


@dataclass(frozen=True)
class SkillStats:
    """Success statistics of a skill (optionally for one argument tuple) with a Beta posterior.

    `mean` is the posterior mean of the success rate under a Beta(prior_a, prior_b) prior over all
    outcomes ever recorded; `recent_mean` is the same over only the newest `recent_attempts`, so a
    skill that used to work and now keeps failing drops quickly there.
    """

    skill: str
    args: tuple[str, ...] | None
    attempts: int
    successes: int
    recent_attempts: int
    recent_successes: int
    prior_a: float = 1.0
    prior_b: float = 1.0

    @property
    def failures(self) -> int:
        """Attempts that did not succeed."""
        return self.attempts - self.successes

    @property
    def mean(self) -> float:
        """Posterior mean success probability over every recorded attempt, under the Beta(prior_a, prior_b) prior."""
        return (self.successes + self.prior_a) / (self.attempts + self.prior_a + self.prior_b)

    @property
    def recent_mean(self) -> float:
        """Posterior mean over the newest `recent_attempts` only, so a skill that started failing shows it."""
        return (self.recent_successes + self.prior_a) / (self.recent_attempts + self.prior_a + self.prior_b)

    @property
    def variance(self) -> float:
        """Variance of the all-time Beta posterior: how uncertain `mean` still is."""
        a = self.successes + self.prior_a
        b = self.failures + self.prior_b
        return a * b / ((a + b) ** 2 * (a + b + 1))


@dataclass(frozen=True)
class CausalFact:
    """A causal claim, e.g. ("red_block.mass", "decreases", "push_distance", effect=-0.03, ci=(-0.04, -0.02))."""

    id: int
    uid: str
    subject: str
    relation: str
    object: str
    effect: float
    ci_low: float | None
    ci_high: float | None
    level: float
    n: int | None
    source: Provenance
    created_at: float
    active: bool
    superseded_by: int | None


def validate_causal(relation: str, effect: float, interval: tuple[float, float] | None, level: float) -> None:
    """Reject causal claims whose numbers contradict their words or each other."""
    _require_text("causal relation", relation)
    _require_finite("causal effect", effect)
    if (relation == "increases" and effect <= 0) or (relation == "decreases" and effect >= 0):
        raise InputError(f"relation {relation!r} contradicts effect {effect}; expected the sign to match")
    if interval is not None:
        low, high = (_require_finite("interval bound", v) for v in interval)
        if low > high:
            raise InputError(f"interval must be (low, high) with low <= high, got {interval!r}")
    if not 0.0 < _require_finite("interval level", level) < 1.0:
        raise InputError(f"interval level must be in (0, 1), got {level!r}")


@dataclass(frozen=True)
class Hit:
    """One retrieved item: `score` = cosine `similarity` plus the entity bonus when it names a queried entity."""

    kind: str
    score: float
    similarity: float
    item: Fact | Episode | CausalFact


@dataclass(frozen=True)
class Retrieval:
    """Top-k facts, episodes and causal facts for a query, with the entities recognised in it."""

    query: str
    entities: tuple[str, ...]
    facts: tuple[Hit, ...]
    episodes: tuple[Hit, ...]
    causal: tuple[Hit, ...]


def triples_from_scene_facts(scene_facts: Sequence[Sequence[str]]) -> list[Triple]:
    """Turn the env's `info["facts"]` (predicate first) into store triples.

    `["in", "red_block", "bowl"]` → (red_block, in, bowl); `["open", "drawer"]` → (drawer, state, open);
    `["holding", "mug"]` → (gripper, holding, mug) and (mug, located_in, gripper);
    `["gripper_empty"]` → (gripper, holding, nothing). Other n-ary facts keep their first argument as
    subject and join the rest as object.
    """
    triples: list[Triple] = []
    for fact in scene_facts:
        if isinstance(fact, str) or not fact or not all(isinstance(part, str) and part for part in fact):
            raise InputError(f"a scene fact must be a non-empty list of strings, got {fact!r}")
        predicate, args = fact[0], list(fact[1:])
        if predicate == "gripper_empty" and not args:
            triples.append(Triple("gripper", "holding", "nothing"))
        elif predicate == "holding" and len(args) == 1:
            triples += [Triple("gripper", "holding", args[0]), Triple(args[0], "located_in", "gripper")]
        elif len(args) == 1:
            triples.append(Triple(args[0], "state", predicate))
        elif len(args) >= 2:
            triples.append(Triple(args[0], predicate, ",".join(args[1:])))
        else:
            triples.append(Triple("scene", "holds", predicate))
    return triples
