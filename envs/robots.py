"""The Franka Panda: end-effector control through inverse kinematics, or direct joint control.

Actions arrive in [-1, 1]. In `ee` mode the first three entries move the grasp point by up to
`EE_STEP` metres per control step (clipped to a safe workspace box); `ee_yaw` adds a yaw rate;
the last entry opens (> 0) or closes (<= 0) the gripper. `joints` mode moves each arm joint by up
to `JOINT_STEP` radians.
"""

from __future__ import annotations

import math

import numpy as np

from envs.sim import PyBulletSim, low_poly_panda_urdf

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
FINGER_LINKS = (9, 10)
EE_LINK = 11
NEUTRAL = (0.0, 0.2, 0.0, -2.2, 0.0, 2.4, math.pi / 4)
ARM_FORCES = (240.0,) * 7
FINGER_FORCE = 60.0
GRIPPER_OPEN = 0.04
EE_STEP = 0.05
YAW_STEP = 0.15
JOINT_STEP = 0.1
EE_LO = np.array([0.15, -0.45, 0.012])
EE_HI = np.array([0.80, 0.45, 0.40])
CONTROL_MODES = ("ee", "ee_yaw", "joints")


class Panda:
    """A fixed-base Panda on the table at the world origin."""

    def __init__(self, sim: PyBulletSim, control: str = "ee", low_poly: bool = True) -> None:
        if control not in CONTROL_MODES:
            raise ValueError(f"unknown control mode {control!r}; expected one of {', '.join(CONTROL_MODES)}")
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
        for link in FINGER_LINKS:
            sim.set_dynamics("panda", link, lateral_friction=1.5, spinning_friction=0.003)
        self.gripper_command = 1.0
        self.target_yaw = 0.0

    @property
    def action_size(self) -> int:
        return {"ee": 4, "ee_yaw": 5, "joints": 8}[self.control]

    def reset(self) -> None:
        self.sim.reset_joints("panda", ARM_JOINTS, NEUTRAL)
        self.sim.reset_joints("panda", FINGER_JOINTS, (GRIPPER_OPEN, GRIPPER_OPEN))
        self.gripper_command = 1.0
        self.target_yaw = 0.0
        self._drive_arm(np.array(NEUTRAL))
        self._drive_gripper(1.0)

    # ----------------------------------------------------------------------------------- control
    def apply_action(self, action: np.ndarray, ee_position: np.ndarray | None = None) -> None:
        """Turn a clipped action into motor targets for the next control period.

        `ee_position` is the grasp point's current position when the caller already read it this step.
        """
        if self.control == "joints":
            current = self.sim.get_joint_positions("panda", ARM_JOINTS)
            self._drive_arm(np.clip(current + JOINT_STEP * action[:7], self._lower, self._upper))
        else:
            if self.control == "ee_yaw":
                self.target_yaw = float(np.clip(self.target_yaw + YAW_STEP * action[3], -math.pi / 2, math.pi / 2))
            current = self.ee_position() if ee_position is None else ee_position
            target = np.clip(current + EE_STEP * action[:3], EE_LO, EE_HI)
            self._drive_arm(self._solve_ik(target, self.target_yaw))
        self._drive_gripper(float(action[-1]))

    def _solve_ik(self, position: np.ndarray, yaw: float) -> np.ndarray:
        orientation = self.sim.euler_to_quaternion((math.pi, 0.0, yaw))
        solution = self.sim.inverse_kinematics(
            "panda", EE_LINK, position, orientation, self._lower, self._upper, self._ranges, NEUTRAL
        )
        return solution[: len(ARM_JOINTS)]

    def _drive_arm(self, targets: np.ndarray) -> None:
        self.sim.control_joints("panda", ARM_JOINTS, targets, ARM_FORCES)

    def _drive_gripper(self, command: float) -> None:
        self.gripper_command = 1.0 if command > 0.0 else -1.0
        width = GRIPPER_OPEN if command > 0.0 else 0.0
        self.sim.control_joints("panda", FINGER_JOINTS, (width, width), (FINGER_FORCE, FINGER_FORCE))

    # ------------------------------------------------------------------------------------- reads
    def ee_position(self) -> np.ndarray:
        return self.sim.get_link_state("panda", EE_LINK).position

    def ee_state(self) -> tuple[np.ndarray, float, np.ndarray]:
        """Grasp-point position, yaw and linear velocity."""
        state = self.sim.get_link_state("panda", EE_LINK, velocity=True)
        # The gripper points down (roll = pi); its x axis stays horizontal, so yaw is that axis' heading.
        x_axis = self.sim.rotation_matrix(state.orientation)[:, 0]
        return state.position, float(math.atan2(x_axis[1], x_axis[0])), state.linear_velocity

    def joint_positions(self) -> np.ndarray:
        return self.sim.get_joint_positions("panda", ARM_JOINTS)

    def joint_and_finger_positions(self) -> tuple[np.ndarray, float]:
        """Arm joint angles and gripper width from one simulator query."""
        values = self.sim.get_joint_positions("panda", (*ARM_JOINTS, *FINGER_JOINTS))
        return values[: len(ARM_JOINTS)], float(values[len(ARM_JOINTS):].sum())

    def gripper_width(self) -> float:
        return float(self.sim.get_joint_positions("panda", FINGER_JOINTS).sum())
