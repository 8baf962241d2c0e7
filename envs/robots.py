"""The Franka Panda: end-effector control through inverse kinematics, or direct joint control.

Actions arrive in [-1, 1]. In `ee` mode the first three entries move the grasp point by up to
`EE_STEP` metres per control step (clipped to a safe workspace box); `ee_yaw` adds a yaw rate;
the last entry opens (> 0) or closes (<= 0) the gripper. `joints` mode moves each arm joint by up
to `JOINT_STEP` radians.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

import numpy as np

from envs.errors import InputError
from envs.sim import PyBulletSim, low_poly_panda_urdf

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
FINGER_LINKS = (9, 10)
EE_LINK = 11
NEUTRAL = (0.0, 0.2, 0.0, -2.2, 0.0, 2.4, math.pi / 4)
ARM_FORCES = (240.0,) * 7
FINGER_FORCE = 60.0
FINGER_COUPLING_FORCE = 50.0
"""Force the gear between the two fingers may apply to keep them level (PyBullet's Panda example uses 50 N)."""
GRIPPER_OPEN = 0.04
EE_STEP = 0.05
YAW_STEP = 0.15
JOINT_STEP = 0.1
EE_LO = np.array([0.15, -0.45, 0.012])
EE_HI = np.array([0.80, 0.45, 0.40])
CONTROL_MODES = ("ee", "ee_yaw", "joints")
DRIVEN_JOINTS = [*ARM_JOINTS, *FINGER_JOINTS]
"""Arm and finger joints, position-controlled together in one simulator call per control step."""
DRIVE_FORCES = [*ARM_FORCES, FINGER_FORCE, FINGER_FORCE]
_EE_BOUNDS = tuple(zip(EE_LO.tolist(), EE_HI.tolist(), strict=True))
_EE_STEP_F32 = float(np.float32(EE_STEP))
"""EE_STEP as numpy rounds it when scaling a float32 action."""


class Panda:
    """A fixed-base Panda on the table at the world origin."""

    def __init__(self, sim: PyBulletSim, control: str = "ee", low_poly: bool = True) -> None:
        if control not in CONTROL_MODES:
            raise InputError(f"unknown control mode {control!r}; expected one of {', '.join(CONTROL_MODES)}")
        self.sim = sim
        self.control = control
        urdf = low_poly_panda_urdf() if low_poly else sim.data_path() / "franka_panda" / "panda.urdf"
        sim.load_urdf("panda", urdf, (0.0, 0.0, 0.0), fixed_base=True, self_collision=False)
        if low_poly:
            for link in range(-1, 12):
                sim.set_color("panda", (0.92, 0.92, 0.94, 1.0) if link < 9 else (0.25, 0.25, 0.28, 1.0), link)
        limits = [sim.joint_limits("panda", j) for j in ARM_JOINTS]
        self._lower = np.array([lo for lo, _ in limits])
        self._upper = np.array([hi for _, hi in limits])
        self._ranges = self._upper - self._lower
        # The IK reads these every step; tuples of floats built once spare it four array conversions.
        # They cover the 7 arm joints of a body with 9 movable joints, so PyBullet ignores them (no
        # null-space bias towards NEUTRAL); passing 9 entries would change every solution.
        self._ik_limits = (tuple(self._lower.tolist()), tuple(self._upper.tolist()), tuple(self._ranges.tolist()),
                           NEUTRAL)
        self._ik_orientation: tuple[float, tuple[float, ...]] | None = None
        """(yaw, quaternion) of the last IK target orientation: the yaw only changes in `ee_yaw` mode."""
        for link in FINGER_LINKS:
            sim.set_dynamics("panda", link, lateral_friction=1.5, spinning_friction=0.003)
        sim.couple_joints("panda", *FINGER_JOINTS, max_force=FINGER_COUPLING_FORCE)
        self.gripper_command = 1.0
        self.target_yaw = 0.0

    @property
    def action_size(self) -> int:
        """Length of the action vector in this control mode: ee 4, ee_yaw 5, joints 8."""
        return {"ee": 4, "ee_yaw": 5, "joints": 8}[self.control]

    def reset(self) -> None:
        """Put the arm in the neutral pose with the gripper open, and drive the motors to hold it there."""
        self.sim.reset_joints("panda", ARM_JOINTS, NEUTRAL)
        self.sim.reset_joints("panda", FINGER_JOINTS, (GRIPPER_OPEN, GRIPPER_OPEN))
        self.gripper_command = 1.0
        self.target_yaw = 0.0
        self._drive(NEUTRAL, 1.0)

    # ----------------------------------------------------------------------------------- control
    def apply_action(self, action: Sequence[float], ee_position: np.ndarray | None = None) -> None:
        """Turn a clipped action into motor targets for the next control period.

        `action` holds float32 values (the env's action dtype), as an array or as plain floats; steps
        are scaled with float32 rounding either way. `ee_position` is the grasp point's current
        position when the caller already read it this step.
        """
        if self.control == "joints":
            current = self.sim.get_joint_positions("panda", ARM_JOINTS)
            steps = JOINT_STEP * np.asarray(action[:7], dtype=np.float32)
            arm = np.clip(current + steps, self._lower, self._upper).tolist()
        else:
            if self.control == "ee_yaw":
                rate = np.float32(action[3])  # float32 arithmetic: target_yaw keeps float32 precision
                self.target_yaw = float(np.clip(self.target_yaw + YAW_STEP * rate, -math.pi / 2, math.pi / 2))
            current = self.ee_position() if ee_position is None else ee_position
            arm = self._solve_ik(_ee_target(current, action[:3]), self.target_yaw)
        self._drive(arm, float(action[-1]))

    def _solve_ik(self, position: list[float], yaw: float) -> list[float]:
        """Arm joint targets placing the grasp point at `position`, pointing down with heading `yaw`."""
        solution = self.sim.inverse_kinematics("panda", EE_LINK, position, self._orientation(yaw), *self._ik_limits)
        return list(solution[: len(ARM_JOINTS)])

    def _orientation(self, yaw: float) -> tuple[float, ...]:
        """Gripper-down quaternion with heading `yaw`, recomputed only when the yaw changes."""
        if self._ik_orientation is None or self._ik_orientation[0] != yaw:
            self._ik_orientation = (yaw, tuple(self.sim.euler_to_quaternion((math.pi, 0.0, yaw)).tolist()))
        return self._ik_orientation[1]

    def _drive(self, arm: Sequence[float], command: float) -> None:
        """Set arm targets and open (command > 0) or close the gripper, in one simulator call."""
        self.gripper_command = 1.0 if command > 0.0 else -1.0
        width = GRIPPER_OPEN if command > 0.0 else 0.0
        self.sim.control_joints("panda", DRIVEN_JOINTS, [*arm, width, width], DRIVE_FORCES)

    # ------------------------------------------------------------------------------------- reads
    def ee_position(self) -> np.ndarray:
        """World position of the grasp point between the fingertips."""
        return self.sim.get_link_state("panda", EE_LINK).position

    def ee_state(self) -> tuple[np.ndarray, float, np.ndarray]:
        """Grasp-point position, yaw and linear velocity."""
        position, orientation, velocity = self.sim.get_link_frame("panda", EE_LINK)
        # The gripper points down (roll = pi); its x axis stays horizontal, so yaw is that axis' heading.
        return np.array(position), self.sim.heading(orientation), np.array(velocity)

    def joint_positions(self) -> np.ndarray:
        """The seven arm joint angles in radians."""
        return self.sim.get_joint_positions("panda", ARM_JOINTS)

    def joint_and_finger_positions(self) -> tuple[np.ndarray, float]:
        """Arm joint angles and gripper width from one simulator query."""
        values = self.sim.get_joint_positions("panda", DRIVEN_JOINTS)
        # Python's sum adds from 0.0 like numpy's, so the width is the same float as `values[7:].sum()`.
        return values[: len(ARM_JOINTS)], sum(values[len(ARM_JOINTS):].tolist())

    def gripper_width(self) -> float:
        """Opening between the fingers in metres (both finger joints summed)."""
        return float(self.sim.get_joint_positions("panda", FINGER_JOINTS).sum())


def _ee_target(current: np.ndarray, moves: Sequence[float]) -> list[float]:
    """The grasp point moved by `moves` (float32 values, scaled to `EE_STEP`), clipped to `EE_LO`..`EE_HI`.

    The same floats as `np.clip(current + EE_STEP * moves, EE_LO, EE_HI)` with `moves` a float32
    array, computed on plain floats because three-element arrays cost more than the arithmetic:
    the product of two float32 numbers is exact in double precision, so rounding it to float32
    (`_to_float32`) gives numpy's float32 product; min/max clip like np.clip (NaN passes through both).
    """
    steps = _to_float32([_EE_STEP_F32 * move for move in moves])
    return [min(max(c + s, lo), hi) for c, s, (lo, hi) in zip(current.tolist(), steps, _EE_BOUNDS, strict=True)]


def _to_float32(values: Sequence[float]) -> list[float]:
    """Each value rounded to the nearest float32 (as a C cast, and numpy, round), returned as Python floats."""
    return array("f", values).tolist()
