"""The label vocabulary of the scene estimator and the oracle labels of one scene state.

The estimator (perception/) never imports envs, so the vocabulary travels to it as strings in its
config; this module is where the oracle's symbolic facts become those strings.
"""

from __future__ import annotations

from envs import predicates as pred
from envs.state import BLOCKS, MOVABLE, SceneState

OBJECTS: tuple[str, ...] = MOVABLE
LOCATIONS: tuple[str, ...] = ("table", "bowl", "drawer", "plate", *(f"on_{b}" for b in BLOCKS), "held", "none")
"""Where a movable object is: `none` means the oracle gives it no resting place (tipped, falling, in transit)."""
SEGMENT_CLASSES: tuple[str, ...] = ("other", *OBJECTS, "bowl", "plate")
"""Per-pixel classes of the stored segmentation masks: the movable objects and the two open containers."""
MIN_VISIBLE_PIXELS = 4
"""An object is visible when the segmentation masks of both cameras together show at least this many pixels."""


def location_of(facts: list[list[str]], name: str) -> str:
    """The location class of `name` in the oracle's facts."""
    for fact in facts:
        if fact[0] == "holding" and fact[1] == name:
            return "held"
        if fact[0] in ("in", "on") and fact[1] == name:
            target = fact[2]
            return f"on_{target}" if target in BLOCKS else target
    return "none"


def scene_labels(state: SceneState) -> dict[str, object]:
    """Location class per object (in `OBJECTS` order), drawer open, gripper holding: the oracle's answer."""
    facts = pred.symbolic_facts(state)
    return {
        "locations": [LOCATIONS.index(location_of(facts, name)) for name in OBJECTS],
        "drawer_open": bool(pred.drawer_open(state)),
        "holding": state.held is not None,
        "facts": facts,
    }
