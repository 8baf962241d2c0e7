"""Oracle-labelled frames for the scene estimator, recorded while the agent runs chains of instructions.

Why chains: they are the scenes the estimator will face in the acting loop (blocks in the bowl, on the plate,
stacked, in the open or closed drawer, held, the arm travelling everywhere), and recording every k-th
control step (not only the ends of skills) gives the in-between states too: an object lifted, lowered,
half-hidden by the arm. Some episodes start with the drawer open or half open, and some add Gaussian noise
to the scripted actions so that the arm goes where the experts never would.

Each frame stores the `rgbd_touch` observation (front and wrist RGB-D, touch, proprioception) and the
oracle's labels: location class and position of every movable object, drawer open, gripper holding, and how
many pixels of each object the two cameras' segmentation masks show (the visibility label). Frames are saved
as plain-array `.npz` shards (no pickle), one per block of episodes, next to a `meta.json`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import PlanningError
from agent.loop import EmbodiedAgent
from agent.skills import SkillCall
from envs.household import HouseholdEnv
from envs.state import RIGID_OBJECTS
from experiments.common.errors import InputError
from experiments.common.io import atomic_write
from experiments.common.jsonio import write_json
from experiments.kitchen.world import KitchenWorld, ScriptedProvider
from experiments.scene_estimation.labels import LOCATIONS, MIN_VISIBLE_PIXELS, OBJECTS, SEGMENT_CLASSES, scene_labels

log = logging.getLogger(__name__)

FORMAT = "embodia.scene_frames/1"
OBS_KEYS: tuple[str, ...] = ("rgb_front", "depth_front", "rgb_wrist", "depth_wrist", "touch", "proprio")


@dataclass(frozen=True)
class SceneDataConfig:
    """How frames are gathered."""

    image_size: int = 64
    """camera resolution in pixels"""
    front_image_size: int | None = None
    """the front camera's resolution, when finer than `image_size` (None: the same)"""
    chain_length: int = 6
    """instructions per chain (a chain goes on after a failed instruction: failures make odd scenes too)"""
    frame_every: int = 3
    """record every k-th control step"""
    noisy_fraction: float = 0.4
    """share of episodes whose scripted actions get Gaussian noise"""
    action_noise: float = 0.25
    """std of that noise (actions are in [-1, 1])"""
    drawer_start_fraction: float = 0.3
    """share of episodes that start with the drawer open by a random amount"""
    episodes_per_shard: int = 10
    skills: str = "scripted"
    """who acts: "scripted" experts, or "learned" (every skill a shipped rgbd_touch student, as in the fully
    perceiving agent): the students leave scenes the experts never do (a block let go high, tilted on the
    bowl's rim or sliding off the plate), and the estimator must read those too"""


class _NoisyPolicy:
    """A skill policy with Gaussian noise on its xyz action (the arm wanders off the expert's path)."""

    def __init__(self, policy: Any, rng: np.random.Generator, std: float) -> None:
        self._policy, self._rng, self._std = policy, rng, std
        self.name = policy.name

    def reset(self, call: SkillCall) -> None:
        self._policy.reset(call)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        action = np.array(self._policy.act(obs, info), dtype=np.float32)
        action[:3] += self._rng.normal(0.0, self._std, 3).astype(np.float32)
        return np.clip(action, -1.0, 1.0)


class _Provider:
    """Scripted (or learned) skills, noisy in the episodes that ask for it."""

    def __init__(self, world: KitchenWorld, base: Any = None) -> None:
        self._base = base if base is not None else ScriptedProvider(world)
        self.noise: tuple[np.random.Generator, float] | None = None

    def new_episode(self) -> None:
        reset = getattr(self._base, "new_episode", None)
        if reset is not None:
            reset()

    def record_outcome(self, call: SkillCall, name: str, success: bool) -> None:
        record = getattr(self._base, "record_outcome", None)
        if record is not None:
            record(call, name, success)

    def policy_for(self, call: SkillCall) -> Any:
        policy = self._base.policy_for(call)
        return policy if self.noise is None else _NoisyPolicy(policy, *self.noise)


