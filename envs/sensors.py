"""Sensors: RGB-D cameras (static and wrist-mounted) and fingertip touch.

Every camera exposes `render() -> (rgb, depth)` and a `name`, so observation keys are simply
`rgb_<name>` / `depth_<name>`. Touch bins PyBullet's contact points on each finger pad into a
taxel grid of normal forces, because contact points are what a physics engine can honestly give.
"""

from __future__ import annotations

import numpy as np

from envs.errors import InputError
from envs.robots import EE_LINK, FINGER_LINKS
from envs.sim import PyBulletSim

NEAR, FAR = 0.05, 2.0
WRIST_EYE, WRIST_TARGET, WRIST_FOV = (0.06, 0.0, -0.08), (0.0, 0.0, 0.12), 75.0
"""The wrist camera's eye and target in the grasp-point frame (z down the fingers) and its field of view."""
WRIST_CAMERA: tuple[float, ...] = (*WRIST_EYE, *WRIST_TARGET, WRIST_FOV)
"""The same seven numbers in one tuple, the form a scene estimator's config stores."""


class Camera:
    """A pinhole RGB-D camera; static unless `mount_link` is given (then it rides that link)."""

    def __init__(
        self, sim: PyBulletSim, name: str, width: int, height: int, eye: tuple[float, float, float],
        target: tuple[float, float, float], fov: float = 55.0, mount_link: int | None = None,
    ) -> None:
        if width <= 0 or height <= 0:
            raise InputError(f"camera size must be positive, got {width}x{height}")
        self.sim, self.name, self.width, self.height = sim, name, width, height
        self._eye, self._target, self._mount = np.asarray(eye), np.asarray(target), mount_link
        self._projection = sim.projection_matrix(fov, width / height, NEAR, FAR)
        self._static_view = sim.view_matrix(eye, target, (0.0, 0.0, 1.0)) if mount_link is None else None

    def _view(self) -> list[float]:
        if self._static_view is not None:
            return self._static_view
        state = self.sim.get_link_state("panda", self._mount)
        rotation = self.sim.rotation_matrix(state.orientation)
        eye = state.position + rotation @ self._eye
        target = state.position + rotation @ self._target
        return self.sim.view_matrix(eye, target, rotation @ np.array([1.0, 0.0, 0.0]))

    def render(self, segmentation: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """RGB uint8 (H, W, 3), metric depth float32 (H, W, 1), and segmentation (H, W) if asked."""
        rgb, buffer, seg = self.sim.render(self.width, self.height, self._view(), self._projection, segmentation)
        depth = np.clip(FAR * NEAR / (FAR - (FAR - NEAR) * buffer), NEAR, FAR)
        return rgb, depth[..., None].astype(np.float32), seg


def front_camera(sim: PyBulletSim, size: int) -> Camera:
    """The fixed observation camera, front-right and above the table."""
    # Front-right and above: every object stays in view and the arm rarely hides the table.
    return Camera(sim, "front", size, size, eye=(1.0, -0.45, 0.75), target=(0.45, 0.0, 0.0), fov=55.0)


def wrist_camera(sim: PyBulletSim, size: int) -> Camera:
    """The camera riding on the grasp point, looking past the fingertips at what the gripper is about to touch."""
    # In the grasp-point frame z points down the fingers: sit behind and above the fingertips, look past them.
    return Camera(sim, "wrist", size, size, eye=WRIST_EYE, target=WRIST_TARGET, fov=WRIST_FOV, mount_link=EE_LINK)


class Touch:
    """Taxel grids on both finger pads plus total normal and shear force per finger.

    The pad is the finger's inner face; contact points are expressed in the finger link frame and
    binned over its x (across the finger) and z (along the finger) extents.
    """

    GRID = 4
    PAD_X = (-0.0105, 0.0105)
    PAD_Z = (0.0, 0.055)
    SIZE = 2 * GRID * GRID + 6

    def __init__(self, sim: PyBulletSim) -> None:
        self.sim = sim

    def read(self) -> np.ndarray:
        """Float32 vector: left grid (16), right grid (16), [normal, shear] x 2, contact flags x 2."""
        grids, totals, flags = [], [], []
        for link in FINGER_LINKS:
            grid, normal, shear = self._finger(link)
            grids.append(grid.ravel())
            totals.extend((normal, shear))
            flags.append(1.0 if normal > 0.0 else 0.0)
        return np.concatenate([*grids, totals, flags]).astype(np.float32)

    def _finger(self, link: int) -> tuple[np.ndarray, float, float]:
        grid = np.zeros((self.GRID, self.GRID), dtype=np.float32)
        contacts = [c for c in self.sim.contacts("panda", link_a=link) if c.body_b != c.body_a]
        if not contacts:
            return grid, 0.0, 0.0
        state = self.sim.get_link_state("panda", link)
        rotation = self.sim.rotation_matrix(state.orientation)
        normal_total, shear_total = 0.0, 0.0
        for contact in contacts:
            local = rotation.T @ (np.asarray(contact.position_on_a) - state.position)
            col = self._bin(local[0], self.PAD_X)
            row = self._bin(local[2], self.PAD_Z)
            grid[row, col] += contact.normal_force
            normal_total += contact.normal_force
            shear_total += float(np.hypot(contact.lateral_force_1, contact.lateral_force_2))
        return grid, normal_total, shear_total

    def _bin(self, value: float, bounds: tuple[float, float]) -> int:
        fraction = (value - bounds[0]) / (bounds[1] - bounds[0])
        return int(np.clip(fraction * self.GRID, 0, self.GRID - 1))

    def finger_contacts(self, names: dict[int, str]) -> tuple[frozenset[str], frozenset[str]]:
        """Ids of the named objects each finger touches (left, right), from one contact query per step."""
        left, right = (frozenset(names[b] for b in bodies if b in names)
                       for bodies in self.sim.contact_bodies("panda", FINGER_LINKS))
        return left, right
