"""The control rate and the limits past which the simulation counts as blown up.

Kept apart from `envs.household` so that modules the env imports (chain-like starts) can step physics and
check for faults exactly as the env does, without importing the env back.
"""

from __future__ import annotations

import math

from envs.scene import WORKSPACE_HI, WORKSPACE_LO
from envs.state import SceneState

TIMESTEP = 1.0 / 240.0
"""Seconds per physics step (PyBullet's default)."""
SUBSTEPS = 10
"""Physics steps per control step."""
CONTROL_HZ = 1.0 / (TIMESTEP * SUBSTEPS)
"""Control steps per second (24 Hz)."""
MAX_SPEED = 5.0
"""Metres per second above which an object's speed means the simulation blew up."""
WORKSPACE_CENTRE = (WORKSPACE_LO + WORKSPACE_HI) / 2
WORKSPACE_HALF = (WORKSPACE_HI - WORKSPACE_LO) / 2
_CENTRE_X, _CENTRE_Y, _CENTRE_Z = WORKSPACE_CENTRE.tolist()
_HALF_X, _HALF_Y, _HALF_Z = WORKSPACE_HALF.tolist()
_MAX_SPEED_SQUARED = MAX_SPEED**2


def physics_fault(state: SceneState) -> bool:
    """Objects leaving the workspace, moving absurdly fast, or NaN anywhere: the simulation blew up.

    Written as "not all inside" so that NaN (which fails every comparison) counts as a fault too.
    The checks run on plain floats (a few dozen comparisons are cheaper than a dozen tiny array
    operations); each compares the same float64 values the array version did, the squared speed
    summed left to right as numpy sums three elements.
    """
    for x, y, z in state.positions.tolist():
        if not (abs(x - _CENTRE_X) <= _HALF_X and abs(y - _CENTRE_Y) <= _HALF_Y and abs(z - _CENTRE_Z) <= _HALF_Z):
            return True
    for vx, vy, vz in state.velocities.tolist():
        if not vx * vx + vy * vy + vz * vz <= _MAX_SPEED_SQUARED:
            return True
    return not all(map(math.isfinite, state.ee_position.tolist()))