def learned_provider(world: KitchenWorld) -> Any:
    """Every skill a shipped rgbd_touch student, reading the scene through the shipped estimator."""
    from agent.policy import VISUOMOTOR_DIR, LearnedSkillProvider
    from experiments.kitchen.factory import check_observations
    from perception.scene_estimator import SHIPPED_WEIGHTS, SceneEstimator

    scripted = ScriptedProvider(world)
    provider = LearnedSkillProvider(fallback=scripted.policy_for, mode="learned", policy_dir=VISUOMOTOR_DIR,
                                    estimator=SceneEstimator.load(SHIPPED_WEIGHTS))
    check_observations(provider, world.env.observation_space)
    return provider


class RecordingWorld(KitchenWorld):
    """A `KitchenWorld` that keeps every k-th observation with the oracle's labels and visibility."""

    def __init__(self, env: HouseholdEnv, every: int) -> None:
        super().__init__(env, look_again=False)  # frames as the datasets on record were collected
        self.every = every
        self.frames: dict[str, list[np.ndarray]] = {}
        self.episode = -1
        self._count = 0
        self._bodies = [env.sim.body_id(name) for name in OBJECTS]
        self._segment_bodies = [env.sim.body_id(name) for name in SEGMENT_CLASSES[1:]]

    def reset_scene(self, seed: int, drawer_opening: float | None) -> None:
        """Reset to the seeded scene (optionally with the drawer opened) and record the first frame."""
        options: dict[str, Any] = {"task": "none"}
        if drawer_opening is not None:
            options["variables"] = {"drawer.opening": drawer_opening}
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_picked = None
        self.last_info = info
        self.episode, self._count = seed, 0
        self._bodies = [self.env.sim.body_id(name) for name in OBJECTS]
        self._segment_bodies = [self.env.sim.body_id(name) for name in SEGMENT_CLASSES[1:]]
        self.keep(obs)

    def start_skill(self, call: SkillCall) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start the call and keep its first frame (frames come from every phase of a chain)."""
        obs, info = super().start_skill(call)
        self.keep(obs)
        return obs, info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Step the env and keep every k-th frame with its oracle labels."""
        result = super().step(action)
        self._count += 1
        if self._count % self.every == 0 and not result[4].get("physics_fault"):
            self.keep(result[0])
        return result

    def keep(self, obs: dict[str, np.ndarray]) -> None:
        """Append one observation with its labels (the segmentation render is for the label only)."""
        state = self.env.scene_state()
        labels = scene_labels(state)
        pixels, masks = [], {}
        for camera in ("front", "wrist"):
            _, _, seg = self.env.render_camera(camera, segmentation=True)
            ids, counts = np.unique(seg, return_counts=True)
            table = dict(zip(ids.tolist(), counts.tolist(), strict=True))
            pixels.append([table.get(body, 0) for body in self._bodies])
            masks[f"seg_{camera}"] = segment_classes(seg, self._segment_bodies)
        row = {
            "rgb_front": obs["rgb_front"], "depth_front": obs["depth_front"].astype(np.float16),
            "rgb_wrist": obs["rgb_wrist"], "depth_wrist": obs["depth_wrist"].astype(np.float16),
            "touch": obs["touch"], "proprio": obs["proprio"],
            "location": np.asarray(labels["locations"], dtype=np.int8),
            "position": np.stack([state.position(name) for name in OBJECTS]).astype(np.float32),
            "pixels": np.asarray(pixels, dtype=np.int32).T,  # (objects, cameras)
            **masks,
            "drawer_open": np.uint8(labels["drawer_open"]), "drawer_opening": np.float32(state.drawer_opening),
            "holding": np.uint8(labels["holding"]), "episode": np.int32(self.episode),
            "step": np.int32(self._count),
        }
        for key, value in row.items():
            self.frames.setdefault(key, []).append(np.asarray(value))

    def take(self) -> dict[str, np.ndarray]:
        """The frames recorded so far as stacked arrays; the buffer is emptied."""
        arrays = {key: np.stack(values) for key, values in self.frames.items()}
        self.frames = {}
        return arrays


def segment_classes(seg: np.ndarray, bodies: list[int]) -> np.ndarray:
    """A PyBullet segmentation mask (body ids) as class indices of `SEGMENT_CLASSES` (uint8; 0: anything else)."""
    classes = np.zeros(seg.shape, dtype=np.uint8)
    for index, body in enumerate(bodies, start=1):
        classes[seg == body] = index
    return classes


