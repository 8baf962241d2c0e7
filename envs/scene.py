"""The kitchen scene: what is on the table, where, and with which physical properties.

`KitchenScene` builds the bodies once, samples a reachable non-overlapping layout per episode
from an explicit `np.random.Generator`, and exposes the physical variables (`red_block.mass`,
`table.friction`, ...) that causal studies intervene on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import InputError, UnknownNameError
from envs.sim import Piece, PyBulletSim
from envs.state import BLOCK_HALF, BLOCKS, RIGID_OBJECTS

ASSETS = Path(__file__).resolve().parent / "assets"

CABINET_POSITION = (0.62, 0.30, 0.0)
"""The cabinet stands at the robot's left, its drawer opening towards the robot (-x)."""
DRAWER_TRAVEL = 0.16
HANDLE_OFFSET = np.array([-0.18, 0.0, 0.082])
"""Handle bar centre in the drawer link frame."""
DRAWER_INTERIOR = (np.array([-0.107, -0.082, 0.021]), np.array([0.088, 0.082, 0.09]))
"""Inside of the drawer box (lo, hi corners) in the drawer link frame."""
CABINET_TOP_FRONT_X = CABINET_POSITION[0] - 0.10
"""World x where the cabinet's top plate begins: a drawer is only reachable in front of it."""

LAYOUT_X = (0.30, 0.66)
LAYOUT_Y = (-0.34, 0.08)
"""Sampling region for loose objects: reachable, and clear of the cabinet and the opened drawer."""
WORKSPACE_LO = np.array([0.05, -0.55, -0.05])
WORKSPACE_HI = np.array([0.95, 0.55, 0.60])

BOWL_RADIUS = 0.072
BOWL_WALL = 0.055
PLATE_RADIUS = 0.075
PLATE_HEIGHT = 0.012
MUG_SCALE = 0.6
MUG_HEIGHT = 0.06


@dataclass(frozen=True)
class ObjectSpec:
    """Static facts about one loose object."""

    name: str
    footprint: float
    """Radius of the disc it occupies on the table, for non-overlap sampling."""
    grasp_height: float
    """Height of its grasp point above its body origin."""
    top: float
    """Height of its top surface above its body origin."""
    mass: float
    friction: float
    color: tuple[float, float, float, float]
    origin_height: float
    """Height of its body origin above the table when resting."""


COLORS = {
    "red_block": (0.85, 0.12, 0.10, 1.0),
    "green_block": (0.10, 0.70, 0.20, 1.0),
    "blue_block": (0.12, 0.25, 0.90, 1.0),
    "yellow_block": (0.95, 0.85, 0.10, 1.0),
    "mug": (0.95, 0.95, 0.95, 1.0),
    "bowl": (0.30, 0.75, 0.85, 1.0),
    "plate": (0.92, 0.55, 0.70, 1.0),
}

SPECS: dict[str, ObjectSpec] = {
    **{
        name: ObjectSpec(name, 0.034, 0.0, BLOCK_HALF, 0.1, 1.0, COLORS[name], BLOCK_HALF)
        for name in BLOCKS
    },
    "mug": ObjectSpec("mug", 0.055, 0.032, MUG_HEIGHT, 0.15, 1.0, COLORS["mug"], 0.0),
    "bowl": ObjectSpec("bowl", BOWL_RADIUS + 0.008, 0.03, BOWL_WALL, 0.4, 0.8, COLORS["bowl"], 0.0),
    "plate": ObjectSpec("plate", PLATE_RADIUS + 0.005, 0.006, PLATE_HEIGHT, 0.3, 0.8, COLORS["plate"], 0.0),
}

PLACEMENT_ORDER = ("bowl", "plate", "mug", *BLOCKS)


def _bowl_pieces() -> list[Piece]:
    """An octagonal bowl: one square floor plate and eight wall panels raised off the table.

    Only the floor touches the table and box-box contacts are cheap: this cut the bowl's share of a
    physics step from ~100 µs (12 walls on a cylinder, all touching the table) to a few µs.
    """
    pieces = [Piece("box", (0.05, 0.05, 0.004), (0.0, 0.0, 0.004))]
    sides = 8
    chord = 2 * BOWL_RADIUS * math.tan(math.pi / sides)
    height = BOWL_WALL - 0.009
    for k in range(sides):
        angle = 2 * math.pi * k / sides + math.pi / 8
        offset = (BOWL_RADIUS * math.cos(angle), BOWL_RADIUS * math.sin(angle), 0.009 + height / 2)
        pieces.append(Piece("box", (0.004, chord / 2 + 0.002, height / 2), offset, angle))
    return pieces


