"""Geometric truth about the scene: is X in the bowl, on the plate, held, is the drawer open.

Pure functions of a `SceneState`; the task oracle and the symbolic facts the planner reads are both
built from them, so "success" and "what the planner believes" can never disagree.
"""

from __future__ import annotations

import math

import numpy as np

from envs.scene import (
    BOWL_RADIUS,
    DRAWER_INTERIOR,
    PLATE_HEIGHT,
    PLATE_RADIUS,
    SPECS,
)
from envs.state import BLOCK_HALF, BLOCKS, MOVABLE, SceneState

OPEN_THRESHOLD = 0.10
CLOSED_THRESHOLD = 0.015
REACH_TOLERANCE = 0.04
ON_TABLE_HEIGHT = 0.02


_GRASP_OFFSETS = {name: np.array([0.0, 0.0, spec.grasp_height]) for name, spec in SPECS.items()}
"""Grasp point relative to each object's body origin (read every env step by the reach oracle and reward)."""


def grasp_point(state: SceneState, name: str) -> np.ndarray:
    """Where the gripper should close on an object (its centre for blocks, mid-body for the mug)."""
    return state.position(name) + _GRASP_OFFSETS[name]


def grasp_distance(state: SceneState, name: str) -> float:
    """Distance from the gripper's grasp point to `name`'s: `distance(state.ee_position, grasp_point(state, name))`.

    The reach oracle and the dense reward read it every step. The offset is formed on plain floats
    (the same subtractions; only the sign of a zero can differ, which squaring removes) and only
    the dot product stays numpy's, whose rounding (fused multiply-adds in BLAS) plain Python cannot match.
    """
    x, y, z = state.position(name).tolist()
    ex, ey, ez = state.ee_position.tolist()
    offset = np.array((ex - x, ey - y, ez - (z + SPECS[name].grasp_height)))
    return math.sqrt(offset.dot(offset))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two points: the same float as `np.linalg.norm(a - b)`.

    norm computes `sqrt(v.dot(v))` for a vector; calling that directly skips its generic dispatch,
    which costs several times the arithmetic on three-element vectors.
    """
    offset = a - b
    return math.sqrt(offset.dot(offset))


def bottom_height(state: SceneState, name: str) -> float:
    """Height of an object's lowest point above the table (assuming it stands upright)."""
    return float(state.position(name)[2] - SPECS[name].origin_height)


def is_holding(state: SceneState, name: str) -> bool:
    """The object is pinched between both fingers."""
    return state.held == name


def is_free(state: SceneState, name: str) -> bool:
    """Not held and not touched by either finger (the gripper let go)."""
    return name not in state.finger_contacts[0] and name not in state.finger_contacts[1]


REST_SPEED = 0.02
"""m/s: an object slower than this is at rest. A block let go 1.2 cm above its support lands at about 0.5 m/s."""


def at_rest(state: SceneState, name: str) -> bool:
    """The object has come to rest (its linear speed is below `REST_SPEED`).

    A place's geometric test alone also holds while the let-go object falls through its support's height band or
    bounces on it; judged then, a block dropped from 20 cm "was stacked" and slid off a moment later.
    """
    velocity = state.velocities[state.names.index(name)]
    return math.sqrt(float(velocity.dot(velocity))) < REST_SPEED


def in_bowl(state: SceneState, name: str) -> bool:
    """Inside the bowl's rim (with 1 cm to spare) and at most 6 cm above its origin."""
    offset = state.position(name) - state.position("bowl")
    return bool(np.hypot(offset[0], offset[1]) < BOWL_RADIUS - 0.01 and -0.01 < offset[2] < 0.06)


def in_drawer(state: SceneState, name: str) -> bool:
    """Inside the drawer's interior box, in drawer coordinates, so it holds wherever the drawer has slid."""
    local = state.position(name) - state.drawer_position
    lo, hi = DRAWER_INTERIOR
    return bool(np.all(local > lo - 0.005) and np.all(local < hi))


def on_plate(state: SceneState, name: str) -> bool:
    """Over the plate (5 mm inside its rim) with its bottom resting at plate height."""
    offset = state.position(name) - state.position("plate")
    bottom = offset[2] - SPECS[name].origin_height
    return bool(np.hypot(offset[0], offset[1]) < PLATE_RADIUS - 0.005 and PLATE_HEIGHT - 0.01 < bottom < 0.03)


def on_block(state: SceneState, name: str, support: str) -> bool:
    """Resting on top of `support`: centres within 3 cm, bottom about one block height up; never on itself."""
    if name == support:
        return False
    offset = state.position(name) - state.position(support)
    bottom = offset[2] - SPECS[name].origin_height + BLOCK_HALF
    return bool(np.hypot(offset[0], offset[1]) < 0.03 and 2 * BLOCK_HALF - 0.012 < bottom < 2 * BLOCK_HALF + 0.02)


def on_table(state: SceneState, name: str) -> bool:
    """Bottom below `ON_TABLE_HEIGHT` (resting on the table top) and not inside the drawer."""
    return bottom_height(state, name) < ON_TABLE_HEIGHT and not in_drawer(state, name)


def drawer_open(state: SceneState) -> bool:
    """The drawer is pulled out at least `OPEN_THRESHOLD` metres."""
    return state.drawer_opening >= OPEN_THRESHOLD


def drawer_closed(state: SceneState) -> bool:
    """The drawer is within `CLOSED_THRESHOLD` metres of shut; in between the thresholds it is neither."""
    return state.drawer_opening <= CLOSED_THRESHOLD


def near(state: SceneState, name: str) -> bool:
    """The gripper is within `REACH_TOLERANCE` metres of the object's grasp point (the reach task's success test)."""
    return grasp_distance(state, name) < REACH_TOLERANCE


def symbolic_facts(state: SceneState) -> list[list[str]]:
    """The scene in the planner's vocabulary: in / on / holding / open / closed / gripper_empty."""
    facts: list[list[str]] = []
    held = state.held
    for name in MOVABLE:
        if held == name:
            facts.append(["holding", name])
            continue
        if in_bowl(state, name):
            facts.append(["in", name, "bowl"])
        elif in_drawer(state, name):
            facts.append(["in", name, "drawer"])
        elif on_plate(state, name):
            facts.append(["on", name, "plate"])
        elif support := next((b for b in BLOCKS if on_block(state, name, b)), None):
            facts.append(["on", name, support])
        elif on_table(state, name):
            facts.append(["on", name, "table"])
    if held is None:
        facts.append(["gripper_empty"])
    facts.append(["open", "drawer"] if drawer_open(state) else ["closed", "drawer"])
    return facts