def _draw_chain_task(world: KitchenWorld, rng: np.random.Generator) -> str:
    """The next instruction of a chain, drawn as `eval-chains` draws them."""
    from envs.task_choice import push_path_clear  # the env's own clearance test
    from experiments.kitchen.chains import draw_task

    def push_ok(name: str, direction: str) -> bool:
        scene = world.env.scene_state()
        layout = {n: (*scene.position(n)[:2], 0.0) for n in RIGID_OBJECTS}
        return push_path_clear(layout, name, direction)

    return draw_task(world.facts(), push_ok, rng).instruction


def collect_episode(agent: EmbodiedAgent, world: RecordingWorld, provider: _Provider, seed: int,
                    config: SceneDataConfig) -> None:
    """One seeded chain of instructions, its frames appended to `world.frames`."""
    rng = np.random.default_rng([seed, 15])
    opening = float(rng.uniform(0.0, 0.16)) if rng.random() < config.drawer_start_fraction else None
    provider.noise = (rng, config.action_noise) if rng.random() < config.noisy_fraction else None
    world.reset_scene(seed, opening)
    for _ in range(config.chain_length):
        instruction = _draw_chain_task(world, rng)
        try:
            agent.run(world, instruction)
        except PlanningError as error:
            log.info("seed %d: %r refused (%s)", seed, instruction, error)


def _shard_path(out: Path, first: int) -> Path:
    return out / f"shard_{first:06d}.npz"


def collect(seeds: Iterable[int], out: Path, config: SceneDataConfig, encoder: str = "minilm",
            progress: bool = False) -> Path:
    """Record one chain per seed into `.npz` shards under `out`; shards already there are kept (resumable)."""
    from tqdm import tqdm

    from agent.planner import GroundedPlanner
    from experiments.kitchen.factory import make_encoder

    seeds = list(seeds)
    if not seeds:
        raise InputError("collect needs at least one seed")
    if config.skills not in ("scripted", "learned"):
        raise InputError(f"skills must be 'scripted' or 'learned', got {config.skills!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": asdict(config), "objects": list(OBJECTS), "locations": list(LOCATIONS),
            "min_visible_pixels": MIN_VISIBLE_PIXELS, "cameras": ["front", "wrist"], "seeds": seeds,
            "segment_classes": list(SEGMENT_CLASSES),
            "encoder": encoder}
    write_json(out / "meta.json", meta, indent=1)
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=config.image_size,
                       front_image_size=config.front_image_size)
    blocks = [seeds[i:i + config.episodes_per_shard] for i in range(0, len(seeds), config.episodes_per_shard)]
    try:
        world = RecordingWorld(env, config.frame_every)
        provider = _Provider(world, learned_provider(world) if config.skills == "learned" else None)
        agent = EmbodiedAgent(GroundedPlanner(make_encoder(encoder)), provider, max_replans=1)
        for block in tqdm(blocks, desc="shards", disable=not progress):
            path = _shard_path(out, block[0])
            if path.exists():
                continue
            for seed in block:
                collect_episode(agent, world, provider, seed, config)
            arrays = world.take()
            atomic_write(path, lambda tmp, arrays=arrays: np.savez_compressed(tmp, **arrays), suffix=".npz")
    finally:
        env.close()
    return out


def load_frames(folder: Path, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every shard under `folder` concatenated (only `keys` if given); arrays only, no pickle."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no scene-frame dataset at {folder} (expected {meta_path})")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise InputError(f"{folder} is not a scene-frame dataset: expected format {FORMAT!r}, "
                         f"got {meta.get('format')!r}")
    shards = sorted(folder.glob("shard_*.npz"))
    if not shards:
        raise FileNotFoundError(f"{folder} has no shard_*.npz files yet")
    parts: dict[str, list[np.ndarray]] = {}
    for shard in shards:
        with np.load(shard, allow_pickle=False) as data:
            for key in keys or data.files:
                parts.setdefault(key, []).append(data[key])
    return {key: np.concatenate(values) for key, values in parts.items()}


def dataset_meta(folder: Path) -> dict[str, Any]:
    """The dataset's `meta.json`."""
    return json.loads((Path(folder) / "meta.json").read_text())


