"""The definition of a causal-study run: `StudyConfig`, its outcomes, and its JSON form.

It sits below `study`, `sim` and `analysis`, which all need it, so none of them imports another to get it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

OUTCOMES = ("push_distance", "strike_distance", "lift_height")  # procedures measured by experiments.causal_study.sim


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study run (saved as config.json in the run folder)."""

    treatment: str
    """Scene variable intervened on, e.g. red_block.mass."""
    values: tuple[float, ...]
    """Treatment values for do(); their range is also the treatment's natural range."""
    outcome: str = "push_distance"
    """push_distance (scripted expert push), strike_distance (fixed impulse) or lift_height (expert pick)."""
    confounder: str | None = None
    """Scene variable that drives both treatment and outcome in the observational regime."""
    episodes: int = 20
    """Units per treatment value in the interventional regime."""
    observational_episodes: int = 0
    """Units in the observational regime (0: episodes x number of values)."""
    counterfactual_units: int = 10
    """Observational units replayed under every treatment value (ground-truth counterfactuals)."""
    seed: int = 0
    """Seeds the natural draws and every unit's layout."""
    out: str = "runs/causal_study"
    """Run folder."""
    target: str = ""
    """Object pushed or struck ("" = the treatment's object if it is a block, else red_block)."""
    direction: str = "left"
    """Push direction."""
    confounder_range: tuple[float, float] | None = None
    """Natural range of the confounder (default by property: friction 0.2-1, mass 0.05-1, damping 1-10)."""
    confounding_strength: float = 0.8
    """Weight of the confounder in the treatment's natural value (0: none, 1: deterministic)."""
    impulse: float = 0.05
    """Strike impulse (N*s) for strike_distance."""
    scene: str = "kitchen"
    """The only scene so far."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes recorded with the run."""

    def __post_init__(self) -> None:
        if self.scene != "kitchen":
            raise ValueError(f"unknown scene {self.scene!r}; expected 'kitchen'")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; expected one of {', '.join(OUTCOMES)}")
        if len(self.values) < 2 or len(set(self.values)) != len(self.values):
            raise ValueError(f"--values needs at least two distinct numbers, got {list(self.values)}")
        if self.episodes < 2 or self.counterfactual_units < 0 or self.observational_episodes < 0:
            raise ValueError("episodes must be >= 2 and the other counts >= 0")
        if self.confounder == self.treatment:
            raise ValueError("the confounder must differ from the treatment")
        if not 0.0 <= self.confounding_strength <= 1.0:
            raise ValueError(f"confounding strength must be in [0, 1], got {self.confounding_strength}")

    @property
    def n_observational(self) -> int:
        """Number of observational units."""
        return self.observational_episodes or self.episodes * len(self.values)

    def pushed_object(self) -> str:
        """The object whose displacement is the outcome."""
        if self.target:
            return self.target
        owner = self.treatment.rsplit(".", 1)[0]
        return owner if owner.endswith("_block") else "red_block"


def config_dict(config: StudyConfig) -> dict[str, Any]:
    """The config as plain JSON types."""
    return json.loads(json.dumps(asdict(config)))
