"""Observation assembly: the keys an observation has in each mode, and the vectors behind them.

`HouseholdEnv` is the junction that calls these; they read a `SceneState` and nothing else, so the
layout of `proprio` and `objects` is defined (and can be checked against the agent's reading of it,
tests/test_feature_layout.py) in one place. This module imports no simulator, so the CLI can read
`OBS_MODES` without loading PyBullet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from gymnasium import spaces

from envs.state import RIGID_OBJECTS, SceneState

OBS_MODES = ("state", "rgbd", "rgbd_touch")
"""state: proprio + privileged object poses; rgbd: front RGB-D; rgbd_touch: front and wrist RGB-D plus touch."""
PROPRIO_SIZE = 21
OBJECT_FEATURES = 8
"""Per object: position (3), sin and cos of yaw (2), offset from the grasp point (3)."""
N_OBJECTS = len(RIGID_OBJECTS)
DRAWER_FEATURES = 4
"""After the object rows: the drawer's opening and its handle position."""


def observation_space(obs_mode: str, camera_names: Sequence[str], size: int | Mapping[str, int],
                      touch_size: int) -> spaces.Dict:
    """The observation space of one mode: proprio, then objects (state) or camera images, then touch.

    `size` is every camera's side, or a side per camera name (the front camera may render finer than the wrist).
    """
    keys: dict[str, spaces.Space] = {"proprio": spaces.Box(-np.inf, np.inf, (PROPRIO_SIZE,), np.float32)}
    if obs_mode == "state":
        n = OBJECT_FEATURES * N_OBJECTS + DRAWER_FEATURES
        keys["objects"] = spaces.Box(-np.inf, np.inf, (n,), np.float32)
    for name in camera_names:
        side = size if isinstance(size, int) else size[name]
        keys[f"rgb_{name}"] = spaces.Box(0, 255, (side, side, 3), np.uint8)
        keys[f"depth_{name}"] = spaces.Box(0.0, np.inf, (side, side, 1), np.float32)
    if obs_mode == "rgbd_touch":
        keys["touch"] = spaces.Box(-np.inf, np.inf, (touch_size,), np.float32)
    return spaces.Dict(keys)


def proprio(state: SceneState, gripper_command: float, elapsed: int, horizon: int) -> np.ndarray:
    """Grasp point, yaw (sin, cos), its velocity, gripper width, joints, touch flags, command, time.

    Built as one list of floats and converted once: the float32 values equal converting the
    float64 concatenation, at a fraction of the cost of concatenating small arrays.
    """
    left, right = state.finger_contacts
    values = [*state.ee_position.tolist(), math.sin(state.ee_yaw), math.cos(state.ee_yaw),
              *state.ee_velocity.tolist(), state.gripper_width, *state.joint_positions.tolist(),
              float(bool(left)), float(bool(right)), gripper_command, elapsed / horizon,
              float(bool(left & right))]
    return float32_observation(values)


def object_features(state: SceneState) -> np.ndarray:
    """Per object: position, sin and cos of yaw, offset from the grasp point; then the drawer.

    The yaw's arguments are formed on plain floats with the same operations, in the same order,
    as the array expression they replace, so the values are identical; arctan2, sin and cos stay
    numpy's, whose results may differ from the math module's in the last bit.
    """
    positions = state.positions.tolist()
    quaternions = state.orientations.tolist()
    yaw = np.arctan2([2.0 * (w * z + x * y) for x, y, z, w in quaternions],
                     [1.0 - 2.0 * (y * y + z * z) for x, y, z, w in quaternions])
    ex, ey, ez = state.ee_position.tolist()
    values: list[float] = []
    for (px, py, pz), sin, cos in zip(positions, np.sin(yaw).tolist(), np.cos(yaw).tolist(), strict=True):
        values += (px, py, pz, sin, cos, px - ex, py - ey, pz - ez)
    values += (state.drawer_opening, *state.drawer_position.tolist())
    return float32_observation(values)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_observation(values: list[float]) -> np.ndarray:
    """`values` as float32, with NaN and inf (also from overflowing float32) replaced by 0.

    Observations never carry NaN or inf. Checking first is ~5x cheaper than always converting, and
    checking the Python floats (a sum of magnitudes, NaN or too large whenever any value is NaN or
    would not fit a float32) is cheaper than an array check; a false alarm from large finite values
    only costs a needless conversion, which leaves finite values as they are.
    """
    array = np.array(values, dtype=np.float32)
    if sum(map(abs, values)) < _FLOAT32_MAX:
        return array
    return np.nan_to_num(array, posinf=0.0, neginf=0.0)
