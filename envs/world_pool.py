"""Spare worlds built ahead of time, so that `HouseholdEnv.reset` can swap one in instead of rebuilding.

Rebuilding the world is most of a reset's cost (~15 of ~17 ms). A caller with time to spare (a vec-env
worker waiting for the learner's next action) builds worlds ahead; the pool keeps them, oldest first,
and keeps the clients of finished episodes to rebuild into spare worlds (a new client costs ~15 ms).
"""

from __future__ import annotations

from collections.abc import Callable

from envs.robots import Panda
from envs.scene import KitchenScene
from envs.sim import PyBulletSim

World = tuple[PyBulletSim, KitchenScene, Panda]


class WorldPool:
    """Fresh worlds built ahead, and used clients waiting to be rebuilt into them.

    Args:
        build: loads the kitchen and the robot into an empty client.
        timestep: physics timestep of a new client.
        use_egl: render new clients with the EGL plugin.
    """

    def __init__(self, build: Callable[[PyBulletSim], tuple[KitchenScene, Panda]], timestep: float,
                 use_egl: bool) -> None:
        self._build = build
        self._timestep = timestep
        self._use_egl = use_egl
        self.spares: list[World] = []
        """Fresh worlds built ahead by `prepare`, oldest first."""
        self.used: list[PyBulletSim] = []
        """Clients of finished episodes, kept to be rebuilt into spare worlds."""

    def __len__(self) -> int:
        return len(self.spares)

    def prepare(self) -> int:
        """Build one more spare world (in a used client if there is one); returns how many are ready."""
        if self.used:
            sim = self.used.pop()
            sim.reset_world()
        else:
            sim = PyBulletSim(timestep=self._timestep, use_egl=self._use_egl)
        try:
            scene, robot = self._build(sim)
        except BaseException:
            sim.close()
            raise
        self.spares.append((sim, scene, robot))
        return len(self.spares)

    def take(self) -> World | None:
        """The oldest spare world, or None if none is ready."""
        return self.spares.pop(0) if self.spares else None

    def recycle(self, sim: PyBulletSim) -> None:
        """Keep a finished episode's client to rebuild into a later spare world."""
        self.used.append(sim)

    def close(self) -> None:
        """Close every client the pool holds."""
        for sim in [*(world[0] for world in self.spares), *self.used]:
            sim.close()
        self.spares, self.used = [], []