class KitchenScene:
    """Builds and lays out the kitchen; knows nothing about the robot or the task."""

    def __init__(self, sim: PyBulletSim) -> None:
        self.sim = sim
        self.defaults: dict[str, float] = {}
        self._build()
        self.values: dict[str, float] = dict(self.defaults)

    # ---------------------------------------------------------------------------------- building
    def _build(self) -> None:
        sim = self.sim
        sim.create_box("table", (0.60, 0.55, 0.02), (0.78, 0.72, 0.60, 1.0), 0.0, (0.35, 0.0, -0.02))
        sim.load_urdf("cabinet", ASSETS / "drawer_cabinet.urdf", CABINET_POSITION, fixed_base=True)
        for name in BLOCKS:
            sim.create_box(name, (BLOCK_HALF,) * 3, COLORS[name], SPECS[name].mass, (0.4, 0.0, BLOCK_HALF))
        sim.load_urdf("mug", sim.data_path() / "urdf" / "mug.urdf", (0.5, -0.2, 0.0), scale=MUG_SCALE)
        sim.set_color("mug", COLORS["mug"])
        sim.create_compound("bowl", _bowl_pieces(), COLORS["bowl"], SPECS["bowl"].mass, (0.4, -0.2, 0.0))
        plate = [Piece("cylinder", (PLATE_RADIUS, PLATE_HEIGHT), (0.0, 0.0, PLATE_HEIGHT / 2))]
        sim.create_compound("plate", plate, COLORS["plate"], SPECS["plate"].mass, (0.5, 0.1, 0.0))
        for name in RIGID_OBJECTS:
            spec = SPECS[name]
            sim.set_dynamics(name, mass=spec.mass, lateral_friction=spec.friction, spinning_friction=0.001,
                             rolling_friction=0.0001)
            self.defaults[f"{name}.mass"] = spec.mass
            self.defaults[f"{name}.friction"] = spec.friction
            for axis in ("x", "y", "yaw"):
                self.defaults[f"{name}.{axis}"] = math.nan  # nan: sampled each episode
        sim.set_dynamics("table", lateral_friction=0.6)
        self.defaults.update({"table.friction": 0.6, "drawer.damping": 5.0, "drawer.friction": 0.5,
                              "drawer.opening": 0.0})

    # ----------------------------------------------------------------------------------- layout
    def sample_layout(self, rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
        """Non-overlapping (x, y, yaw) for every loose object, by rejection sampling."""
        placed: dict[str, tuple[float, float, float]] = {}
        for name in PLACEMENT_ORDER:
            spec = SPECS[name]
            for _ in range(2000):
                x = rng.uniform(LAYOUT_X[0] + spec.footprint * 0.5, LAYOUT_X[1] - spec.footprint * 0.5)
                y = rng.uniform(LAYOUT_Y[0] + spec.footprint * 0.5, LAYOUT_Y[1] - spec.footprint * 0.5)
                if all(
                    math.hypot(x - ox, y - oy) >= spec.footprint + SPECS[other].footprint + 0.012
                    for other, (ox, oy, _) in placed.items()
                ):
                    break
            else:  # pragma: no cover - the region is far larger than the objects
                raise RuntimeError(f"could not place {name} without overlap")
            placed[name] = (x, y, self._sample_yaw(name, rng))
        return placed

    @staticmethod
    def _sample_yaw(name: str, rng: np.random.Generator) -> float:
        if name == "mug":  # handle along +-x, so a gripper closing along y grasps the body
            return float(rng.choice([-math.pi / 2, math.pi / 2]) + rng.uniform(-0.25, 0.25))
        if name in BLOCKS:
            return float(rng.uniform(-0.3, 0.3))
        return float(rng.uniform(-math.pi, math.pi))

    # -------------------------------------------------------------------------------- variables
    def variable_names(self) -> list[str]:
        """The scene variables a reset may override, sorted (also listed in error messages)."""
        return sorted(self.defaults)

    def validate_variables(self, overrides: Mapping[str, float]) -> dict[str, float]:
        """Check names and ranges of requested variables; return them as floats."""
        clean: dict[str, float] = {}
        for name, raw in overrides.items():
            if name not in self.defaults:
                raise UnknownNameError(
                    f"unknown variable {name!r}; valid variables: {', '.join(self.variable_names())}")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise InputError(f"variable {name} must be a number, got {raw!r}") from None
            if not math.isfinite(value):
                raise InputError(f"variable {name} must be finite, got {value}")
            prop = name.rsplit(".", 1)[1]
            if prop == "mass" and value <= 0:
                raise InputError(f"{name} must be positive (kg), got {value}")
            if prop in ("friction", "damping") and value < 0:
                raise InputError(f"{name} must be >= 0, got {value}")
            if name == "drawer.opening" and not 0.0 <= value <= DRAWER_TRAVEL:
                raise InputError(f"drawer.opening must be in [0, {DRAWER_TRAVEL}], got {value}")
            axis = {"x": 0, "y": 1}.get(prop)
            if axis is not None and not WORKSPACE_LO[axis] < value < WORKSPACE_HI[axis]:
                bounds = (WORKSPACE_LO[axis], WORKSPACE_HI[axis])
                raise InputError(f"{name} must lie on the table, in {bounds}, got {value}")
            clean[name] = value
        return clean

    def apply(self, layout: dict[str, tuple[float, float, float]], overrides: Mapping[str, float]) -> None:
        """Put every object at its layout pose (or the overridden one) and set its dynamics."""
        values = dict(self.defaults)
        for name, (x, y, yaw) in layout.items():
            values.update({f"{name}.x": x, f"{name}.y": y, f"{name}.yaw": yaw})
        values.update(overrides)
        sim = self.sim
        for name in RIGID_OBJECTS:
            spec = SPECS[name]
            position = (values[f"{name}.x"], values[f"{name}.y"], spec.origin_height)
            sim.set_base_pose(name, position, sim.euler_to_quaternion((0.0, 0.0, values[f"{name}.yaw"])))
        self.apply_dynamics(values)
        sim.reset_joints("cabinet", [0], [values["drawer.opening"]])
        self.values = values

    def apply_dynamics(self, values: Mapping[str, float]) -> None:
        """Set masses, frictions and drawer resistance; only values that changed are sent.

        Re-sending an unchanged mass makes PyBullet recompute inertia and perturbs the next steps
        by ~1e-5 m, which would break exact same-seed reproducibility.
        """
        sim = self.sim
        changed = {k: v for k, v in values.items() if self.values.get(k) != v}
        for name in RIGID_OBJECTS:
            if f"{name}.mass" in changed:
                sim.set_dynamics(name, mass=values[f"{name}.mass"])
            if f"{name}.friction" in changed:
                sim.set_dynamics(name, lateral_friction=values[f"{name}.friction"])
        if "table.friction" in changed:
            sim.set_dynamics("table", lateral_friction=values["table.friction"])
        sim.set_joint_damping("cabinet", 0, values["drawer.damping"])
        sim.disable_motor("cabinet", 0, values["drawer.friction"])
        self.values = {**self.values, **values}

    # ------------------------------------------------------------------------------------ reads
    def object_states(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, quaternions and velocities of every loose object (rows in `RIGID_OBJECTS` order)."""
        return self.sim.get_base_states(RIGID_OBJECTS)

    def drawer_opening(self) -> float:
        """How far the drawer is pulled out, in metres (its prismatic joint position)."""
        return self.sim.get_joint_position("cabinet", 0)

    def drawer_position(self, opening: float | None = None) -> np.ndarray:
        """World position of the drawer link frame: the fixed cabinet's origin, slid `opening` along -x."""
        if opening is None:
            opening = self.drawer_opening()
        return np.array([CABINET_POSITION[0] - opening, CABINET_POSITION[1], CABINET_POSITION[2]])
