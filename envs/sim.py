"""The one module that talks to PyBullet.

Everything else in Embodia refers to bodies by name through `PyBulletSim`; this keeps the physics
engine swappable and keeps PyBullet's camelCase API and magic tuple indices in one place.
Each instance owns its own physics client (``p.DIRECT`` by default), so several environments
can live in one process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet_data

from envs.atomic import atomic_write
from envs.errors import InputError


@contextlib.contextmanager
def _quiet_descriptor(fd: int) -> Iterator[None]:
    """Point file descriptor `fd` at /dev/null for the duration (C code's prints bypass sys.stdout/stderr)."""
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    _flush_c_streams()  # what C printed before this block still goes out
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        _flush_c_streams()  # C stdio buffers what it printed (stdout is a pipe or file): drop it while muted
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def _flush_c_streams() -> None:
    """fflush(NULL): push out whatever C code left in its stdio buffers (a no-op where libc cannot be loaded)."""
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


with _quiet_descriptor(2):  # the C library prints "pybullet build time: ..." to stderr on import
    import pybullet as p

logger = logging.getLogger(__name__)

IK_ITERATIONS = 20
"""IK iterations per solve; 4 made pushing the drawer fully shut fail (11/30), 20 keeps every expert at 100%."""

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]


class _Client:
    """PyBullet functions bound to one physics server.

    pybullet_utils' BulletClient builds a new `functools.partial` on every attribute access (~2 µs,
    dozens of times per env step); binding each function once and caching it removes that cost.
    """

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id

    def __getattr__(self, name: str) -> object:
        attribute = getattr(p, name)
        if callable(attribute):
            attribute = functools.partial(attribute, physicsClientId=self.client_id)
        self.__dict__[name] = attribute  # later lookups never reach __getattr__
        return attribute


@dataclass(frozen=True)
class Contact:
    """One contact point between two bodies, in world coordinates (named fields instead of tuple indices)."""

    body_a: int
    body_b: int
    link_a: int
    link_b: int
    position_on_a: Vec3
    normal_on_b: Vec3
    distance: float
    normal_force: float
    lateral_force_1: float
    lateral_dir_1: Vec3
    lateral_force_2: float
    lateral_dir_2: Vec3


@dataclass(frozen=True)
class Piece:
    """One convex part of a compound body: a box (half extents) or a cylinder (radius, height)."""

    kind: str
    size: tuple[float, ...]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0


@dataclass(frozen=True)
class LinkState:
    """World pose and velocity of a link's frame."""

    position: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