# ----------------------------------------------------------------------------------- randomised static scenes
def _random_arrangement(env: HouseholdEnv, rng: np.random.Generator) -> None:
    """Move some objects of the freshly reset scene into containers or stacks, then let physics settle.

    Why: chains show few layouts (one per episode), and a network trained on
    them learns each layout by heart; one new arrangement per frame teaches it where things are.
    """
    from envs.scene import PLATE_HEIGHT, SPECS
    from envs.state import BLOCKS

    sim = env.sim
    state = env.scene_state()
    drawer = state.drawer_position
    movers = [name for name in OBJECTS if rng.random() < 0.5]
    supports: list[str] = []
    drawer_spots = [(-0.075, 0.045), (-0.075, -0.045), (-0.03, 0.045), (-0.03, -0.045), (0.02, 0.0)]
    ring = [(0.0, 0.0), (0.03, 0.02), (-0.03, -0.02), (0.02, -0.03)]
    for name in movers:
        spec = SPECS[name]
        choice = rng.choice(["bowl", "plate", "drawer", "block"])
        jitter = rng.uniform(-0.006, 0.006, 2)
        if choice == "bowl" and ring:
            dx, dy = ring.pop(0)
            x, y = state.position("bowl")[:2] + np.array((dx, dy)) + jitter
            z = 0.009 + spec.origin_height
        elif choice == "plate" and ring:
            dx, dy = ring.pop()
            x, y = state.position("plate")[:2] + np.array((dx, dy)) + jitter
            z = PLATE_HEIGHT + spec.origin_height + 0.002
        elif choice == "drawer" and drawer_spots:
            dx, dy = drawer_spots.pop(int(rng.integers(len(drawer_spots))))
            x, y = drawer[:2] + np.array((dx, dy)) + jitter
            z = drawer[2] + 0.022 + spec.origin_height
        elif choice == "block" and name in BLOCKS:
            free = [b for b in BLOCKS if b != name and b not in movers and b not in supports]
            if not free:
                continue
            support = free[int(rng.integers(len(free)))]
            supports.append(support)
            x, y = state.position(support)[:2] + jitter
            z = state.position(support)[2] + 2 * spec.origin_height + 0.002
        else:
            continue
        yaw = float(rng.uniform(-0.4, 0.4))
        sim.set_base_pose(name, (float(x), float(y), float(z)), sim.euler_to_quaternion((0.0, 0.0, yaw)))
    sim.step(24)


def collect_random_scenes(seeds: Iterable[int], out: Path, image_size: int = 64, arm_steps: int = 8,
                          per_shard: int = 500, front_image_size: int | None = None) -> Path:
    """One frame per seed, labelled by the oracle like the chain frames.

    Each frame is a fresh layout with some objects moved into containers or stacks, the drawer at a random
    opening and the arm driven a few random steps.
    """
    seeds = list(seeds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": {"kind": "random_scenes", "image_size": image_size,
                                         "front_image_size": front_image_size, "arm_steps": arm_steps},
            "objects": list(OBJECTS), "locations": list(LOCATIONS), "min_visible_pixels": MIN_VISIBLE_PIXELS,
            "cameras": ["front", "wrist"], "seeds": [seeds[0], seeds[-1]],
            "segment_classes": list(SEGMENT_CLASSES)}
    write_json(out / "meta.json", meta, indent=1)
    env = HouseholdEnv(task="none", obs_mode="rgbd_touch", image_size=image_size, front_image_size=front_image_size)
    world = RecordingWorld(env, every=1)
    try:
        for first in range(0, len(seeds), per_shard):
            block = seeds[first:first + per_shard]
            path = _shard_path(out, block[0])
            if path.exists():
                continue
            for seed in block:
                rng = np.random.default_rng([seed, 16])
                opening = float(rng.choice([0.0, rng.uniform(0.0, 0.16), 0.16]))
                env.reset(seed=seed, options={"task": "none", "variables": {"drawer.opening": opening}})
                world.episode, world._count = seed, 0
                world._bodies = [env.sim.body_id(name) for name in OBJECTS]
                world._segment_bodies = [env.sim.body_id(name) for name in SEGMENT_CLASSES[1:]]
                _random_arrangement(env, rng)
                for _ in range(int(rng.integers(0, arm_steps + 1))):
                    env.step(rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32))
                world.keep(env.observation())
            arrays = world.take()
            atomic_write(path, lambda tmp, arrays=arrays: np.savez_compressed(tmp, **arrays), suffix=".npz")
    finally:
        env.close()
    return out
