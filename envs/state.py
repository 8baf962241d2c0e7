"""Typed snapshots of the kitchen: what the oracle, the experts and the causal studies read.

A `SceneState` is plain data (numpy arrays and floats, no simulator handles), so it can be
compared, stored in an episode record, or pickled to another process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.errors import UnknownNameError

BLOCKS: tuple[str, ...] = ("red_block", "green_block", "blue_block", "yellow_block")
MOVABLE: tuple[str, ...] = (*BLOCKS, "mug")
RIGID_OBJECTS: tuple[str, ...] = (*MOVABLE, "bowl", "plate")
OBJECT_IDS: tuple[str, ...] = (*RIGID_OBJECTS, "drawer", "table")

BLOCK_HALF = 0.0225
"""Half the edge of a block (4.5 cm cubes)."""


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class _ArrayEquality:
    """Field-wise equality that compares numpy arrays by value (dataclass' default `==` cannot)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_equal(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class ObjectPose(_ArrayEquality):
    """Pose and velocity of one rigid object; `position` is the body origin (its bottom centre or centre)."""

    position: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray

    @property
    def yaw(self) -> float:
        """Heading about the world z axis in radians, from the quaternion (x, y, z, w)."""
        x, y, z, w = self.orientation
        return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


@dataclass(frozen=True, eq=False)
class SceneState(_ArrayEquality):
    """Everything the ground truth needs at one instant.

    Attributes:
        names: ids of the loose objects, in the row order of `positions`, `orientations`, `velocities`.
        positions: world positions of the objects' body origins (N, 3).
        orientations: world quaternions (x, y, z, w) of the objects (N, 4).
        velocities: linear velocities of the objects (N, 3).
        drawer_opening: drawer joint position in metres (0 closed, 0.16 fully open).
        drawer_position: world position of the drawer link frame (moves with the drawer).
        ee_position: world position of the gripper's grasp point (between the fingertips).
        ee_yaw: gripper yaw in radians.
        gripper_width: distance between the fingers.
        finger_contacts: for each finger (left, right), the ids of objects it touches.
        step: control steps since the episode began.
        ee_velocity: linear velocity of the grasp point.
        joint_positions: the seven arm joint angles.
    """

    names: tuple[str, ...]
    positions: np.ndarray
    orientations: np.ndarray
    velocities: np.ndarray
    drawer_opening: float
    drawer_position: np.ndarray
    ee_position: np.ndarray
    ee_yaw: float
    gripper_width: float
    finger_contacts: tuple[frozenset[str], frozenset[str]]
    step: int = 0
    ee_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    joint_positions: np.ndarray = field(default_factory=lambda: np.zeros(7))

    @property
    def objects(self) -> dict[str, ObjectPose]:
        """Per-object records, built on first use (the env's hot path reads the arrays instead)."""
        cached = self.__dict__.get("_objects")
        if cached is None:
            cached = {name: ObjectPose(self.positions[i], self.orientations[i], self.velocities[i])
                      for i, name in enumerate(self.names)}
            object.__setattr__(self, "_objects", cached)
        return cached

    def position(self, name: str) -> np.ndarray:
        """World position of one object's origin; KeyError naming the known objects."""
        try:
            return self.positions[self.names.index(name)]
        except ValueError:
            raise UnknownNameError(f"unknown object {name!r}; expected one of {sorted(self.names)}") from None

    @property
    def held(self) -> str | None:
        """The object pinched between both fingers, if any."""
        both = self.finger_contacts[0] & self.finger_contacts[1]
        return next(iter(sorted(both)), None)