class PyBulletSim:
    """A thin facade over one PyBullet client with a name → body id registry.

    Args:
        timestep: physics step in seconds.
        gui: open the OpenGL GUI instead of a headless client (needs a display).
        solver_iterations: constraint solver iterations; fewer is faster, more is stiffer.
        use_egl: load the EGL renderer plugin (hardware rendering when a GPU is present).
    """

    def __init__(
        self, timestep: float = 1.0 / 240.0, gui: bool = False, solver_iterations: int = 20, use_egl: bool = False
    ) -> None:
        self.timestep = timestep
        self.solver_iterations = solver_iterations
        if gui:
            require_display()
        with quiet_stdout():  # the C library prints "argv[0]=" on every connect (stderr kept: GUI failures)
            client_id = p.connect(p.GUI if gui else p.DIRECT)
        if client_id < 0:
            raise DisplayUnavailableError("PyBullet could not open its GUI window (only one GUI connection is "
                                          "allowed per process, and it needs a working OpenGL display)")
        self._client = _Client(client_id)
        self.gui = gui
        if gui:
            self._configure_gui()
        self._client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self._bodies: dict[str, int] = {}
        self._configure()
        self._renderer = p.ER_TINY_RENDERER
        self._egl_plugin: int | None = None
        if use_egl:
            self._load_egl()
        self._closed = False

    # ----------------------------------------------------------------------------------- lifecycle
    def _configure_gui(self) -> None:
        """Hide the GUI's side panels and point its camera at the kitchen table."""
        self._client.configureDebugVisualizer(p.COV_ENABLE_GUI, 0)
        self._client.configureDebugVisualizer(p.COV_ENABLE_SHADOWS, 1)
        self.set_gui_camera(distance=1.25, yaw=55.0, pitch=-32.0, target=(0.45, 0.0, 0.1))

    def set_gui_camera(self, distance: float, yaw: float, pitch: float, target: Sequence[float]) -> None:
        """Where the GUI window looks from (degrees, metres); no effect on headless clients or camera images."""
        if self.gui:
            self._client.resetDebugVisualizerCamera(distance, yaw, pitch, list(target))

    def gui_screenshot(self, width: int = 640, height: int = 480) -> np.ndarray:
        """An RGB image from the GUI window's own viewpoint (rendered offscreen with the same camera)."""
        if not self.gui:
            raise RuntimeError("gui_screenshot needs a GUI client (PyBulletSim(gui=True))")
        info = self._client.getDebugVisualizerCamera()
        view, projection = list(info[2]), list(info[3])
        _, _, rgba, _, _ = self._client.getCameraImage(width, height, view, projection,
                                                       renderer=p.ER_BULLET_HARDWARE_OPENGL)
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def _configure(self) -> None:
        self._client.setGravity(0.0, 0.0, -9.81)
        self._client.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep, numSolverIterations=self.solver_iterations, deterministicOverlappingPairs=1
        )

    def reset_world(self) -> None:
        """Remove every body and start from an empty world.

        Restoring a saved state leaves broadphase caches from the previous episode behind, which
        perturbs the next steps by ~1e-5 m; rebuilding (about 15 ms) makes every episode depend
        only on its seed. Saved-state handles do not survive this.
        """
        self._client.resetSimulation()
        self._bodies.clear()
        self._configure()

    def swap_world(self, other: PyBulletSim) -> None:
        """Exchange worlds (client, bodies, renderer) with `other`; both objects stay usable.

        Why: an env can build its next episode's world in a spare client while it has nothing else to do,
        then take it over in one call. Everything that holds this facade (cameras, touch, the scene) keeps
        working and now sees the new world. A world built in a fresh or freshly reset client is exactly
        the world `reset_world` plus the same build gives, so episodes still depend only on their seed.
        """
        if self._closed or other._closed:
            raise RuntimeError("cannot swap worlds with a closed simulator")
        if self.gui or other.gui:
            raise RuntimeError("cannot swap a GUI client's world: the window shows only the client it opened with")
        if (self.timestep, self.solver_iterations) != (other.timestep, other.solver_iterations):
            raise ValueError(f"worlds differ in physics settings: timestep {self.timestep} vs {other.timestep}, "
                             f"solver iterations {self.solver_iterations} vs {other.solver_iterations}")
        for name in ("_client", "_bodies", "_renderer", "_egl_plugin"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs)
            setattr(other, name, mine)

    def _load_egl(self) -> None:
        import pkgutil

        egl = pkgutil.get_loader("eglRenderer")
        if egl is None:
            raise RuntimeError("EGL rendering requested but pybullet's eglRenderer plugin is not installed")
        self._egl_plugin = self._client.loadPlugin(egl.get_filename(), "_eglRendererPlugin")
        self._renderer = p.ER_BULLET_HARDWARE_OPENGL

    def close(self) -> None:
        """Disconnect; calling it twice is harmless."""
        if self._closed:
            return
        try:
            if self._egl_plugin is not None:
                self._client.unloadPlugin(self._egl_plugin)
            with quiet_stdout():  # a GUI client reports its threads stopping, from C
                self._client.disconnect()
        except p.error:  # already disconnected by the server side
            pass
        self._closed = True

    @property
    def closed(self) -> bool:
        """True after `close`; the client must not be used then."""
        return self._closed

    @staticmethod
    def data_path() -> Path:
        """Folder of pybullet_data's stock models (the Panda, the mug)."""
        return Path(pybullet_data.getDataPath())

    # ------------------------------------------------------------------------------------ bodies
    def body_id(self, name: str) -> int:
        """PyBullet's id of a loaded body; KeyError naming the known bodies for an unknown name."""
        try:
            return self._bodies[name]
        except KeyError:
            raise KeyError(f"unknown body {name!r}; known bodies: {sorted(self._bodies)}") from None

    @property
    def body_names(self) -> list[str]:
        """Names of the loaded bodies, in load order."""
        return list(self._bodies)

    def load_urdf(
        self,
        name: str,
        path: str | Path,
        position: Sequence[float] = (0.0, 0.0, 0.0),
        orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        fixed_base: bool = False,
        scale: float = 1.0,
        self_collision: bool = False,
    ) -> int:
        """Load a URDF and register it under `name`."""
        flags = p.URDF_USE_SELF_COLLISION if self_collision else 0
        flags |= p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES
        body = self._client.loadURDF(
            str(path), basePosition=position, baseOrientation=orientation, useFixedBase=fixed_base,
            globalScaling=scale, flags=flags,
        )
        self._bodies[name] = body
        return body

    def create_compound(
        self, name: str, pieces: Sequence[Piece], rgba: Sequence[float], mass: float, position: Sequence[float]
    ) -> int:
        """Create one rigid body from convex pieces (boxes, cylinders), each with its own offset and yaw.

        Compounds of convex pieces give concave objects (a bowl, a cabinet) stable, cheap contacts.
        """
        kwargs: dict[str, list] = {"shapeTypes": [], "halfExtents": [], "radii": [], "lengths": []}
        offsets, orientations = [], []
        for piece in pieces:
            is_box = piece.kind == "box"
            kwargs["shapeTypes"].append(p.GEOM_BOX if is_box else p.GEOM_CYLINDER)
            kwargs["halfExtents"].append(list(piece.size) if is_box else [0.0, 0.0, 0.0])
            kwargs["radii"].append(0.0 if is_box else piece.size[0])
            kwargs["lengths"].append(0.0 if is_box else piece.size[1])
            offsets.append(list(piece.offset))
            orientations.append(list(p.getQuaternionFromEuler([0.0, 0.0, piece.yaw])))
        collision = self._client.createCollisionShapeArray(
            collisionFramePositions=offsets, collisionFrameOrientations=orientations, **kwargs
        )
        visual = self._client.createVisualShapeArray(
            rgbaColors=[list(rgba)] * len(pieces), visualFramePositions=offsets,
            visualFrameOrientations=orientations, **kwargs,
        )
        body = self._client.createMultiBody(
            baseMass=mass, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual, basePosition=list(position)
        )
        self._bodies[name] = body
        return body

    def create_box(
        self, name: str, half_extents: Sequence[float], rgba: Sequence[float], mass: float, position: Sequence[float]
    ) -> int:
        """A single box body; mass 0 makes it static."""
        collision = self._client.createCollisionShape(p.GEOM_BOX, halfExtents=list(half_extents))
        visual = self._client.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba))
        body = self._client.createMultiBody(
            baseMass=mass, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual, basePosition=list(position)
        )
        self._bodies[name] = body
        return body

    def set_color(self, name: str, rgba: Sequence[float], link: int = -1) -> None:
        """Recolour one link (-1: the base) with RGBA in [0, 1]; visual only, the physics is unchanged."""
        self._client.changeVisualShape(self.body_id(name), link, rgbaColor=list(rgba))

    def num_joints(self, name: str) -> int:
        """Number of joints of a body, fixed joints included (PyBullet counts every link)."""
        return self._client.getNumJoints(self.body_id(name))

    # ----------------------------------------------------------------------------------- physics
    def step(self, n: int = 1) -> None:
        """Advance the physics by `n` fixed time steps."""
        for _ in range(n):
            self._client.stepSimulation()

    def set_dynamics(self, name: str, link: int = -1, **kwargs: float) -> None:
        """Change mass / lateral_friction / joint_damping / ... of one link (snake_case keys)."""
        names = {
            "mass": "mass", "lateral_friction": "lateralFriction", "spinning_friction": "spinningFriction",
            "rolling_friction": "rollingFriction", "restitution": "restitution", "linear_damping": "linearDamping",
            "angular_damping": "angularDamping", "joint_damping": "jointDamping", "friction_anchor": "frictionAnchor",
            "contact_stiffness": "contactStiffness", "contact_damping": "contactDamping",
        }
        unknown = set(kwargs) - set(names)
        if unknown:
            raise KeyError(f"unknown dynamics keys {sorted(unknown)}; expected some of {sorted(names)}")
        self._client.changeDynamics(self.body_id(name), link, **{names[k]: v for k, v in kwargs.items()})

    def get_dynamics(self, name: str, link: int = -1) -> dict[str, float]:
        """Mass, frictions and restitution of one link (-1: the base), with `set_dynamics`' snake_case keys."""
        info = self._client.getDynamicsInfo(self.body_id(name), link)
        return {"mass": info[0], "lateral_friction": info[1], "restitution": info[5], "rolling_friction": info[6],
                "spinning_friction": info[7]}

    def apply_force(self, name: str, force: Sequence[float], position: Sequence[float] | None = None) -> None:
        """Apply a world-frame force at the next physics step only (PyBullet clears it after each step)."""
        body = self.body_id(name)
        at = list(position) if position is not None else list(self.get_base_pose(name)[0])
        self._client.applyExternalForce(body, -1, list(force), at, p.WORLD_FRAME)

    # ------------------------------------------------------------------------------------- poses
    def get_base_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position and quaternion (x, y, z, w) of a body's base."""
        pos, orn = self._client.getBasePositionAndOrientation(self.body_id(name))
        return np.asarray(pos), np.asarray(orn)

    def get_base_states(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions (N, 3), quaternions (N, 4) and linear velocities (N, 3) of several bodies at once.

        PyBullet has no batched base query, so this is two calls per body. It runs every env step:
        the client id goes in positionally (no keyword parsing, ~0.1 µs a call) and all rows go into
        one array.
        """
        client_id = self._client.client_id
        bodies = self._bodies
        flat: list[float] = []
        for name in names:
            body = bodies[name]
            position, orientation = p.getBasePositionAndOrientation(body, client_id)
            flat += position
            flat += orientation
            flat += p.getBaseVelocity(body, client_id)[0]
        table = np.array(flat).reshape(len(names), 10)
        return table[:, :3], table[:, 3:7], table[:, 7:10]

    def get_base_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World-frame linear and angular velocity of a body's base."""
        lin, ang = self._client.getBaseVelocity(self.body_id(name))
        return np.asarray(lin), np.asarray(ang)

    def set_base_pose(self, name: str, position: Sequence[float], orientation: Sequence[float]) -> None:
        """Teleport a body to a pose and zero its velocity (for building scenes, not for motion in an episode)."""
        body = self.body_id(name)
        self._client.resetBasePositionAndOrientation(body, list(position), list(orientation))
        self._client.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def get_link_state(self, name: str, link: int, velocity: bool = False) -> LinkState:
        """Pose of a link's frame, with velocities only when `velocity` is set (zeros otherwise, a cheaper query)."""
        state = self._client.getLinkState(self.body_id(name), link, computeLinkVelocity=int(velocity),
                                          computeForwardKinematics=1)
        zeros = np.zeros(3)
        return LinkState(
            position=np.asarray(state[4]), orientation=np.asarray(state[5]),
            linear_velocity=np.asarray(state[6]) if velocity else zeros,
            angular_velocity=np.asarray(state[7]) if velocity else zeros,
        )

    def get_link_frame(self, name: str, link: int) -> tuple[Vec3, Quat, Vec3]:
        """World position, quaternion and linear velocity of a link's frame, as PyBullet's plain tuples.

        The per-step twin of `get_link_state(..., velocity=True)`: the same query without building
        four arrays and a dataclass, for callers that keep only some of the values.
        """
        state = self._client.getLinkState(self.body_id(name), link, computeLinkVelocity=1, computeForwardKinematics=1)
        return state[4], state[5], state[6]

    def get_aabb(self, name: str, link: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned bounding box (min corner, max corner) of a body's base or one link."""
        lo, hi = self._client.getAABB(self.body_id(name), link)
        return np.asarray(lo), np.asarray(hi)

    @staticmethod
    def euler_to_quaternion(euler: Sequence[float]) -> np.ndarray:
        """Quaternion (x, y, z, w) of roll, pitch, yaw Euler angles in radians."""
        return np.asarray(p.getQuaternionFromEuler(list(euler)))

    @staticmethod
    def quaternion_to_euler(quaternion: Sequence[float]) -> np.ndarray:
        """Roll, pitch, yaw in radians of a quaternion (x, y, z, w)."""
        return np.asarray(p.getEulerFromQuaternion(list(quaternion)))

    @staticmethod
    def rotation_matrix(quaternion: Sequence[float]) -> np.ndarray:
        """The 3x3 rotation matrix of a quaternion (x, y, z, w)."""
        return np.asarray(p.getMatrixFromQuaternion(list(quaternion))).reshape(3, 3)

    @staticmethod
    def heading(quaternion: Sequence[float]) -> float:
        """Angle of the frame's x axis in the world xy plane: atan2 of `rotation_matrix(q)[1, 0], [0, 0]`.

        Reads the two entries from PyBullet's row-major tuple instead of building a 3x3 array.
        """
        matrix = p.getMatrixFromQuaternion(quaternion)
        return math.atan2(matrix[3], matrix[0])

    # ------------------------------------------------------------------------------------ joints
    def get_joint_positions(self, name: str, joints: Sequence[int]) -> np.ndarray:
        """Positions of several joints (radians, or metres for prismatic ones) from one simulator query."""
        states = self._client.getJointStates(self.body_id(name), list(joints))
        return np.array([s[0] for s in states], dtype=np.float64)

    def get_joint_velocities(self, name: str, joints: Sequence[int]) -> np.ndarray:
        """Velocities of several joints from one simulator query."""
        states = self._client.getJointStates(self.body_id(name), list(joints))
        return np.fromiter((s[1] for s in states), dtype=np.float64, count=len(joints))

    def get_joint_position(self, name: str, joint: int) -> float:
        """Position of one joint (a single-joint query, cheaper than `get_joint_positions` with one index)."""
        return self._client.getJointState(self.body_id(name), joint)[0]

    def reset_joints(self, name: str, joints: Sequence[int], positions: Sequence[float]) -> None:
        """Set joint positions instantly with zero velocity (a teleport: no motor acts, no time passes)."""
        body = self.body_id(name)
        for joint, position in zip(joints, positions, strict=True):
            self._client.resetJointState(body, joint, float(position), 0.0)

    def joint_limits(self, name: str, joint: int) -> tuple[float, float]:
        """Lower and upper limit of one joint, as its URDF declares them."""
        info = self._client.getJointInfo(self.body_id(name), joint)
        return float(info[8]), float(info[9])

    def control_joints(
        self, name: str, joints: Sequence[int], targets: Sequence[float], forces: Sequence[float],
        position_gains: Sequence[float] | None = None,
    ) -> None:
        """Position-control several joints in one call (one call is much cheaper than one per joint)."""
        kwargs = {}
        if position_gains is not None:
            kwargs["positionGains"] = list(position_gains)
        self._client.setJointMotorControlArray(
            self.body_id(name), list(joints), p.POSITION_CONTROL, targetPositions=list(targets), forces=list(forces),
            **kwargs,
        )

    def couple_joints(self, name: str, joint_a: int, joint_b: int, max_force: float) -> None:
        """Make two joints of one body move as one: a gear constraint that keeps their positions equal.

        Why: the Franka Hand drives both fingers through one mechanism, so they open and close together. PyBullet
        reads them from the URDF as independent joints, and two position-controlled fingers pressing on an object
        from both sides leave the pair free to slide sideways together: a held mug was seen oscillating 1.3 cm along
        the closing axis. PyBullet's own Panda grasp example couples them the same way (its gear ratio -1 means
        equal positions, measured: fingers set to 1 and 3 cm meet at 2 cm).
        """
        body = self.body_id(name)
        constraint = self._client.createConstraint(body, joint_a, body, joint_b, jointType=p.JOINT_GEAR,
                                                   jointAxis=[1, 0, 0], parentFramePosition=[0, 0, 0],
                                                   childFramePosition=[0, 0, 0])
        self._client.changeConstraint(constraint, gearRatio=-1, erp=0.1, maxForce=max_force)

    def disable_motor(self, name: str, joint: int, friction_force: float) -> None:
        """Leave a joint passive, resisted by a constant friction force (a drawer slide, say)."""
        self._client.setJointMotorControl2(self.body_id(name), joint, p.VELOCITY_CONTROL, targetVelocity=0.0,
                                           force=friction_force)

    def set_joint_damping(self, name: str, joint: int, damping: float) -> None:
        """Set one joint's viscous damping, which resists its motion in proportion to its velocity."""
        self._client.changeDynamics(self.body_id(name), joint, jointDamping=damping)

    def inverse_kinematics(
        self, name: str, link: int, position: Sequence[float], orientation: Sequence[float],
        lower: Sequence[float], upper: Sequence[float], ranges: Sequence[float], rest: Sequence[float],
    ) -> tuple[float, ...]:
        """Joint targets (one per movable joint) placing `link` at the pose, biased towards `rest`.

        PyBullet applies the null-space bias only when the four limit sequences have one entry per
        movable joint of the body; otherwise it silently solves without it. Sequences are passed
        through as given (PyBullet reads any sequence of floats), so callers can hand in tuples built once.
        """
        return self._client.calculateInverseKinematics(
            self.body_id(name), link, position, orientation, lowerLimits=lower, upperLimits=upper,
            jointRanges=ranges, restPoses=rest, maxNumIterations=IK_ITERATIONS, residualThreshold=1e-4,
        )

    # ---------------------------------------------------------------------------------- contacts
    def contacts(self, body_a: str, body_b: str | None = None, link_a: int | None = None) -> list[Contact]:
        """Contact points of `body_a` after the last physics step, optionally only with `body_b` or on `link_a`."""
        kwargs: dict[str, int] = {"bodyA": self.body_id(body_a)}
        if body_b is not None:
            kwargs["bodyB"] = self.body_id(body_b)
        if link_a is not None:
            kwargs["linkIndexA"] = link_a
        return [
            Contact(c[1], c[2], c[3], c[4], c[5], c[7], c[8], c[9], c[10], c[11], c[12], c[13])
            for c in self._client.getContactPoints(**kwargs)
        ]

    def contact_bodies(self, name: str, links: Sequence[int]) -> list[set[int]]:
        """Ids of the bodies touching each of `links` of body `name`, from a single contact query.

        Same sets as one `contacts(name, link_a=link)` call per link (PyBullet orients every reported
        contact so that `name` is body A), without building a `Contact` per point.
        """
        touching: list[set[int]] = [set() for _ in links]
        for contact in self._client.getContactPoints(bodyA=self.body_id(name)):
            if contact[3] in links:
                touching[links.index(contact[3])].add(contact[2])
        return touching

    def name_of(self, body: int) -> str:
        """Name of a body id, or "body<id>" for a body not loaded through this class (for readable contacts)."""
        for name, index in self._bodies.items():
            if index == body:
                return name
        return f"body{body}"

    # ------------------------------------------------------------------------------------- state
    def save_state(self) -> int:
        """Snapshot positions, velocities and contact caches in memory; returns a handle."""
        return self._client.saveState()

    def restore_state(self, handle: int) -> None:
        """Return the world to a `save_state` snapshot; the handle stays valid for later restores."""
        self._client.restoreState(stateId=handle)

    def remove_state(self, handle: int) -> None:
        """Free a snapshot's memory; its handle is invalid afterwards."""
        self._client.removeState(handle)

    # ------------------------------------------------------------------------------- rendering
    def render(
        self, width: int, height: int, view: Sequence[float], projection: Sequence[float], segmentation: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """RGB (uint8 HxWx3), depth buffer (float32 HxW, non-linear [0, 1]) and optional segmentation."""
        flags = 0 if segmentation else p.ER_NO_SEGMENTATION_MASK
        _, _, rgba, depth, seg = self._client.getCameraImage(
            width, height, viewMatrix=list(view), projectionMatrix=list(projection), renderer=self._renderer,
            flags=flags, shadow=0,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
        depth_buffer = np.asarray(depth, dtype=np.float32).reshape(height, width)
        seg_mask = np.asarray(seg, dtype=np.int32).reshape(height, width) if segmentation else None
        return rgb, depth_buffer, seg_mask

    @staticmethod
    def view_matrix(eye: Sequence[float], target: Sequence[float], up: Sequence[float]) -> list[float]:
        """Camera view matrix (16 floats, column-major) looking from `eye` at `target`."""
        return list(p.computeViewMatrix(list(eye), list(target), list(up)))

    @staticmethod
    def projection_matrix(fov: float, aspect: float, near: float, far: float) -> list[float]:
        """Perspective projection matrix (16 floats) for a vertical field of view in degrees and near/far planes."""
        return list(p.computeProjectionMatrixFOV(fov, aspect, near, far))


class DisplayUnavailableError(InputError):
    """The GUI was asked for where no display can show it (no DISPLAY, an unreachable X server).

    A ValueError carrying the `input_error` mark: the `embodia` CLI reports it as one line and exit code 2,
    since the fix is the user's (run on a desktop, `ssh -X`, `xvfb-run -a`, or leave `--gui` off).
    """

    input_error = True


_DISPLAY_HELP = ("run it on a desktop session, over `ssh -X`, or under a virtual display (`xvfb-run -a embodia ...`),"
                 " or leave the GUI off (no --gui, render_mode=None or \"rgb_array\")")


def require_display() -> None:
    """Raise DisplayUnavailableError unless a GUI window can be opened here.

    Why: PyBullet's GUI connect on Linux without a reachable X server prints an error and ends the whole
    process from C, so the check must come first. macOS and Windows always have a window system.
    """
    if not sys.platform.startswith("linux"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise DisplayUnavailableError("the PyBullet GUI (render_mode=\"human\", --gui) needs a display, but the "
                                      "DISPLAY environment variable is not set; " + _DISPLAY_HELP)
    if not _x_server_answers():
        raise DisplayUnavailableError(f"the PyBullet GUI needs a display, but the X server at DISPLAY={display} "
                                      "does not answer; " + _DISPLAY_HELP)


def _x_server_answers() -> bool:
    """Whether Xlib can open the display named by DISPLAY (True when libX11 cannot be found to ask)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if name is None:
        return True
    try:
        xlib = ctypes.CDLL(name)
    except OSError:
        return True
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = xlib.XOpenDisplay(None)
    if not handle:
        return False
    xlib.XCloseDisplay(handle)
    return True


def quiet_stdout() -> contextlib.AbstractContextManager[None]:
    """Silence output written straight to file descriptor 1 by C code, then restore it.

    PyBullet's C library prints "argv[0]=..." lines on every connect, which would mix with a command's
    (JSON) output; Python-level redirection cannot catch them, so the descriptor itself is pointed at
    /dev/null for the duration. Other PyBullet users in the process (panda-gym in `bench env`) use it too.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # stdout replaced by an object without a descriptor
        return contextlib.nullcontext()
    sys.stdout.flush()
    return _quiet_descriptor(fd)


def low_poly_panda_urdf(cache_dir: str | Path | None = None) -> Path:
    """A copy of pybullet_data's Panda URDF whose visuals reuse the collision meshes.

    TinyRenderer's cost grows with triangle count; the stock visual meshes have ~60k vertices while the
    collision meshes have ~4k, and the arm still reads clearly in a 64x64 image. The file is written
    once per process user into a cache directory (atomically) and reused.
    """
    source = PyBulletSim.data_path() / "franka_panda" / "panda.urdf"
    folder = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / f"embodia-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "panda_lowpoly.urdf"
    mesh_root = source.parent / "meshes"
    text = source.read_text()
    text = text.replace("package://meshes/visual/", f"{mesh_root}/collision/")
    text = text.replace("package://meshes/collision/", f"{mesh_root}/collision/")
    if target.exists() and target.read_text() == text:
        return target
    atomic_write(target, lambda temp: Path(temp).write_text(text), suffix=".urdf", prefix="tmp")
    return target
